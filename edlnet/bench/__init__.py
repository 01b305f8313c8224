"""``edlnet bench``: running time and memory of dictionary layers on this machine.

Python use::

    from edlnet.bench import BenchSettings, run_bench, write_bench
    record = run_bench(BenchSettings(width=16, batch=32))   # the paper's Table 7, ours beside it
    write_bench(record, "runs/bench")                        # bench.json + Markdown/JSON tables

    from edlnet.bench import run_layer_bench                 # ``edlnet bench --layers``
    run_layer_bench(argparse.Namespace(layer_sections="layers", out="runs/layers"))

Modules: :mod:`~edlnet.bench.table7` (the Table 7 benchmark and the paper's numbers),
:mod:`~edlnet.bench.layers` (layers and networks against the convolution floor) and
:mod:`~edlnet.bench.measure` (wall time, autocast and peak memory of one step, shared by both).
"""

from .layers import run_layer_bench
from .table7 import BenchSettings, bench_tables, run_bench, write_bench

__all__ = ["BenchSettings", "bench_tables", "run_bench", "run_layer_bench", "write_bench"]
