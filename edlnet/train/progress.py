"""Progress output: a live bar with throughput and ETA on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, enabled: bool = True, log_every: int = 20, stream=None) -> None:
        self.total, self.desc, self.enabled, self.log_every = total, desc, enabled, log_every
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self.images = 0

    def update(self, step: int, images: int, **fields: float) -> None:
        self.images += images
        if not self.enabled:
            return
        done = step + 1
        elapsed = time.perf_counter() - self.start
        rate = self.images / max(elapsed, 1e-9)
        eta = elapsed / done * (self.total - done)
        extras = " ".join(f"{k}={v:.4g}" for k, v in fields.items())
        line = f"{self.desc} {done}/{self.total} {rate:.1f} img/s ETA {eta:.0f}s {extras}"
        if self.tty:
            width = 30
            filled = int(width * done / max(self.total, 1))
            self.stream.write(
                f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                f"{rate:.1f} img/s ETA {eta:.0f}s {extras}\033[K"
            )
            self.stream.flush()
        elif done % self.log_every == 0 or done == self.total:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
