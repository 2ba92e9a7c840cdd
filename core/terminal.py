"""What tapster's commands share when they talk to a person at a terminal.

mktap, tapconvert and twistd (and any third-party front end) use the same
exit statuses, the same passphrase prompts and the same tables, so that a
script or an administrator meets one behaviour whichever command they run:

* :class:`ExitStatus` and :func:`exit_status_help`, which renders a command's
  statuses into its ``--help``;
* :func:`ask_passphrase`, :func:`read_passphrase_file`, :func:`obtain_passphrase`;
* :func:`print_table` (rich on a terminal, plain aligned text into a pipe:
  rich is imported only for a terminal, so listing plugins stays quick) and
  :func:`exit_quietly_on_broken_pipe`.

Nothing here imports asyncio, enum or rich at import time: it is on every
``--help`` path.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, TextIO

from tapster.core.errors import PassphraseError

__all__ = [
    "ExitStatus",
    "exit_status_help",
    "PassphraseError",
    "ask_passphrase",
    "read_passphrase_file",
    "obtain_passphrase",
    "print_table",
    "exit_quietly_on_broken_pipe",
    "one_line",
]


class ExitStatus:
    """The exit statuses of every tapster command; each command documents the ones it uses.

    Plain ``int`` constants rather than :class:`enum.IntEnum`: importing
    :mod:`enum` costs about 15 ms here, on every ``--help``.
    """

    OK: Final = 0
    #: Something the user can fix failed: a file, a port, a passphrase, a plugin's build.
    ERROR: Final = 1
    #: The command line is wrong (unknown plugin or option, bad value).
    USAGE: Final = 2
    #: ``twistd --status``: nothing is running.
    NOT_RUNNING: Final = 3
    #: twistd stopped, but the shutdown timeout expired and the stop was forced.
    FORCED: Final = 4
    #: Ctrl-C before anything was written.
    INTERRUPTED: Final = 130
    #: The reader of stdout went away (``mktap --help | head``): 128 + SIGPIPE, as a shell reports it.
    BROKEN_PIPE: Final = 141


def exit_status_help(meanings: Mapping[int, str]) -> str:
    """The ``Exit status:`` paragraph of a command's ``--help``, one status a line.

    A meaning may hold line breaks; its later lines are indented under the first.
    """
    width = max((len(str(status)) for status in meanings), default=1)
    lines = ["Exit status:"]
    for status, meaning in meanings.items():
        first, *more = meaning.split("\n")
        lines.append(f"  {str(status).ljust(width)}  {first}")
        lines.extend(" " * (width + 4) + line for line in more)
    return "\n".join(lines)


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` as one printable line: control characters (newlines, terminal escapes) escaped, cut to ``limit``.

    Every message a command prints about bad input goes through here, so a
    file or an option name chosen by a stranger can neither break the
    one-line promise nor send escape sequences to the administrator's terminal.
    """
    if not message.isprintable():
        message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)
    return message if len(message) <= limit else message[: limit - 3] + "..."


# -- passphrases -------------------------------------------------------------------


def read_passphrase_file(path: str) -> bytes:
    """The first line of ``path``, without its line ending (a file may hold a trailing newline)."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024)
    except OSError as e:
        raise PassphraseError(f"cannot read the passphrase file {path}: {e.strerror or e}") from None
    passphrase = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not passphrase:
        raise PassphraseError(f"the passphrase file {path} is empty (its first line is the passphrase)")
    return passphrase


def ask_passphrase(prompt: str, confirm: bool) -> str:
    """Ask on the terminal without echo; ``confirm`` asks a second time and compares.

    A new passphrase is asked twice (a typo would otherwise lock the file for
    good); one that opens an existing file is asked once. ``getpass`` is looked
    up at call time so tests can replace it.
    """
    import getpass

    try:
        first = getpass.getpass(prompt)
        if not first:
            raise PassphraseError("the passphrase is empty; nothing was written")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise PassphraseError("the two passphrases differ; nothing was written")
    except EOFError:
        raise PassphraseError("no passphrase was given (end of input); scripts use --passphrase-file FILE") from None
    return first


def obtain_passphrase(passphrase_file: str | None, prompt: str, confirm: bool) -> str | bytes:
    """From ``passphrase_file`` when given, else asked with ``prompt``."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    return ask_passphrase(prompt, confirm)


# -- output --------------------------------------------------------------------------


@contextlib.contextmanager
def exit_quietly_on_broken_pipe() -> Iterator[None]:
    """``mktap --help | head`` must not end in a traceback: exit like a well-behaved filter."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(ExitStatus.BROKEN_PIPE)


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
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        print("  " + "  ".join(cells + [row[-1]]).rstrip(), file=stream)
