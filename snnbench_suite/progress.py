"""Progress display: the matrix (pending / cached / running / done / failed / skipped, ETA)
and the epochs of each running cell.

The runner tells a Reporter each cell's state as it changes; workers' epochs and messages
arrive tagged with their cell. `Reporter` itself is silent; `LineReporter` prints one line
per event (logs, non-terminals); `RichReporter` draws live bars on a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from snnbench_suite.train import EpochReport

STATES = ("pending", "cached", "running", "done", "failed", "skipped")
FINAL_STATES = ("cached", "done", "failed", "skipped")


class Reporter:
    """Silent reporter; subclasses display. `epoch` and `message` are also what a
    CellRunner calls while a cell runs."""

    def run_started(self, cells: Sequence[tuple[str, str]], jobs: int = 1) -> None: ...
    def cell_state(self, cell_id: str, label: str, state: str, detail: str = "") -> None: ...
    def cell_epoch(self, cell_id: str, label: str, report: EpochReport) -> None: ...
    def epoch(self, report: EpochReport) -> None: ...
    def message(self, text: str) -> None: ...
    def run_finished(self) -> None: ...


class MatrixTally:
    """Counts of cells per state and an ETA from the cells finished in this run."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.durations: list[float] = []
        self.jobs = 1

    def start(self, cells: Sequence[tuple[str, str]], jobs: int) -> None:
        self.states = {cell_id: "pending" for cell_id, _ in cells}
        self.jobs = max(1, jobs)

    def set(self, cell_id: str, state: str) -> None:
        previous = self.states.get(cell_id)
        self.states[cell_id] = state
        if state == "running" and previous != "running":
            self.started[cell_id] = time.monotonic()
        elif state in ("done", "failed") and cell_id in self.started:
            self.durations.append(time.monotonic() - self.started.pop(cell_id))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        return counts

    @property
    def finished(self) -> int:
        return sum(1 for s in self.states.values() if s in FINAL_STATES)

    def eta_seconds(self) -> float | None:
        """Mean time of the cells run so far x the cells left, over the workers."""
        if not self.durations:
            return None
        counts = self.counts()
        left = counts["pending"] + counts["running"]
        return sum(self.durations) / len(self.durations) * left / self.jobs

    def summary(self) -> str:
        c = self.counts()
        eta = self.eta_seconds()
        text = (f"{c['pending']} pending, {c['cached']} cached, {c['running']} running, "
                f"{c['done']} done, {c['failed']} failed, {c['skipped']} skipped")
        if eta is not None and (c["pending"] or c["running"]):
            text += f", ETA {_duration(eta)}"
        return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineReporter(Reporter):
    """One line per state change and message: readable in a log file."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.tally = MatrixTally()

    def run_started(self, cells: Sequence[tuple[str, str]], jobs: int = 1) -> None:
        self.tally.start(cells, jobs)
        self.console.print(f"{len(cells)} cells, {jobs} at a time", soft_wrap=True)

    def cell_state(self, cell_id: str, label: str, state: str, detail: str = "") -> None:
        self.tally.set(cell_id, state)
        suffix = f" ({detail})" if detail else ""
        self.console.print(f"{state:>8} {label}{suffix}  [{self.tally.summary()}]",
                           highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)


class RichReporter(Reporter):
    """A live bar for the matrix with the state counts and ETA, and one bar per running
    cell showing its training epochs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.tally = MatrixTally()
        self.matrix: TaskID | None = None
        self.epochs: dict[str, TaskID] = {}

    def run_started(self, cells: Sequence[tuple[str, str]], jobs: int = 1) -> None:
        self.tally.start(cells, jobs)
        self.progress.start()
        self.matrix = self.progress.add_task("cells", total=len(cells),
                                             info=self.tally.summary())

    def _update(self) -> None:
        if self.matrix is not None:
            self.progress.update(self.matrix, completed=self.tally.finished,
                                 info=self.tally.summary())

    def cell_state(self, cell_id: str, label: str, state: str, detail: str = "") -> None:
        self.tally.set(cell_id, state)
        if state == "running":
            self.progress.console.print(f"[bold]running[/] {label}")
        elif state == "failed":
            self.progress.console.print(f"[red]failed[/] {label}" + (f": {detail}" if detail
                                                                     else ""))
        if state in FINAL_STATES and cell_id in self.epochs:
            self.progress.remove_task(self.epochs.pop(cell_id))
        self._update()

    def cell_epoch(self, cell_id: str, label: str, report: EpochReport) -> None:
        info: dict[str, Any] = {"info": report.summary()}
        description = f"  {report.label} ({label})"
        task = self.epochs.get(cell_id)
        if task is None or report.epoch == 1:
            if task is not None:
                self.progress.remove_task(task)
            task = self.progress.add_task(description, total=report.epochs, **info)
            self.epochs[cell_id] = task
        self.progress.update(task, completed=report.epoch, description=description, **info)

    def epoch(self, report: EpochReport) -> None:
        self.cell_epoch("", "", report)

    def message(self, text: str) -> None:
        self.progress.console.print(text)

    def run_finished(self) -> None:
        for task in self.epochs.values():
            self.progress.remove_task(task)
        self.epochs.clear()
        self._update()
        self.progress.stop()
