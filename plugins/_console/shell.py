"""The interpreter behind both consoles: Python's own compile rules, output to the client.

:class:`Shell` takes input a line at a time (:meth:`Shell.push`) with the
semantics of the interactive interpreter (``codeop``): a complete statement
runs at once, an incomplete one (``def f():``, an open bracket) asks for more
with the ``... `` prompt, a blank line ends a block. What the statement
prints, its value's ``repr`` and any traceback go to the client through the
``write`` callable; nothing reaches the reactor. ``sys.stdout``,
``sys.stderr`` and ``sys.displayhook`` are redirected only while the
statement runs (the reactor is single-threaded, so nothing else prints in
between).

Code runs on the caller's thread: the reactor's. A statement that blocks
(``time.sleep(60)``, an endless loop) blocks the whole server, exactly as it
would in a callback.

``exit()``, ``quit()``, ``sys.exit()`` (any ``SystemExit``) and the bare
words ``exit``/``quit`` end the session only: :attr:`Shell.finished` is set
and the caller closes the connection. ``SystemExit`` never propagates.

:func:`namespace` builds the names a session starts with: ``application``
(the root of the running service tree) and the core modules.
"""

from __future__ import annotations

import builtins
import code
import io
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["Shell", "namespace", "banner", "one_line", "PS1", "PS2"]

PS1 = ">>> "
PS2 = "... "

#: Core modules pre-imported in every session, by the name a session sees.
CORE_MODULES = ("service", "internet", "protocol", "basic", "endpoints", "log", "persist", "task", "reactor")


class _Quitter:
    """``exit``/``quit`` in a session: calling it ends the session (not the server)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D to end the session"

    def __call__(self, code: Any = None) -> None:
        raise SystemExit(code)


def namespace(application: Any) -> dict[str, Any]:
    """A fresh namespace holding ``application`` and the core modules."""
    import importlib

    names: dict[str, Any] = {
        "__name__": "__console__",
        "__doc__": None,
        "__builtins__": builtins,
        "application": application,
        "exit": _Quitter("exit"),
        "quit": _Quitter("quit"),
    }
    for name in CORE_MODULES:
        names[name] = importlib.import_module(f"tapster.core.{name}")
    return names


def one_line(source: str) -> str:
    """A statement for a log line: its line ends written as ``\\n`` so that one record is one line."""
    return source.rstrip("\n").replace("\\", "\\\\").replace("\n", "\\n")


def banner(console: Any) -> str:
    """What a session shows after login: where it is and what it can use."""
    import os

    import tapster.core
    app = console.runtime.application
    name = getattr(app, "name", None) or "?"
    return (
        f"tapster {tapster.core.__version__} console in application {name!r} (pid {os.getpid()}).\n"
        "Names: application (the live service tree), service, internet, protocol, basic, endpoints,\n"
        "log, persist, task, reactor. Changes take effect at once; application.save('known-good')\n"
        "keeps them. Code runs on the reactor: a blocking call blocks the server. exit() or ^D ends.\n"
    )


class _ClientStream(io.TextIOBase):
    """A text file whose writes go to the client (``print`` inside a statement)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self._write = write

    @property
    def encoding(self) -> str:  # type: ignore[override]  # a plain attribute in TextIOBase's stub
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._write(text)
        return len(text)


class Shell(code.InteractiveInterpreter):
    """One session's interpreter over a namespace that may be shared with other sessions.

    ``write`` receives all output as text with ``\\n`` line ends.
    ``on_run(source)`` is told every statement about to run (for the audit log).
    """

    def __init__(
        self,
        locals: dict[str, Any],
        write: Callable[[str], None],
        on_run: Callable[[str], None] | None = None,
        filename: str = "<console>",
    ) -> None:
        super().__init__(locals)
        self._out = write
        self._on_run = on_run
        self.filename = filename
        self.buffer: list[str] = []
        self.finished = False
        self._stream = _ClientStream(write)

    @property
    def prompt(self) -> str:
        """What to show before the next line: ``>>> `` or ``... `` inside a statement."""
        return PS2 if self.buffer else PS1

    def write(self, data: str) -> None:
        self._out(data)

    def push(self, line: str) -> bool:
        """Add one line of input; returns True when the statement needs more lines."""
        if self.finished:
            return False
        if not self.buffer:
            if line.strip() in ("exit", "quit"):
                self.finished = True
                return False
            if not line.strip():
                return False  # an empty line outside a statement: nothing to run
        self.buffer.append(line)
        source = "\n".join(self.buffer)
        more = self.runsource(source, self.filename)
        if not more:
            self.buffer = []
        return more

    def interrupt(self) -> None:
        """^C: abandon the statement being typed."""
        self.buffer = []
        self.write("KeyboardInterrupt\n")

    def runcode(self, code: Any) -> None:
        if self._on_run is not None:
            self._on_run("\n".join(self.buffer))
        saved = sys.stdout, sys.stderr, sys.displayhook
        sys.stdout = sys.stderr = self._stream
        sys.displayhook = self._display
        try:
            exec(code, self.locals)
        except SystemExit:
            self.finished = True
        except BaseException:  # the user's error belongs to the user, never the reactor
            self.showtraceback()
        finally:
            sys.stdout, sys.stderr, sys.displayhook = saved

    def _display(self, value: Any) -> None:
        """``sys.displayhook`` for the session: the repr to the client, ``_`` in the namespace."""
        if value is None:
            return
        self.locals["_"] = None
        self.write(repr(value) + "\n")
        self.locals["_"] = value

    def showtraceback(self) -> None:
        """The traceback without this module's frame, always to the client (never sys.excepthook)."""
        kind, value, tb = sys.exc_info()
        lines = traceback.format_exception(kind, value, tb.tb_next if tb is not None else None)
        self.write("".join(lines))

    def showsyntaxerror(self, filename: str | None = None, **kwargs: Any) -> None:
        kind, value, _tb = sys.exc_info()
        if filename and isinstance(value, SyntaxError):
            value.filename = filename
        self.write("".join(traceback.format_exception_only(kind, value)))
