"""One progress bar over the phases of a run, whose total is fixed at the start and never changes.

A run's work is counted in *steps*: one step per conformer and phase (an ETKDG initial guess embedded, a
conformer sampled, relaxed, written). Each phase has a budget fixed when the bar is made; the bar moves
inside every phase (embedding and relaxation advance in small blocks) and, at the end of a phase, jumps over
what that phase did not need (dropped conformers, unselected guesses), so it ends at exactly 100 %. The time
and work of each phase are kept for a final line with the real rates (:meth:`Progress.summary`).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

#: phases in the order a run goes through them, with the noun their rate is given in
PHASES = {"embedding": "guesses", "sampling": "conformers", "relaxing": "conformers", "writing": "conformers"}


class Progress:
    """A tqdm bar with a fixed total and per-phase budgets and timings.

    Args:
        budgets: steps of each phase (names of :data:`PHASES`); the bar's total is their sum.
        enabled: draw the bar (timings are kept either way).
    """

    def __init__(self, budgets: dict[str, int], enabled: bool = True):
        from tqdm.auto import tqdm

        self.budgets = {k: int(v) for k, v in budgets.items() if int(v) > 0}
        self.done = {k: 0 for k in self.budgets}
        self.work = {k: 0 for k in PHASES}
        self.seconds = {k: 0.0 for k in PHASES}
        self.total = sum(self.budgets.values())
        self._bar = tqdm(total=self.total, disable=not enabled, unit="step", leave=False, dynamic_ncols=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps "
                                    "[{elapsed}<{remaining}]")
        self._phase: str | None = None

    @contextmanager
    def phase(self, name: str):
        """Time a phase; inside it :meth:`advance` counts towards ``name``."""
        outer, self._phase = self._phase, name
        self._bar.set_description_str(name, refresh=True)
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds[name] += time.perf_counter() - start
            self._phase = outer

    def advance(self, steps: int = 1, work: int | None = None) -> None:
        """``steps`` more steps of the current phase (``work``: items done, default ``steps``, for the rates)."""
        name = self._phase
        self.work[name] += steps if work is None else work
        steps = max(0, min(int(steps), self.budgets.get(name, 0) - self.done.get(name, 0)))
        if steps:
            self.done[name] += steps
            self._bar.update(steps)

    def finish(self, name: str) -> None:
        """Skip the rest of phase ``name``'s budget (work it did not need)."""
        rest = self.budgets.get(name, 0) - self.done.get(name, 0)
        if rest > 0:
            self.done[name] += rest
            self._bar.update(rest)

    def write(self, line: str) -> None:
        """Print a line to stderr without breaking the bar."""
        self._bar.write(line, file=sys.stderr)

    def settle(self, budgets: dict[str, int], since: dict[str, int]) -> None:
        """Bring each phase to ``since[phase] + budgets[phase]`` steps: the part of the budget of one call
        (e.g. one round of molecules) that its work did not use (failed inputs, dropped conformers)."""
        for name, steps in budgets.items():
            rest = since.get(name, 0) + int(steps) - self.done.get(name, 0)
            if rest > 0 and name in self.budgets:
                rest = min(rest, self.budgets[name] - self.done[name])
                self.done[name] += rest
                self._bar.update(rest)

    def close(self) -> None:
        for name in self.budgets:
            self.finish(name)
        self._bar.close()

    def summary(self) -> str:
        """``embedding 20 guesses in 3.1 s (6.5/s); sampling ...``: the phases that did work."""
        parts = []
        for name, noun in PHASES.items():
            if self.work[name] or self.seconds[name] > 0.05:
                sec = self.seconds[name]
                rate = f"{self.work[name] / sec:.1f}/s" if sec > 0 else "-"
                parts.append(f"{name} {self.work[name]} {noun} in {sec:.1f} s ({rate})")
        return "; ".join(parts)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
