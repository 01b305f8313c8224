"""The reproduction study: train every arm of ``configs/reproduce/<scale>.yaml``, evaluate it, and
regenerate ``docs/reproduction.md`` from the records.

Resumable piece by piece: training advances one epoch per call of the trainer, so a command
stopped by ``--max-minutes`` (or killed) resumes at the last finished epoch the next time; an arm
whose folder has ``train_results.json`` is done. Run it in the background, one at a time:

    nohup python benchmarks/reproduce.py --scale cpu --stage train --max-minutes 50 \\
        --data-root <folder with cifar10-jpeg.tar.gz> > runs/reproduce/train.log 2>&1 &

``--only ARM ...`` restricts to some arms (a forked arm also trains what it forks from, up to
the fork epoch). Arms run in the order the study file lists them. The exit status is 0 when
everything asked for is done and 3 when ``--max-minutes`` stopped it first (run it again).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edlnet.allocator import keep_freed_memory
from edlnet.records import read_jsonl, write_json, write_yaml
from edlnet.train.config import load_config
from edlnet.train.loop import Trainer
from edlnet.train.resume import resumable


def load_study(scale: str) -> dict[str, Any]:
    """The study of ``configs/reproduce/<scale>.yaml`` (or of a YAML path)."""
    path = (
        Path(scale) if scale.endswith((".yaml", ".yml")) else ROOT / "configs" / "reproduce" / f"{scale}.yaml"
    )
    if not path.is_file():
        choices = sorted(p.stem for p in (ROOT / "configs" / "reproduce").glob("*.yaml"))
        raise SystemExit(
            f"no study for scale {scale!r}: {path.relative_to(ROOT)} does not exist "
            f"(scales: {', '.join(choices)})"
        )
    study = yaml.safe_load(path.read_text())
    path = path.resolve()
    study["path"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    return study


def arm_config(study: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    """base + group + the arm's own keys (the study's bookkeeping keys removed)."""
    cfg = copy.deepcopy(study["base"])
    for source in (study["groups"][arm["group"]], arm):
        for key, value in source.items():
            if key in ("name", "group", "fork"):
                continue
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
    if cfg.get("dl") is None:
        cfg.pop("dl_options", None)  # a plain ResNet has no dictionary layers to configure
    cfg["name"] = arm["name"]
    return cfg


def _validated(cfg: dict[str, Any], origin: str):
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"edlnet-study-{os.getpid()}.yaml"
    tmp.write_text(yaml.safe_dump(cfg))
    try:
        return load_config(tmp)
    finally:
        tmp.unlink(missing_ok=True)


# Figure 6 runs RISTA this many steps past the layer's own n_steps, to see where it settles.
CONVERGENCE_STEPS = 8


def suite_of(spec: dict[str, Any]) -> Path | str:
    """A study's suite: a YAML file of the repository, or a library suite by name (table4)."""
    path = ROOT / spec["suite"]
    return path if path.is_file() else spec["suite"]


def x_label(n: int) -> str:
    return f"CIFAR-10 test set, first {n} images, pixel-exact (the bundled sample)"


def epochs_done(run_dir: Path) -> int:
    metrics = run_dir / "metrics.jsonl"
    return len(read_jsonl(metrics)) if metrics.is_file() else 0


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (the records name what
    they read, and committed records hold no absolute paths of the machine), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "train_results.json").is_file()


class Study:
    def __init__(self, scale: str, data_root: str | None, deadline: float) -> None:
        self.study = load_study(scale)
        self.runs = ROOT / self.study["runs_dir"]  # absolute runs_dir (tests) stays as given
        self.arms = {a["name"]: a for a in self.study["arms"]}
        self.data_root = data_root
        self.deadline = deadline

    def config(self, name: str):
        cfg = arm_config(self.study, self.arms[name])
        cfg["out_dir"] = (
            str(self.runs.relative_to(ROOT)) if self.runs.is_relative_to(ROOT) else str(self.runs)
        )
        if self.data_root:
            cfg["data_root"] = self.data_root
        return _validated(cfg, f"{self.study['path']}: arm {name}")

    def out_of_time(self) -> bool:
        return time.time() > self.deadline

    def train_epochs(self, name: str, until: int) -> bool:
        """Advance arm ``name`` to ``until`` epochs (or its end); False when time ran out."""
        run_dir = self.runs / name
        cfg = self.config(name)
        until = min(until, cfg.epochs)
        arm = self.arms[name]
        if not run_dir.exists() and "fork" in arm:
            if not self.fork(name):
                return False
        if not is_finished(run_dir) and epochs_done(run_dir) >= cfg.epochs:
            # every epoch ran but the run's summary was not written (stopped right after the
            # last epoch): resuming runs no epoch and writes train_results.json
            Trainer(cfg, run_dir=run_dir, progress=False).fit(run_dir)
        while not is_finished(run_dir) and epochs_done(run_dir) < until:
            if self.out_of_time():
                return False
            resume = run_dir if resumable(run_dir) else None
            if resume is None and run_dir.exists():
                shutil.rmtree(run_dir)  # started but no epoch finished: start again
            print(
                f"[{time.strftime('%H:%M:%S')}] {name}: epoch {epochs_done(run_dir) + 1}/{cfg.epochs}",
                flush=True,
            )
            Trainer(cfg, run_dir=run_dir, progress=False).fit(resume, stop_after=1)
        return True

    def fork(self, name: str) -> bool:
        """Copy the parent's run folder at the fork epoch and give it this arm's config."""
        spec = self.arms[name]["fork"]
        parent, epoch = spec["from"], int(spec["epoch"])
        parent_dir = self.runs / parent
        if epochs_done(parent_dir) > epoch or (is_finished(parent_dir) and epochs_done(parent_dir) != epoch):
            raise SystemExit(
                f"{name} forks from {parent} at epoch {epoch}, but {parent_dir} is already past "
                f"it ({epochs_done(parent_dir)} epochs); delete {name}'s parent or re-run it"
            )
        if not self.train_epochs(parent, epoch):
            return False
        run_dir = self.runs / name
        tmp = run_dir.with_name(run_dir.name + ".forking")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(parent_dir, tmp)
        write_yaml(tmp / "config.yaml", self.config(name).to_dict())
        write_json(
            tmp / "fork.json",
            {
                "from": parent,
                "epoch": epoch,
                "note": f"epochs 1-{epoch} are {parent}'s, bitwise: same seed, data "
                "order, weights and optimizer state; the configs differ only "
                "after the fork",
            },
        )
        tmp.rename(run_dir)
        print(f"[{time.strftime('%H:%M:%S')}] {name}: forked from {parent} after epoch {epoch}", flush=True)
        return True

    def order(self, only: list[str] | None) -> list[str]:
        names = list(self.arms)
        if only:
            unknown = [n for n in only if n not in self.arms]
            if unknown:
                raise SystemExit(f"unknown arm(s) {', '.join(unknown)}; arms: {', '.join(names)}")
            names = [n for n in names if n in only]
        # a parent must stop at the fork epoch before it runs past it: train forks first
        forks = {a["fork"]["from"]: n for n, a in self.arms.items() if "fork" in a}
        ordered: list[str] = []
        for n in names:
            child = forks.get(n)
            if child and not (self.runs / child).exists() and child not in ordered:
                ordered.append(child)
            if n not in ordered:
                ordered.append(n)
        return ordered

    # -- evaluation ------------------------------------------------------------------------
    def surrogate_of(self, name: str) -> str | None:
        """The plain model the transfer check crafts on: the plain arm of the same objective
        and seed, or for a plain arm another plain model (a model cannot transfer to itself)."""
        arm = self.arms[name]
        spec = self.study["evaluation"][arm["group"]]
        seed = int(arm.get("seed", 0))
        fill = {"seed": seed, "other_seed": 1 - seed if seed in (0, 1) else 0}
        surrogate = spec["surrogate"].format(**fill)
        if surrogate == name:
            surrogate = spec["plain_surrogate"].format(**fill)
        return surrogate if surrogate != name and surrogate in self.arms else None

    def evaluate(self, name: str, n_examples: int | None) -> bool:
        """Evaluate arm ``name``'s final weights; resumable by batch. False when time ran out
        or the arm (or its surrogate) is not trained yet."""
        from edlnet import checkpoint as ckpt
        from edlnet.evaluation import evaluate
        from edlnet.evaluation.robustbench import first_test_images
        from edlnet.evaluation.shard import EvaluationPaused

        run_dir = self.runs / name
        if epochs_done(run_dir) and not is_finished(run_dir):
            self.train_epochs(name, 0)  # writes the summary of a run whose epochs all ran
        spec = self.study["evaluation"][self.arms[name]["group"]]
        suite_path = suite_of(spec)
        out = run_dir / "eval" / Path(str(suite_path)).stem
        if (out / "results.json").is_file():
            return True
        if not is_finished(run_dir):
            print(f"[{time.strftime('%H:%M:%S')}] {name}: not trained yet, evaluation waits", flush=True)
            return True
        surrogate_name = self.surrogate_of(name)
        surrogate = None
        if surrogate_name is not None:
            if epochs_done(self.runs / surrogate_name) and not is_finished(self.runs / surrogate_name):
                self.train_epochs(surrogate_name, 0)  # all epochs ran: write its summary
            if not is_finished(self.runs / surrogate_name):
                print(
                    f"[{time.strftime('%H:%M:%S')}] {name}: surrogate {surrogate_name} not trained yet, "
                    "evaluation waits",
                    flush=True,
                )
                return True
            surrogate = ckpt.load(self.runs / surrogate_name / "checkpoints" / "last")
        if self.out_of_time():
            return False
        n = int(n_examples or spec["n_examples"])
        x, y, _ = first_test_images("cifar10-sample", n)
        model = ckpt.load(run_dir / "checkpoints" / "last")
        print(
            f"[{time.strftime('%H:%M:%S')}] {name}: evaluating with {Path(str(suite_path)).name} on {n} images "
            f"(transfer from {surrogate_name})",
            flush=True,
        )
        torch.set_num_threads(int(self.study["base"].get("threads") or torch.get_num_threads()))
        try:
            evaluate(
                model,
                x,
                y,
                suite=suite_path,
                surrogate=surrogate,
                out_dir=out,
                log=lambda line: print(line, flush=True),
                deadline=self.deadline,
                info={
                    "dataset": x_label(n),
                    "images": f"first {n} test images (pixel-exact)",
                    "checkpoint": str((run_dir / "checkpoints" / "last").relative_to(ROOT)),
                    "surrogate_arm": surrogate_name,
                    "arm": name,
                    "study": self.study["path"],
                },
            )
        except EvaluationPaused as e:
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {e}", flush=True)
            return False
        return True

    def analyze(self, name: str) -> bool:
        """The paper's analyses of an Elastic arm's final weights (Figure 6 convergence, Table 12
        noise recovery, β per layer), with the same seed's plain and Vanilla arms beside it."""
        from edlnet.analysis import Settings, analyze, build_context

        run_dir = self.runs / name
        out = run_dir / "analysis"
        if (out / "noise_recovery" / "noise_recovery.json").is_file() or not is_finished(run_dir):
            return True
        if self.out_of_time():
            return False
        seed = self.arms[name].get("seed", 0)
        group = self.arms[name]["group"]
        compare = [
            shown(self.runs / f"{group}-{d}-s{seed}")
            for d in ("plain", "vanilla")
            if is_finished(self.runs / f"{group}-{d}-s{seed}")
        ]
        print(
            f"[{time.strftime('%H:%M:%S')}] {name}: analyses (compare {', '.join(Path(c).name for c in compare)})",
            flush=True,
        )
        ctx = build_context(
            shown(run_dir),  # the analyses record the paths they read: keep them relative
            compare,
            settings=Settings(n_images=64, n_steps=CONVERGENCE_STEPS),
            which="last",
            out_dir=shown(out),
            dataset="cifar10-sample",
            device="cpu",
        )
        analyze(ctx, ["convergence", "noise-recovery", "betas"])
        return True

    def evaluate_all(self, only: list[str] | None, n_examples: int | None) -> bool:
        names = [n for n in self.arms if not only or n in only]
        for name in names:
            if not self.evaluate(name, n_examples):
                print(f"[{time.strftime('%H:%M:%S')}] time budget reached; run again to resume", flush=True)
                return False
            if "-elastic-" in name and not self.analyze(name):
                return False
        return True

    def train(self, only: list[str] | None) -> bool:
        for name in self.order(only):
            if not self.train_epochs(name, 10**9):
                print(f"[{time.strftime('%H:%M:%S')}] time budget reached; run again to resume", flush=True)
                return False
        return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="cpu", help="configs/reproduce/<scale>.yaml (cpu, paper)")
    p.add_argument(
        "--stage",
        default="train",
        choices=["train", "eval", "report"],
        help="train the arms, evaluate the trained ones, or rebuild docs/reproduction.md",
    )
    p.add_argument(
        "--n-examples",
        type=int,
        default=None,
        help="evaluate on the first N test images (default: the study's)",
    )
    p.add_argument("--only", nargs="*", help="arms to run (default: all, in the study's order)")
    p.add_argument(
        "--data-root", default=None, help="folder holding the dataset (default: $EDLNET_DATA, else ./data)"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=55.0,
        help="stop starting new epochs after this long (resume by running again)",
    )
    args = p.parse_args(argv)
    keep_freed_memory()  # training and attacks reuse each step's memory (no numerical effect)
    study = Study(args.scale, args.data_root, time.time() + 60 * args.max_minutes)
    if args.stage == "train":
        done = study.train(args.only)
    elif args.stage == "eval":
        done = study.evaluate_all(args.only, args.n_examples)
    else:
        from reproduce_report import write_report

        path = write_report(study)
        print(f"wrote {path.relative_to(ROOT)}")
        done = True
    print(json.dumps({"stage": args.stage, "complete": done}))
    return 0 if done else INCOMPLETE


INCOMPLETE = 3  # the exit status of a command stopped by --max-minutes: run it again to resume


if __name__ == "__main__":
    raise SystemExit(main())
