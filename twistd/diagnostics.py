"""Diagnostics: ``--profile``/``--profiler``/``--savestats``, ``--spew``, and pdb post-mortem for ``--debug``.

All of them are imported only when asked for: a server that does not use
them pays nothing.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import cProfile
    import profile

__all__ = ["run_profiled", "start_spew", "stop_spew", "post_mortem_available", "post_mortem"]

T = TypeVar("T")

_log = logging.getLogger("tapster.twistd")


def run_profiled(func: Callable[[], T], path: str, profiler: str = "cprofile", savestats: bool = False) -> T:
    """Call ``func()`` under ``profiler``; at the end write a text report (or raw pstats) to ``path``.

    The report is written even when ``func`` raises, so a crash is profiled too.
    """
    prof: profile.Profile | cProfile.Profile
    if profiler == "profile":
        import profile

        prof = profile.Profile()
    else:
        import cProfile

        prof = cProfile.Profile()
    import pstats  # before the run: a chroot may hide the library by the time we write

    try:
        return prof.runcall(func)
    finally:
        try:
            if savestats:
                prof.dump_stats(path)
            else:
                with open(path, "w", encoding="utf-8") as f:
                    stats = pstats.Stats(prof, stream=f)
                    stats.sort_stats("cumulative").print_stats()
            _log.info("profile written to %s (%s%s)", path, profiler, ", pstats" if savestats else "")
        except OSError as e:
            _log.error("could not write the profile to %s: %s", path, e.strerror)


class _Spewer:
    """A ``sys.settrace`` function logging each Python call: ``module.function (file:line)``.

    Tracing is suspended while the trace function itself runs, so its own
    logging is not traced; calls *into* ``logging`` are left out too, to keep
    the output about the application.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            module = frame.f_globals.get("__name__") or "?"  # None while the interpreter shuts down
            if module != "logging" and not module.startswith("logging."):
                code = frame.f_code
                self.logger.info("%s.%s (%s:%d)", module, code.co_qualname, code.co_filename, frame.f_lineno,
                                 extra={"system": "spew"})
        return None  # no line events: calls only


def start_spew(logger: logging.Logger | None = None) -> None:
    """Log every function call in this thread and in threads started from now on."""
    spewer = _Spewer(logger or logging.getLogger("tapster.spew"))
    threading.settrace(spewer)
    sys.settrace(spewer)


def stop_spew() -> None:
    """Stop logging calls (before the interpreter tears modules down)."""
    sys.settrace(None)
    threading.settrace(None)


def post_mortem_available(nodaemon: bool, debug: bool) -> bool:
    """pdb needs a terminal: only in the foreground, with --debug, on an interactive stdin."""
    try:
        return nodaemon and debug and sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # stdin closed
        return False


def post_mortem(tb: TracebackType | None) -> None:
    """Drop into pdb at ``tb``; the server waits until the debugger is left."""
    if tb is None:
        return
    import pdb

    print("\n*** unhandled error: entering the debugger (c continues) ***", file=sys.stderr)
    pdb.post_mortem(tb)
