"""Tables for terminals and pipes: rich on a terminal, plain aligned text otherwise.

rich is imported only when the output is a terminal, so listing plugins into
a pipe (scripts, tests) stays quick.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, Sequence, TextIO

__all__ = ["print_table", "exit_quietly_on_broken_pipe"]


@contextlib.contextmanager
def exit_quietly_on_broken_pipe() -> Iterator[None]:
    """``mktap --help | head`` must not end in a traceback: exit like a well-behaved filter."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, as a shell reports it


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO) -> None:
    """Print ``rows`` under ``headers``; ``title`` heads the table."""
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_edge=False, box=None, pad_edge=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(file=stream).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    print(f"{title}", file=stream)
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths)]
        print("  " + "  ".join(cells + [row[-1]]).rstrip(), file=stream)
