"""Numbers printed in the papers, kept beside our measurements (never used as inputs).

Transcribed from the text of Zhong et al., "Boosting Adversarial Robustness and Generalization
with Structural Prior" (Elastic DL paper; ../papers/elastic-dictionary-learning.txt).
"""

from __future__ import annotations

# Table 7, "Running time (ms) analysis": ResNet-18 with the first N convolutions replaced.
# The paper states neither hardware, batch size, precision nor T for this table.
TABLE7_SOURCE = (
    "Elastic DL paper, Table 7 (running time in ms, ResNet-18 backbone; hardware, "
    "batch size, precision and RISTA steps not stated)"
)
TABLE7_LAYERS = (0, 2, 4, 6, 8, 10, 12, 14)
TABLE7_MS = {
    "vanilla": (7.82, 8.40, 9.28, 10.51, 12.13, 13.11, 14.16, 15.40),
    "elastic": (7.82, 8.90, 11.39, 13.18, 15.99, 16.86, 19.57, 21.94),
}

# Table 12, "Reconstruction Error" (mean ± std; ℓ1, ℓ2, ℓ∞ of ε − ε̂).
TABLE12_SOURCE = "Elastic DL paper, Table 12 (reconstruction error of the recovered noise)"
TABLE12 = {
    "random": ((1294.75, 406.78), (26.09, 7.04), (0.901, 0.10)),
    "resnet": ((131.51, 10.53), (2.93, 0.22), (0.163, 0.01)),
    "vanilla": ((129.07, 13.22), (2.85, 0.26), (0.157, 0.01)),
    "elastic": ((122.62, 9.92), (2.69, 0.22), (0.149, 0.01)),
}


def table7_ms(mode: str, layers: int) -> float | None:
    """The paper's time for ``mode`` (vanilla/elastic; 0 layers is the ResNet) or ``None``."""
    if layers not in TABLE7_LAYERS:
        return None
    key = "vanilla" if mode in ("resnet", "plain") else mode
    values = TABLE7_MS.get(key)
    return None if values is None else values[TABLE7_LAYERS.index(layers)]
