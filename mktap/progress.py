"""What mktap tells the user while it works: steps (``-p``), details (``-d``), warnings (always).

On a terminal the steps are a rich progress bar on stderr; into a pipe or a
file they are plain lines (``mktap: importing plugin qotd ... done (3 ms)``),
so logs stay readable. rich is imported only when a bar is actually shown.
Everything goes to stderr: stdout stays free for what a command prints on
purpose (``--help``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["Reporter"]


class Reporter:
    """Reports a build's steps, debug details and warnings to ``stream`` (default stderr).

    ``total`` is the number of steps expected, for the bar; :meth:`pause`
    takes the bar off the screen (before a passphrase prompt), the next step
    puts it back; :meth:`stop` ends it.
    """

    def __init__(self, prog: str = "mktap", progress: bool = False, debug: bool = False,
                 stream: TextIO | None = None, total: int | None = None) -> None:
        self.prog = prog
        self.progress = progress
        self.debug = debug
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self._bar: Any = None
        self._task: Any = None
        self._done = 0

    def _tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A detail for ``--debug`` (which distribution, which module, how long)."""
        if self.debug:
            self._print(f"{self.prog}: debug: {text}")

    def warn(self, text: str) -> None:
        """Something the user should know even without ``--debug``."""
        self._print(f"{self.prog}: warning: {text}")

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        """One step of the build: shown while it runs when progress is on; timed under ``--debug``."""
        start = time.perf_counter()
        if not self.progress:
            yield
            self.note(f"{text}: {(time.perf_counter() - start) * 1000:.1f} ms")
            return
        if self._tty():
            self._start_bar(text)
            self._bar.update(self._task, description=text)
            yield
            self._done += 1
            self._bar.update(self._task, completed=self._done)
            return
        print(f"{self.prog}: {text} ...", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            print(" failed", file=self.stream, flush=True)
            raise
        print(f" done ({(time.perf_counter() - start) * 1000:.0f} ms)", file=self.stream, flush=True)

    def _start_bar(self, text: str) -> None:
        if self._bar is not None:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
        if self.total:
            columns.append(MofNCompleteColumn())
        columns.append(TimeElapsedColumn())
        self._bar = Progress(*columns, console=Console(file=self.stream), transient=True)
        self._task = self._bar.add_task(text, total=self.total, completed=self._done)
        self._bar.start()

    def pause(self) -> None:
        """Take the bar off the screen (a prompt is coming); the next step shows it again."""
        self.stop()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None
