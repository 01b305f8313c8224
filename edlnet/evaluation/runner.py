"""``evaluate``: clean and robust accuracy under a suite, with the gradient-masking checks.

It runs the stages of :mod:`edlnet.evaluation` in order: read the suite, add the clean entry
and the checks' entries, run this rank's share of (entry, batch) pairs, merge every rank's
batch results, judge (checks, worst case) into the record, and write the record and report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from edlnet.records import atomic_write, write_json, write_yaml

from .check_plan import check_entries
from .merge import merge_batch_results
from .record import build_record
from .report import markdown
from .shard import gather_batch_results, run_shard
from .store import PartialStore, ResumeError, model_digest, tensor_digest
from .suite import Entry, Suite
from .suite_parser import load_suite

DEFAULT_BATCH_SIZE = 100
CLEAN = Entry(name="clean", kind="clean")
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
SUITE_YAML = "suite.yaml"


def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    suite: str | Path | Suite | Mapping[str, Any] = "quick",
    n_examples: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    *,
    surrogate: nn.Module | None = None,
    out_dir: str | Path | None = None,
    restart: bool = False,
    log: Callable[[str], None] | None = print,
    info: Mapping[str, Any] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``(x, y)`` with every entry of ``suite`` and the masking checks.

    Args:
        model: fp32 classifier taking images in [0, 1] (normalization is its first module).
        x, y: images (float in [0, 1], or uint8) and labels; the first ``n_examples`` are used.
        suite: a suite name (:func:`list_suites`), a YAML path, a dict or a :class:`Suite`.
        n_examples: how many of the given examples (default: all).
        batch_size: examples per batch (default: the suite's, else 100). Batches are also the
            unit of seeding, sharding and resuming, so results depend on it (and are recorded
            with it) but not on the number of processes.
        seed: seed of every random choice (random starts, Square, AutoAttack, corruptions).
        surrogate: a plain model for the transfer check (skipped, and said so, without one).
        out_dir: folder for ``results.json``, ``results.md`` and the partial results that make
            a rerun resume; nothing is written without it.
        restart: discard partial results found in ``out_dir`` instead of resuming.
        log: called with one line per finished entry and per check (``None``: silent).
        info: extra fields stored in the record (dataset, checkpoint, ...).
        deadline: a ``time.time()`` after which no new batch starts: ``EvaluationPaused`` is
            raised and a rerun with the same ``out_dir`` resumes (long evaluations in pieces).

    Under ``torchrun`` (an initialized ``torch.distributed`` group) each rank evaluates its
    share of the batches and every rank returns the merged record; rank 0 writes the files.

    Returns:
        The record: ``clean`` (accuracy), ``attacks`` (entry name -> robust accuracy),
        ``corruptions``, ``worst_case`` (per-example worst case at the suite's main budget;
        rule in ``worst_case_rule``, entries in ``worst_case_entries``),
        ``worst_case_by_budget``, ``checks`` (list of ``{name, passed, detail}``),
        ``checks_passed``, ``attacks_by_policy``, ``per_example`` (robust flags per entry),
        ``entries`` (settings, seconds, policies per entry), ``seconds``, ``seed``,
        ``n_examples``, ``environment`` (versions, commit) and more.
    """
    t0 = time.perf_counter()
    suite = load_suite(suite)
    device = _device(model)
    x, y = _prepare(x, y, n_examples, device)
    n = x.shape[0]
    batch_size = int(batch_size or suite.batch_size or DEFAULT_BATCH_SIZE)
    if surrogate is None and any(e.attack == "transfer" for e in suite.entries):
        raise ValueError(f"suite {suite.name!r} has transfer entries; pass surrogate=<plain model>")
    randomized = outputs_vary(model, x[:batch_size])
    entries = [
        CLEAN,
        *suite.entries,
        *check_entries(suite, has_surrogate=surrogate is not None, randomized=randomized),
    ]
    rank, world = _dist()
    store = None
    if out_dir is not None:
        store = PartialStore(Path(out_dir), rank)
        fingerprint = {
            "suite": suite.name,
            "entries": [e.to_dict() for e in entries],
            "main": None if suite.main is None else suite.main.to_dict(),
            "n_examples": n,
            "batch_size": batch_size,
            "seed": int(seed),
            "data": tensor_digest(x, y),
            "model": model_digest(model),
            "surrogate": model_digest(surrogate),
        }
        _prepare_store(store, fingerprint, restart, rank, world)
    results = run_shard(
        model,
        x,
        y,
        entries,
        batch_size=batch_size,
        seed=int(seed),
        rank=rank,
        world_size=world,
        surrogate=surrogate,
        store=store,
        log=log,
        deadline=deadline,
    )
    merged = merge_batch_results(gather_batch_results(results, world), entries, n, batch_size)
    record = build_record(
        suite,
        entries,
        merged,
        model=model,
        n_examples=n,
        batch_size=batch_size,
        seed=int(seed),
        world_size=world,
        surrogate=surrogate,
        randomized=randomized,
        wall_seconds=time.perf_counter() - t0,
        info=info,
    )
    if log is not None and rank == 0:
        for check in record["checks"]:
            log(f"check {check['name']}: {check['status'].upper()} - {check['detail']}")
        log(f"checks: {record['checks_summary']['line']}")
        if record["checks_passed"] is False:
            log(
                f"WARNING: gradient-masking checks failed; the robust accuracies of suite "
                f"{suite.name!r} may be overestimated"
            )
    if out_dir is not None and rank == 0:
        out = Path(out_dir)
        # The resolved suite (defaults filled in, the checks' own attacks listed) beside the
        # results, so the folder says exactly what ran.
        write_yaml(out / SUITE_YAML, {**suite.to_dict(), "run_entries": [e.to_dict() for e in entries]})
        write_json(out / RESULTS_JSON, record)
        text = markdown(record)
        atomic_write(out / RESULTS_MD, lambda tmp: Path(tmp).write_text(text))
    return record


def outputs_vary(model: nn.Module, x: Tensor) -> bool:
    """True when two eval-mode passes on the same images differ: a randomized model, whose
    gradient attacks need EOT (the mode of every submodule is restored)."""
    from edlnet.attacks import attack_mode

    with attack_mode(model, None, x.device.type), torch.no_grad():
        first, second = model(x), model(x)
    return not torch.equal(first, second)


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _prepare(x: Tensor, y: Tensor, n_examples: int | None, device: torch.device) -> tuple[Tensor, Tensor]:
    if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"expected images (N, C, H, W) and labels (N,), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if n_examples is not None:
        if n_examples < 1 or n_examples > x.shape[0]:
            raise ValueError(f"n_examples={n_examples} but {x.shape[0]} examples were given")
        x, y = x[:n_examples], y[:n_examples]
    if x.dtype == torch.uint8:
        x = x.float() / 255
    elif not torch.is_floating_point(x):
        raise ValueError(f"images must be float in [0, 1] or uint8, got {x.dtype}")
    x = x.detach().to(device, torch.float32)
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"images must lie in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
            "normalization belongs inside the model"
        )
    return x, y.detach().to(device).long()


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _prepare_store(
    store: PartialStore, fingerprint: dict[str, Any], restart: bool, rank: int, world: int
) -> None:
    """Rank 0 checks or starts the folder; every rank learns the outcome before working."""
    error = None
    if rank == 0:
        try:
            store.prepare(fingerprint, restart=restart)
        except ResumeError as e:
            error = str(e)
    if world > 1:
        import torch.distributed as dist

        from edlnet.train.distributed import collective_device

        box = [error]
        dist.broadcast_object_list(box, src=0, device=collective_device())
        error = box[0]
    if error:
        raise ResumeError(error)
