"""Robustness evaluation that says when it cannot be trusted.

``evaluate(model, x, y, suite="quick")`` runs a suite of attacks and corruptions (YAML files in
``edlnet/suites``), keeps the per-example worst case, and runs the gradient-masking checks
with every suite. ``benchmark(model)`` is RobustBench's protocol (AutoAttack standard on the
first pixel-exact CIFAR-10 test images). ``edlnet eval RUN_DIR --suite NAME`` is the command
line; it writes ``results.json`` and ``results.md``, shards over torchrun ranks and resumes.
"""

from .checks import CHECK_NAMES
from .corruptions import CORRUPTIONS, SEVERITIES, corrupt
from .report import markdown
from .robustbench import benchmark
from .runner import evaluate
from .shard import merge_records, run_shard, shard_batches
from .store import ResumeError
from .suites import ATTACKS, Budget, Entry, Suite, SuiteError, list_suites, load_suite

__all__ = [
    "ATTACKS",
    "CHECK_NAMES",
    "CORRUPTIONS",
    "SEVERITIES",
    "Budget",
    "Entry",
    "ResumeError",
    "Suite",
    "SuiteError",
    "benchmark",
    "corrupt",
    "evaluate",
    "list_suites",
    "load_suite",
    "markdown",
    "merge_records",
    "run_shard",
    "shard_batches",
]
