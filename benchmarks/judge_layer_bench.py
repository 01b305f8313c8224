"""Judge an existing ``edlnet bench --layers`` record against the speed targets.

Adds ``targets`` (edlnet.bench.targets.judge) to ``<folder>/layer_bench.json`` and rewrites
``<folder>/layer_bench.md`` from it, for records written before the bench judged its targets
itself. Only records with per-round times (``times_s``, kept since 2026-12-02) can be judged.

    python benchmarks/judge_layer_bench.py benchmarks/results/layer_bench_avx2_paired
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edlnet.bench import targets
from edlnet.bench.layers import markdown
from edlnet.records import write_json


def main(argv: list[str] | None = None) -> int:
    folders = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not folders:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for folder in folders:
        path = folder / "layer_bench.json"
        result = json.loads(path.read_text())
        result["targets"] = targets.judge(result)
        if not result["targets"]:
            print(f"{folder}: nothing to judge (no per-round times in this record)", file=sys.stderr)
            status = 1
            continue
        write_json(path, result)
        (folder / "layer_bench.md").write_text(markdown(result))
        counts = {
            s: sum(t["status"] == s for t in result["targets"]) for s in ("holds", "misses", "undetermined")
        }
        print(f"{folder}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
