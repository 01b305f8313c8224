import sys

from .cli import main
from .train.distributed import exit_torchrun_process

code = main()
exit_torchrun_process(code)  # returns outside torchrun
sys.exit(code)
