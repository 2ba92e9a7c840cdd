"""twistd under a Type=notify unit, with a receiving socket standing in for systemd (issue 12, item 1)."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, command, free_port, nc, run, wait_for, wait_for_port
from tests.e2e._twistd_helpers import alive, daemons, tac  # noqa: F401  (daemons is a fixture)


class Receiver:
    """systemd's end of NOTIFY_SOCKET: collects messages as dicts."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[dict[str, str]] = []

    def next(self, key: str, deadline: float = DEADLINE) -> dict[str, str]:
        """The next message carrying ``key`` (earlier ones are kept in ``messages``)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            message = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.messages.append(message)
            if key in message:
                return message
        pytest.fail(f"no {key} from twistd within {deadline}s; got {self.messages}")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(str(tmp_path / "notify.sock"))
    yield r
    r.sock.close()


ENV_TAC = """\
import os
from tapster.core.internet import TCPServer
from tapster.core.service import Application
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

with open("seen-env", "w") as f:
    f.write(repr(sorted(k for k in os.environ if k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"))))
application = Application("notified")
TCPServer({port}, QOTDFactory(StaticQuoter("ready")), interface="127.0.0.1").setServiceParent(application)
"""


def test_ready_only_when_listening_then_watchdog_status_and_stopping(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    tac(tmp_path, "n.tac", ENV_TAC.format(port=port))
    env = {**os.environ, "NOTIFY_SOCKET": receiver.path, "WATCHDOG_USEC": "300000"}
    proc = subprocess.Popen([command("twistd"), "-n", "-o", "-y", "n.tac"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = receiver.next("READY")
        # Never earlier than the port: at READY, the port answers at once.
        assert nc(port) == b"ready\r\n"
        assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid)
        assert ready["STATUS"] == f"serving 'notified' on tcp 127.0.0.1:{port}; 0 connections open"
        assert not any("READY" in m for m in receiver.messages[:-1])
        for _ in range(3):  # every 0.15 s, from the reactor
            receiver.next("WATCHDOG")
        # The application's code never saw systemd's variables.
        assert (tmp_path / "seen-env").read_text() == "[]"
        proc.send_signal(signal.SIGTERM)
        stopping = receiver.next("STOPPING")
        assert stopping["STOPPING"] == "1" and "stopping 'notified'" in stopping["STATUS"]
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "systemd watchdog: pinging every 0.15s" in out


def test_a_stalled_reactor_stops_the_pings(tmp_path: Path, receiver: Receiver) -> None:
    """The pings come from the reactor: when it blocks, they stop (what systemd's watchdog is for)."""
    port = free_port()
    body = ENV_TAC.format(port=port) + (
        "import time\nfrom tapster.core import reactor\n"
        "reactor.callLater(0.5, time.sleep, 1.5)  # the loop blocks for 1.5 s\n"
    )
    tac(tmp_path, "stall.tac", body)
    env = {**os.environ, "NOTIFY_SOCKET": receiver.path, "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen([command("twistd"), "-n", "-o", "-y", "stall.tac"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        receiver.next("READY")
        stamps = []
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            receiver.next("WATCHDOG")
            stamps.append(time.monotonic())
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert max(gaps) > 1.0, gaps  # the stall shows as one long silence
        assert sorted(gaps)[len(gaps) // 2] < 0.3, gaps  # otherwise every 0.1 s
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)


def test_a_daemon_reports_its_own_pid(tmp_path: Path, receiver: Receiver, daemons: list[int]) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path).returncode == 0
    env = {**os.environ, "NOTIFY_SOCKET": receiver.path}
    launched = subprocess.run([command("twistd"), "-o", "-f", "qotd.tap", "--pidfile", "q.pid"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "q.pid").read_text())
    daemons.append(pid)
    ready = receiver.next("READY")
    assert ready["MAINPID"] == str(pid)  # the daemon, not the launcher that exited
    os.kill(pid, signal.SIGTERM)
    receiver.next("STOPPING")
    wait_for(lambda: not alive(pid), "the daemon to exit")


def test_an_unreachable_socket_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}
    proc = subprocess.Popen([command("twistd"), "-n", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0
    assert "cannot reach systemd's notification socket" in err and "not notifying systemd" in err
    assert "Traceback" not in err


def test_a_reload_says_reloading_then_ready(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    tac(tmp_path, "n.tac", ENV_TAC.format(port=port))
    env = {**os.environ, "NOTIFY_SOCKET": receiver.path}
    proc = subprocess.Popen([command("twistd"), "-n", "-o", "-y", "n.tac"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        receiver.next("READY")
        proc.send_signal(signal.SIGHUP)
        reloading = receiver.next("RELOADING")
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        ready = receiver.next("READY")
        assert ready["STATUS"].startswith("serving 'notified' on tcp 127.0.0.1:")
        assert nc(port) == b"ready\r\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0
