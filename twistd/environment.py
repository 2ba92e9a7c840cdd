"""The process's surroundings: run directory, chroot, umask, and the name shown in ``ps``.

Order (see :mod:`tapster.twistd.cli`): ``--rundir`` first, so that every relative
path the administrator typed (the application, the log, the pidfile, the
shutdown file) is in the run directory; with ``--chroot``, the run directory
is a path *inside* the jail, entered from outside before loading and from
inside after the chroot, so that relative paths mean the same thing both
times. The chroot itself comes after the application is loaded and the
daemon has forked, and just before the log and the pidfile are opened.

Everything Python imports lazily later (asyncio, the reactor, formats for
the shutdown save, logging handlers) is imported before the chroot: the jail
usually holds no Python library.
"""

from __future__ import annotations

import importlib
import os

from tapster.core.errors import TapsterError

__all__ = ["run_directory", "enter_rundir", "enter_chroot", "prepare_for_chroot", "set_process_title",
           "pidfile_path"]


def run_directory(rundir: str, chroot: str | None) -> str:
    """The run directory as seen from outside the jail (the one to enter before the chroot)."""
    if not chroot:
        return rundir
    inside = rundir if rundir != "." else "/"
    return os.path.join(chroot, inside.lstrip("/"))


def enter_rundir(rundir: str, chroot: str | None = None) -> str:
    """chdir to the run directory (outside view); returns its absolute path."""
    target = run_directory(rundir, chroot)
    try:
        os.chdir(target)
    except OSError as e:
        option = "--chroot/--rundir" if chroot else "--rundir"
        raise TapsterError(f"cannot change to run directory {target}: {e.strerror} ({option})") from e
    return os.getcwd()


def enter_chroot(chroot: str, rundir: str = ".") -> None:
    """chroot to ``chroot``, then enter the run directory inside it."""
    try:
        os.chroot(chroot)
    except OSError as e:
        hint = " (only root can chroot)" if os.geteuid() != 0 else ""
        raise TapsterError(f"cannot chroot to {chroot}: {e.strerror}{hint}") from e
    inside = "/" + (rundir if rundir != "." else "").lstrip("/")
    try:
        os.chdir(inside)
    except OSError as e:
        raise TapsterError(f"cannot change to run directory {inside} inside the chroot {chroot}: {e.strerror}") from e


#: Modules imported on first use after start-up: loaded before a chroot hides the library.
_LAZY_MODULES = (
    "asyncio",
    "asyncio.unix_events",
    "selectors",
    "concurrent.futures.thread",
    "json",
    "logging.handlers",
    "encodings.idna",
    "encodings.ascii",
    "traceback",
    "linecache",
    "tapster.core._reactor.loop",
    "tapster.core._reactor.ports",
    "tapster.core.failure",
    "tapster.twistd.logfile",
    "tapster.twistd.runner",
)


def prepare_for_chroot(reactor: str, extra: tuple[str, ...] = ()) -> None:
    """Import what the server will need once inside the jail."""
    names = list(_LAZY_MODULES) + list(extra)
    if reactor == "uvloop":
        names.append("uvloop")
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # optional (e.g. rich when stdout is not a terminal): its absence is reported when used


def set_process_title(name: str) -> None:
    """Show ``name`` in ``ps``/``top``/``pgrep``: setproctitle when installed, and the kernel's comm.

    ``/proc/self/comm`` (what ``ps -e``, ``top`` and ``pgrep`` match; 15
    bytes at most) is written in any case; ``setproctitle``, when installed,
    also replaces the command line ``ps aux`` shows.
    """
    try:
        import setproctitle
    except ImportError:
        pass
    else:
        setproctitle.setproctitle(name)
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name.encode("utf-8", "replace")[:15])
    except OSError:
        pass  # not Linux, or no /proc: the name is cosmetic


def pidfile_path(pidfile: str, rundir: str = ".", chroot: str | None = None) -> str:
    """Where a daemon started with these options keeps its pidfile, seen from here (for --stop/--status)."""
    if chroot:
        inside = (
            pidfile
            if os.path.isabs(pidfile)
            else os.path.join("/" + (rundir if rundir != "." else "").lstrip("/"), pidfile)
        )
        return os.path.join(os.path.abspath(chroot), inside.lstrip("/"))
    return os.path.abspath(os.path.join(rundir, pidfile))
