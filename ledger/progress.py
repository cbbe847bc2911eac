"""A dependency-free progress bar for long ledger checks, written to a text stream (stderr by default).

`ProgressBar(total=…, label=…)` is called as `bar(done, total)` and redraws one line (`\r`) at most every
`interval` seconds and at the end: `hash chain [##########··········]  50%  5,000/10,000 transactions`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Draws `label [#####·····]  NN%  done/total unit` on `stream`; `close()` ends the line.

    `interval` (seconds) limits redraws; the final state (done == total) is always drawn.
    """

    def __init__(
        self, *, label: str, unit: str = "items", stream: TextIO | None = None, width: int = 30, interval: float = 0.2
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        """Report progress: `done` of `total` items."""
        now = time.monotonic()
        if done < total and now - self._last < self.interval:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = round(self.width * fraction)
        bar = "#" * filled + "·" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%}  {done:,}/{total:,} {self.unit}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line (if anything was drawn)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
