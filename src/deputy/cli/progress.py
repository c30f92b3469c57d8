"""The progress of a sandbox run's trials on stderr: a bar when stderr is a terminal, otherwise
a line at every tenth (so a log or CI output still shows the run moving)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from deputy.cli.output import err


class TrialBar:
    def __init__(self) -> None:
        console = err()
        self.terminal = console.is_terminal
        self.progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("passed {task.fields[passed]}  errors {task.fields[errors]}"),
            console=console,
            disable=not self.terminal,
        )
        self._task = self.progress.add_task("trials", total=None, passed=0, errors=0)
        self._tenth = -1

    def update(self, done: int, total: int, passed: int, errors: int) -> None:
        self.progress.update(
            self._task, completed=done, total=total or None, passed=passed, errors=errors
        )
        tenth = done * 10 // max(total, 1)
        if not self.terminal and total and tenth != self._tenth:
            self._tenth = tenth
            err().print(f"trials {done}/{total}  passed {passed}  errors {errors}", markup=False)
