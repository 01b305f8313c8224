"""``edlnet bench`` on tiny settings: the rows asked for, sane numbers, the paper's Table 7
beside ours, JSON + Markdown, and --layers option checking."""

from __future__ import annotations

import json

import pytest
import torch

from edlnet.bench import BenchSettings, run_bench, write_bench
from edlnet.bench.measure import median_interval, median_summary, paired_ratio, peak_step_memory, summary_text
from edlnet.bench.table7 import TABLE7_MS
from edlnet.cli import main

TINY = BenchSettings(width=4, batch=2, repeats=1, warmup=0, layers_list=(0, 2, 4))


def test_bench_rows_and_paper_numbers(tmp_path):
    torch.set_num_threads(1)
    record = run_bench(TINY, log=False)
    got = [(r["layers"], r["mode"]) for r in record["rows"]]
    assert got == [(0, "resnet"), (2, "vanilla"), (2, "elastic"), (4, "vanilla"), (4, "elastic")]
    for r in record["rows"]:
        assert r["forward_ms"] > 0 and r["forward_backward_ms"] > 0
        assert r["forward_images_per_s"] == pytest.approx(2 / (r["forward_ms"] / 1e3))
        assert r["train_peak_mb"] is not None and r["train_peak_mb"] > 0
    rows = {(r["layers"], r["mode"]): r for r in record["rows"]}
    assert rows[(4, "elastic")]["paper_ms"] == TABLE7_MS["elastic"][2] == 11.39
    assert rows[(2, "vanilla")]["paper_ratio"] == pytest.approx(8.40 / 7.82)
    assert rows[(0, "resnet")]["forward_ratio"] == 1.0
    write_bench(record, tmp_path)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["settings"]["layers_list"] == [0, 2, 4] and saved["environment"]["torch"]
    pivot = json.loads((tmp_path / "bench_table7.json").read_text())
    assert [r["layers"] for r in pivot["rows"]] == [0, 2, 4]
    assert pivot["rows"][2]["elastic_paper_ms"] == 11.39
    assert "| 4 |" in (tmp_path / "bench_table7.md").read_text()


def test_cpu_peak_memory_sees_a_known_allocation():
    def step():
        a = torch.empty(2**20, dtype=torch.float32)  # 4 MiB
        a.fill_(1.0)
        del a

    mb, method = peak_step_memory(step, torch.device("cpu"))
    assert "profiler" in method
    assert 4.0 <= mb < 4.5


def test_bench_cli_and_layers_hook(tmp_path, capsys):
    out = tmp_path / "b"
    code = main(
        [
            "bench",
            "--width",
            "4",
            "--batch",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--layers-list",
            "0,2",
            "--modes",
            "elastic",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert [(r["layers"], r["mode"]) for r in rows] == [(0, "resnet"), (2, "elastic")]
    # --layers runs the layer benchmark (tested end to end in test_rista_fast); its options
    # are checked before anything is timed
    assert main(["bench", "--layers", "--layer-sections", "layers,everything"]) == 2
    assert "sections" in capsys.readouterr().err
    assert (
        main(
            [
                "bench",
                "--precision",
                "fp32",
                "--layers-list",
                "0,30",
                "--width",
                "4",
                "--batch",
                "1",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "lower --layers-list" in capsys.readouterr().err


def test_median_interval_is_the_distribution_free_one():
    """The order statistics of the binomial sign test: 10 values give x_(2)..x_(9) (coverage
    97.9%), 20 give x_(6)..x_(15); 5 values cannot cover the median with 95% (1/16 per tail)."""
    assert median_interval(range(1, 11)) == (2, 9)
    assert median_interval(range(20, 0, -1)) == (6, 15)  # sorted first
    assert median_interval(range(1, 7)) == (1, 6)
    assert median_interval(range(1, 6)) is None
    assert median_interval(range(1, 11), confidence=0.5) == (4, 7)


def test_paired_ratio_cancels_load_that_drifts_over_the_rounds():
    base = [1.0, 1.5, 3.0, 1.2, 2.5, 1.0, 4.0, 1.1]  # a neighbour comes and goes
    times = [1.1 * b for b in base]
    p = paired_ratio(times, base)
    assert p["median"] == pytest.approx(1.1) and p["ci"] == pytest.approx([1.1, 1.1])
    # the ratio of the medians of the same numbers is the same here, but the medians alone
    # would spread: a shuffled pairing gives a wide interval
    wide = paired_ratio(times, base[::-1])
    assert wide["ci"][1] - wide["ci"][0] > 1.0
    with pytest.raises(ValueError, match="one base time per time"):
        paired_ratio(times, base[:-1])


def test_summary_text_shows_the_interval_only_where_there_is_one():
    assert (
        summary_text(median_summary([1.0, 1.2, 1.1, 1.3, 0.9, 1.05, 1.15, 1.25, 0.95, 1.0]))
        == "1.08 [0.95, 1.25]"
    )
    assert summary_text(median_summary([1.0, 1.2, 1.1]), 3) == "1.100"  # too few for a 95% interval
    assert summary_text(None) == summary_text({}) == "–"  # a record written before intervals


def test_targets_hold_miss_or_stay_undetermined_by_the_interval():
    from edlnet.bench import targets

    assert targets.verdict([1.05] * 10, 1.15)["status"] == "holds"
    assert targets.verdict([1.25] * 10, 1.15)["status"] == "misses"
    straddles = [1.0, 1.05, 1.1, 1.12, 1.14, 1.16, 1.18, 1.2, 1.25, 1.3]
    v = targets.verdict(straddles, 1.15)
    assert v["status"] == "undetermined" and v["ci"] == [1.05, 1.25]
    assert targets.verdict([1.0] * 5, 1.15)["status"] == "undetermined"  # too few rounds to claim
    assert targets.verdict([0.95] * 10, 0.9, at_most=False)["status"] == "holds"
    assert targets.verdict([0.85] * 10, 0.9, at_most=False)["status"] == "misses"


def test_targets_are_judged_on_paired_rounds_from_a_bench_result():
    from edlnet.bench import targets

    drift = [1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 4.0, 1.0, 2.0]  # the machine's load, per round
    shape = dict(channels=16, size=32, precision="fp32", memory_format="contiguous")
    layers = [
        dict(shape, variant="floor", times_s=[0.1 * d for d in drift]),
        dict(shape, variant="fast", times_s=[0.2 * d for d in drift]),  # 2.0× its floor
        dict(shape, variant="compiled", times_s=[0.11 * d for d in drift]),  # 1.1×
        dict(shape, variant="reference", times_s=[0.3 * d for d in drift]),  # not a target
    ]

    def step(net, precision, seconds):
        return dict(network=net, precision=precision, times_s=[seconds * d for d in drift])

    steps = [
        step("resnet10", "fp32", 1.0),
        step("resnet10", "bf16", 0.5),  # gain 2
        step("edlnet10", "fp32", 6.0),  # 6× ResNet: misses 5.5
        step("edlnet10", "bf16", 4.0),  # gain 1.5 = 0.75 of the ResNet's: misses 0.9
        step("edlnet10_compiled", "fp32", 4.0),
        step("edlnet10_compiled", "bf16", 2.1),  # gain 1.905 = 0.95 of the ResNet's
    ]
    result = {"layers": layers, "attack_step": steps, "bf16_native": True}
    got = {(t["target"].split()[0], t["case"]): t["status"] for t in targets.judge(result)}
    assert got[("layer", "16→16 @ 32×32 fp32 contiguous, fast")] == "misses"
    assert got[("layer", "16→16 @ 32×32 fp32 contiguous, compiled")] == "holds"
    assert not any("reference" in case for _, case in got)
    assert got[("EDLNet-10", "attack_step fp32, edlnet10")] == "misses"
    assert got[("EDLNet-10", "attack_step fp32, edlnet10_compiled")] == "holds"
    assert got[("bf16", "attack_step, edlnet10")] == "misses"
    assert got[("bf16", "attack_step, edlnet10_compiled")] == "holds"
    # where bf16 is emulated its cases say nothing about the library: not judged
    emulated = targets.judge({**result, "bf16_native": False})
    assert emulated and not any("bf16" in t["case"] or "bf16" in t["target"] for t in emulated)
    # a record without per-round times (before they were kept) is not judged
    old = [{k: v for k, v in r.items() if k != "times_s"} for r in layers]
    assert targets.judge({"layers": old}) == []
