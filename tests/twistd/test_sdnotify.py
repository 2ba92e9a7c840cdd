"""The sd_notify protocol against a receiving socket made in the test, as systemd's would be."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapster.twistd.sdnotify import Notifier, from_environment


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def fields(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().split("\n"))


def test_ready_status_stopping_and_watchdog(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier(path)
    assert notifier.ready("serving 'qotd'")
    assert fields(sock.recv(4096)) == {"READY": "1", "STATUS": "serving 'qotd'", "MAINPID": str(os.getpid())}
    notifier.status("two\nlines")  # a newline would start another field
    assert sock.recv(4096) == b"STATUS=two lines"
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.stopping("bye")
    assert fields(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "bye"}
    notifier.reloading()
    got = fields(sock.recv(4096))
    assert got["RELOADING"] == "1" and int(got["MONOTONIC_USEC"]) > 0
    notifier.close()


def test_abstract_socket() -> None:
    name = f"tapster-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        env = {"NOTIFY_SOCKET": "@" + name}
        notifier = from_environment(env)
        assert notifier is not None and notifier.watchdog_interval is None
        notifier.status("abstract")
        assert sock.recv(100) == b"STATUS=abstract"
    finally:
        sock.close()


def test_environment_is_read_once_and_removed(receiver: tuple[str, socket.socket]) -> None:
    path, _ = receiver
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid()), "OTHER": "x"}
    notifier = from_environment(env)
    assert env == {"OTHER": "x"}
    assert notifier is not None and notifier.watchdog_usec == 3000000 and notifier.watchdog_interval == 1.5


@pytest.mark.parametrize("extra, interval", [
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # another process's watchdog
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "junk"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "2000000"}, 1.0),  # no pid given: ours
])
def test_watchdog_variables(receiver: tuple[str, socket.socket], extra: dict[str, str],
                            interval: float | None) -> None:
    notifier = from_environment({"NOTIFY_SOCKET": receiver[0], **extra})
    assert notifier is not None and notifier.watchdog_interval == interval


def test_no_socket_or_a_bad_one_means_no_notifier(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert from_environment({}) is None
    assert from_environment({"NOTIFY_SOCKET": "relative/path"}) is None
    assert from_environment({"NOTIFY_SOCKET": str(tmp_path / "nothing-there")}) is None
    assert "not notifying systemd" in caplog.text and "absolute path" in caplog.text


def test_a_vanished_receiver_never_raises(tmp_path: Path) -> None:
    path = str(tmp_path / "gone")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    notifier = Notifier(path)
    sock.close()
    assert notifier.watchdog() is False and notifier.status("x") is False
