"""The speed targets of ``edlnet bench --layers``, judged from the bench's own per-round times.

Three targets (the speed issue's numbers, kept here so the bench table says whether they hold):

* a layer: one ``DictConv2d`` forward+backward ≤ ``LAYER_BOUND`` × its convolution floor;
* a network step: EDLNet-10 ≤ ``NETWORK_BOUND`` × ResNet-10 per image (attack and training step);
* bf16: EDLNet-10's bf16 gain (fp32 time ÷ bf16 time) ≥ ``GAIN_FRACTION`` × ResNet-10's own.

Each is judged on the median of per-round ratios (the cases of one round-robin round run
seconds apart, so load that drifts over the run cancels) with the distribution-free 95%
interval of that median (:func:`edlnet.bench.measure.median_summary`): **holds** when the whole
interval is on the target's side, **misses** when the whole interval is on the other side, and
**undetermined** when the interval contains the bound — on a noisy machine one median alone would
say "holds" or "misses" by chance. Rows without per-round times (records written before they
were kept) are not judged.
"""

from __future__ import annotations

from typing import Any

from .measure import median_summary, paired_ratio

LAYER_BOUND = 1.15
NETWORK_BOUND = 5.5
GAIN_FRACTION = 0.9
LAYER_VARIANTS = ("fast", "compiled")  # the default layer and the one-switch compiled path
NETWORKS = ("edlnet10", "edlnet10_compiled")


def verdict(ratios: list[float], bound: float, at_most: bool = True) -> dict[str, Any]:
    """Judge per-round ratios against ``bound`` (``at_most``: the target is ratio ≤ bound)."""
    return judged(median_summary(ratios), bound, at_most)


def judged(summary: dict[str, Any], bound: float, at_most: bool = True) -> dict[str, Any]:
    """A median with its interval (:func:`~edlnet.bench.measure.median_summary`) judged against
    ``bound``: holds, misses, or undetermined (the interval contains the bound, or there is none)."""
    ci = summary["ci"]
    if ci is None:
        status = "undetermined"  # too few rounds for an interval: no claim either way
    else:
        good, bad = (ci[1] <= bound, ci[0] > bound) if at_most else (ci[0] >= bound, ci[1] < bound)
        status = "holds" if good else "misses" if bad else "undetermined"
    return {**summary, "bound": bound, "status": status}


def layer_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    floors = {
        (r["channels"], r["size"], r["precision"], r["memory_format"]): r
        for r in rows
        if r["variant"] == "floor" and "times_s" in r
    }
    out = []
    for r in rows:
        key = (r["channels"], r["size"], r["precision"], r["memory_format"])
        if r["variant"] not in LAYER_VARIANTS or "times_s" not in r or key not in floors:
            continue
        v = judged(paired_ratio(r["times_s"], floors[key]["times_s"]), LAYER_BOUND)
        name = (
            f"{r['channels']}→{r['channels']} @ {r['size']}×{r['size']} {r['precision']} {r['memory_format']}"
        )
        target = f"layer ÷ floor ≤ {LAYER_BOUND}"
        out.append({"target": target, "case": f"{name}, {r['variant']}", "precision": r["precision"], **v})
    return out


def step_targets(kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["network"], r["precision"]): r["times_s"] for r in rows if "times_s" in r}
    out = []
    for net in NETWORKS:
        for precision in ("fp32", "bf16"):
            if (net, precision) in by and ("resnet10", precision) in by:
                v = judged(paired_ratio(by[(net, precision)], by[("resnet10", precision)]), NETWORK_BOUND)
                target, case = f"EDLNet-10 ÷ ResNet-10 ≤ {NETWORK_BOUND}", f"{kind} {precision}, {net}"
                out.append({"target": target, "case": case, "precision": precision, **v})
        keys = [(net, "fp32"), (net, "bf16"), ("resnet10", "fp32"), ("resnet10", "bf16")]
        if all(k in by for k in keys):
            e32, e16, r32, r16 = (by[k] for k in keys)
            # per round: (EDLNet fp32 / bf16) ÷ (ResNet fp32 / bf16)
            gains = [(a / b) / (c / d) for a, b, c, d in zip(e32, e16, r32, r16)]
            v = verdict(gains, GAIN_FRACTION, at_most=False)
            target = f"bf16 gain ÷ ResNet-10's ≥ {GAIN_FRACTION}"
            out.append({"target": target, "case": f"{kind}, {net}", "precision": "bf16", **v})
    return out


def judge(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target the sections of one bench result can judge, in the order of the sections.
    Where bf16 convolutions are not native (``result["bf16_native"]`` False) PyTorch runs them in
    a slow fallback and the bf16 cases say nothing about the library: they are left out."""
    out = layer_targets(result.get("layers", []))
    for kind in ("attack_step", "train_step"):
        out += step_targets(kind, result.get(kind, []))
    if result.get("bf16_native", True) is False:
        out = [t for t in out if t["precision"] != "bf16"]
    return out


def markdown_rows(targets: list[dict[str, Any]]) -> list[list[str]]:
    def interval(t: dict[str, Any]) -> str:
        return f"[{t['ci'][0]:.2f}, {t['ci'][1]:.2f}]" if t["ci"] else "–"

    return [[t["target"], t["case"], f"{t['median']:.2f}", interval(t), t["status"]] for t in targets]
