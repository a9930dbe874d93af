"""Live progress in the terminal (rich): a version bar, the latest accuracy, and one row per
board. A metrics sink: feed it the coordinator's events."""

from __future__ import annotations

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class LiveProgress:
    def __init__(self, max_versions: int | None, title: str = "ftte run"):
        self._bar = Progress(TextColumn(f"[bold]{title}[/] versions"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        self._task = self._bar.add_task("versions", total=max_versions, status="")
        self._boards: dict[str, list] = {}  # id -> [state, tasks, accepted, loss, staleness]
        self._accuracy: float | None = None
        self._start: float | None = None
        self._live = Live(self, refresh_per_second=4, transient=False)

    def __enter__(self) -> "LiveProgress":
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            self._start = event["start"].get("accuracy")
            self._bar.update(self._task, completed=event["version"])
        elif kind == "join":
            self._boards[event["board"]] = ["training", 0, 0, None, None]
        elif kind == "update" and event["board"] in self._boards:
            row = self._boards[event["board"]]
            row[1] += 1
            row[2] += event["accepted"]
            row[3], row[4] = event["loss_after"], event["staleness"]
        elif kind == "drop" and event["board"] in self._boards:
            self._boards[event["board"]][0] = f"[red]dropped[/]: {event['reason']}"
        elif kind == "end":
            for row in self._boards.values():
                row[0] = "done" if row[0] == "training" else row[0]
        elif kind == "version":
            self._accuracy = event["accuracy"] if event["accuracy"] is not None else self._accuracy
            self._bar.update(self._task, completed=event["version"])
        start = "" if self._start is None else f"from {self._start:.1%} "
        status = "" if self._accuracy is None else f"accuracy {start}-> {self._accuracy:.1%}"
        self._bar.update(self._task, status=status)

    def __rich__(self) -> Group:
        table = Table(box=None, pad_edge=False)
        for column in ("board", "state", "tasks", "accepted", "loss", "staleness"):
            table.add_column(column, justify="left" if column in ("board", "state") else "right")
        for board, (state, tasks, accepted, loss, staleness) in sorted(self._boards.items()):
            table.add_row(board, state, str(tasks), str(accepted), "" if loss is None else f"{loss:.3f}",
                          "" if staleness is None else str(staleness))
        return Group(self._bar, table)
