"""Helpers for the twistd end-to-end tests: daemons to clean up, /proc readings, .tac files.

(The generic ones, running commands and waiting for ports, are in ``_e2e.py``.)
"""

from __future__ import annotations

import grp
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped between the open and the read
        return False


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """Pids of daemons a test started (append them); any still alive at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def proc_ids(pid: int) -> tuple[list[int], list[int]]:
    """(real, effective, saved, filesystem) uids and gids of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in status if line.startswith("Uid:")).split()[1:]
    gid = next(line for line in status if line.startswith("Gid:")).split()[1:]
    return [int(x) for x in uid], [int(x) for x in gid]


def nogroup() -> str:
    """Debian's group for nobody ("nogroup"), else "nobody"."""
    try:
        grp.getgrnam("nogroup")
        return "nogroup"
    except KeyError:
        return "nobody"


def free_privileged_port() -> int:
    for port in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


def tac(directory: Path, name: str, body: str) -> Path:
    """Write ``name`` (a .tac) in ``directory``."""
    path = directory / name
    path.write_text(body)
    return path


QOTD_TAC = """\
from tapster.core.internet import TCPServer
from tapster.core.service import Application
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("tacqotd")
TCPServer({port}, QOTDFactory(StaticQuoter("from a tac")), interface="127.0.0.1").setServiceParent(application)
"""

#: An application whose stopService never completes: twistd must force the stop.
SLOW_TAC = QOTD_TAC + """
import asyncio
from tapster.core.service import Service


class Slow(Service):
    def stopService(self):
        Service.stopService(self)
        return asyncio.get_running_loop().create_future()  # never done


Slow().setServiceParent(application)
"""

#: An application that logs many long lines, to fill log files quickly.
CHATTY_TAC = QOTD_TAC + """
import itertools

from tapster.core import log
from tapster.core.internet import TimerService

counter = itertools.count()
TimerService(0.002, lambda: log.msg("tick %d %s" % (next(counter), "x" * 200))).setServiceParent(application)
"""
