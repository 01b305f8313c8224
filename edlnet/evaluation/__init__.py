"""Robustness evaluation that says when it cannot be trusted.

``evaluate(model, x, y, suite="quick")`` runs a suite of attacks and corruptions (YAML files in
``edlnet/suites``), keeps the per-example worst case, and runs the gradient-masking checks
with every suite. ``benchmark(model)`` is RobustBench's protocol (AutoAttack standard on the
first pixel-exact CIFAR-10 test images). ``edlnet eval RUN_DIR --suite NAME`` is the command
line; it writes ``results.json`` and ``results.md``, shards over torchrun ranks and resumes.

An *entry* is one line of a suite (or one of the evaluation's own steps: the clean pass, the
checks' attacks and probe). One evaluation (:func:`runner.evaluate`) passes these stages, top
to bottom:

1. read the suite: ``suite_parser`` turns a file or dict into a ``suite.Suite`` whose entries
   are ``suite.Entry`` objects, building each attack once on a stand-in model
   (``attack_factory``, from the attack registry ``edlnet.attacks.ATTACKS``) and resolving the
   checks' options (``check_plan``);
2. plan: the clean entry first, then the suite's entries, then the checks' own
   (``check_plan.check_entries``);
3. run: ``shard.run_shard`` runs every entry on this rank's batches (``batches``), one
   (entry, batch) pair at a time (``run_entry``, with ``autoattack_split``, ``corruptions`` and
   ``probe``), each giving a ``batch_result.BatchResult`` that ``store`` keeps on disk to resume;
4. merge: ``merge.merge_batch_results`` joins every rank's batch results into one
   ``merge.EntryResult`` per entry over all examples;
5. judge: ``checks.run_checks`` (the masking checks' verdicts) and ``worst_case`` go into the
   record (``record.build_record``);
6. report: ``report.markdown`` renders ``results.md`` from the record.
"""

from .batches import shard_batches
from .checks import CHECK_NAMES
from .corruptions import CORRUPTIONS, SEVERITIES, corrupt
from .merge import merge_batch_results
from .report import markdown
from .robustbench import benchmark
from .runner import evaluate
from .shard import run_shard
from .store import ResumeError
from .suite import Budget, Entry, Suite, SuiteError
from .suite_parser import list_suites, load_suite

__all__ = [
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
    "merge_batch_results",
    "run_shard",
    "shard_batches",
]
