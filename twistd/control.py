"""``twistd --status``, ``--stop`` and ``--reload``: find a running twistd through its pidfile.

What decides whether an instance runs is the pidfile's *lock*, exactly as
at start (:mod:`tapster.twistd.pidfile`): a file left by a crash, or holding a pid
the kernel has since given to an unrelated process, is reported as "not
running" and never gets that process killed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from tapster.twistd.pidfile import read_pid

__all__ = ["Probe", "probe", "status", "stop", "reload", "reload_status_path", "NOT_RUNNING"]

#: ``--status`` exit status when nothing runs (as LSB init scripts expect).
NOT_RUNNING = 3


@dataclass(frozen=True)
class Probe:
    """What a pidfile says: whether a live process holds it, and its pid."""

    path: str
    running: bool
    pid: int | None
    exists: bool


def probe(path: str) -> Probe:
    """Look at ``path`` without disturbing its holder (a shared lock, tried and released at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Probe(path, False, None, False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            pid = read_pid(path)
            deadline = time.monotonic() + 1.0
            while pid is None and time.monotonic() < deadline:  # the holder is writing it right now
                time.sleep(0.01)
                pid = read_pid(path)
            return Probe(path, True, pid, True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return Probe(path, False, read_pid(path), True)
    finally:
        os.close(fd)


def _describe_stale(p: Probe) -> str:
    if not p.exists:
        return f"not running (no pidfile {p.path})"
    left = f" (pidfile {p.path} is left over from a process that is gone"
    return "not running" + left + (f", pid {p.pid})" if p.pid else ")")


def status(path: str, out: TextIO | None = None) -> int:
    """Print whether twistd runs with pidfile ``path``; 0 running, 3 not."""
    out = out or sys.stdout
    p = probe(path)
    if p.running:
        who = f"pid {p.pid}" if p.pid else "a process whose pid is unreadable"
        print(f"twistd: running as {who} ({p.path})", file=out)
        return 0
    print(f"twistd: {_describe_stale(p)}", file=out)
    return NOT_RUNNING


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie nobody reaps yet (PID 1 in a container may not) has exited all the same
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop(path: str, timeout: float, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """SIGTERM the twistd holding ``path`` and wait up to ``timeout`` s for it to exit.

    0 when it stopped or was not running; 1 when it could not be signalled or
    is still running at the deadline.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    p = probe(path)
    if not p.running:
        print(f"twistd: {_describe_stale(p)}; nothing to stop", file=out)
        return 0
    if p.pid is None:
        print(f"twistd: {p.path} is held by a process but holds no pid; stop it by hand", file=err)
        return 1
    try:
        os.kill(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"twistd: not running (pid {p.pid} from {p.path} is gone)", file=out)
        return 0
    except PermissionError:
        print(f"twistd: cannot signal pid {p.pid} ({p.path}): permission denied (run as its user or root)",
              file=err)
        return 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not probe(path).running and _gone(p.pid):
            print(f"twistd: stopped pid {p.pid} ({p.path})", file=out)
            return 0
        time.sleep(0.02)
    print(f"twistd: pid {p.pid} is still running {timeout:g}s after SIGTERM (its log says why; "
          f"kill -KILL {p.pid} forces it)", file=err)
    return 1


def _reload_state(path: str) -> tuple[int, str] | None:
    """(sequence number, outcome) from the daemon's reload status file; None before it wrote one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(65536).strip()
    except OSError:
        return None
    number, _, outcome = text.partition(" ")
    return (int(number), outcome) if number.isdigit() else None


def reload_status_path(pidfile: str) -> str:
    """The file beside ``pidfile`` where a daemon writes how each reload went (``<number> ok|error <line>``)."""
    return f"{pidfile}.reload"


def reload(path: str, timeout: float, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """SIGHUP the twistd holding ``path`` and wait for the outcome it writes to ``path.reload``.

    0 when it reloaded; 1 when the reload failed (the daemon keeps serving its
    old application: the line says why), when nothing runs, or when no outcome
    came within ``timeout`` seconds.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    p = probe(path)
    if not p.running or p.pid is None:
        print(f"twistd: {_describe_stale(p) if not p.running else 'the pidfile holds no pid'}; nothing to reload",
              file=err)
        return 1
    status_path = reload_status_path(path)
    before = _reload_state(status_path)
    if before is None:
        print(f"twistd: pid {p.pid} ({p.path}) wrote no {status_path}: is it a twistd that reloads on SIGHUP?",
              file=err)
        return 1
    try:
        os.kill(p.pid, signal.SIGHUP)
    except PermissionError:
        print(f"twistd: cannot signal pid {p.pid} ({p.path}): permission denied (run as its user or root)",
              file=err)
        return 1
    except ProcessLookupError:
        print(f"twistd: not running (pid {p.pid} from {p.path} is gone); nothing to reload", file=err)
        return 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _reload_state(status_path)
        if state is not None and state[0] > before[0]:
            kind, _, text = state[1].partition(" ")
            if kind == "ok":
                print(f"twistd: {text}", file=out)
                return 0
            print(f"twistd: {text}", file=err)
            return 1
        if _gone(p.pid):
            print(f"twistd: pid {p.pid} exited during the reload (its log says why)", file=err)
            return 1
        time.sleep(0.02)
    print(f"twistd: pid {p.pid} did not report a reload within {timeout:g}s (its log says why)", file=err)
    return 1
