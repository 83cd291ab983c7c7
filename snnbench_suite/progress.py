"""Progress display: the matrix (done / cached / failed / running) and the current epochs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from snnbench_suite.train import EpochReport


class Reporter:
    """Silent reporter; subclasses display. The runner calls these in order."""

    def run_started(self, total: int) -> None: ...
    def cell_started(self, label: str) -> None: ...
    def cell_finished(self, label: str, status: str) -> None: ...
    def cell_complete(self, label: str) -> None: ...
    def epoch(self, report: EpochReport) -> None: ...
    def message(self, text: str) -> None: ...
    def run_finished(self) -> None: ...


class RichReporter(Reporter):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.counts = {"ok": 0, "complete": 0, "failed": 0, "skipped": 0}
        self.matrix: TaskID | None = None
        self.epochs: TaskID | None = None

    def _info(self) -> str:
        c = self.counts
        return (f"[green]{c['ok']} done[/] [cyan]{c['complete']} already recorded[/] "
                f"[red]{c['failed']} failed[/] [yellow]{c['skipped']} skipped[/]")

    def run_started(self, total: int) -> None:
        self.progress.start()
        self.matrix = self.progress.add_task("cells", total=total, info=self._info())

    def cell_started(self, label: str) -> None:
        self.progress.console.print(f"[bold]running[/] {label}")

    def _advance(self) -> None:
        if self.matrix is not None:
            self.progress.update(self.matrix, advance=1, info=self._info())

    def cell_finished(self, label: str, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.epochs is not None:
            self.progress.remove_task(self.epochs)
            self.epochs = None
        self._advance()

    def cell_complete(self, label: str) -> None:
        self.counts["complete"] += 1
        self._advance()

    def epoch(self, report: EpochReport) -> None:
        info: dict[str, Any] = {"info": f"loss {report.loss:.4f}  {report.seconds:.2f} s/epoch"}
        if self.epochs is None or report.epoch == 1:
            if self.epochs is not None:
                self.progress.remove_task(self.epochs)
            self.epochs = self.progress.add_task(
                f"  {report.label}", total=report.epochs, **info
            )
        self.progress.update(self.epochs, completed=report.epoch, **info)

    def message(self, text: str) -> None:
        self.progress.console.print(text)

    def run_finished(self) -> None:
        self.progress.stop()
