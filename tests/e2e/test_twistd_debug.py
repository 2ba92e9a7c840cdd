"""Diagnostics end to end: pdb post-mortem in a terminal, the profiler's report, --spew."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e._e2e import DEADLINE, command, free_port, nc, wait_for, wait_for_port
from tests.e2e._twistd_helpers import QOTD_TAC, tac

BOOM_TAC = QOTD_TAC + """
from tapster.core.service import Service


def boom():
    raise RuntimeError("boom from a timer")


class Boom(Service):
    def startService(self):
        Service.startService(self)
        from tapster.core import reactor
        reactor.callLater(0.05, boom)


Boom().setServiceParent(application)
"""


def _read_until(fd: int, needle: bytes, seen: bytearray, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while needle not in seen:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} never came; got:\n{seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"output ended before {needle!r}:\n{seen.decode(errors='replace')}")
            seen.extend(chunk)


def test_debug_in_a_terminal_enters_pdb_on_an_unhandled_error_then_continues(tmp_path: Path) -> None:
    port = free_port()
    tac(tmp_path, "boom.tac", BOOM_TAC.format(port=port))
    master, slave = pty.openpty()
    proc = subprocess.Popen([command("twistd"), "-n", "-b", "-y", "boom.tac"], cwd=tmp_path,
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(slave)
    try:
        assert proc.stdout is not None
        out = bytearray()
        _read_until(proc.stdout.fileno(), b"(Pdb)", out)
        assert b"RuntimeError: boom from a timer" in out and b"entering the debugger" in out
        assert b'raise RuntimeError("boom from a timer")' in out  # pdb stands where it was raised
        os.write(master, b"c\n")  # continue: the server goes on serving
        wait_for_port(port, proc)
        assert nc(port) == b"from a tac\r\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_without_a_terminal_debug_only_logs_the_traceback(tmp_path: Path, twistd) -> None:
    port = free_port()
    tac(tmp_path, "boom.tac", BOOM_TAC.format(port=port))
    server = twistd("-n", "-b", "-y", "boom.tac", "-l", "boom.log")  # stdin is not a terminal here
    log = tmp_path / "boom.log"
    wait_for(lambda: log.exists() and "boom from a timer" in log.read_text(), "the logged error")
    assert nc(port) == b"from a tac\r\n"  # still serving
    assert server.stop() == 0
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: boom from a timer" in text
    assert "(Pdb)" not in server.stdout + server.stderr


def test_profile_report_is_written_at_exit(tmp_path: Path, twistd) -> None:
    port = free_port()
    server = twistd("-n", "-p", "prof.txt", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port, server.proc)
    nc(port)
    assert server.stop() == 0
    report = (tmp_path / "prof.txt").read_text()
    assert "function calls" in report and "runner.py" in report and "connectionMade" in report


def test_spew_logs_the_applications_calls(tmp_path: Path, twistd) -> None:
    port = free_port()
    server = twistd("-n", "--spew", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port, server.proc)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    assert server.stop() == 0
    assert "[spew] INFO: tapster.plugins.qotd.QOTD.connectionMade (" in server.stdout
