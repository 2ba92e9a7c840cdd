"""twistd as a daemon: the launcher returns only once the port is bound, or fails with the daemon's error."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._e2e import assert_one_clean_line, free_port, nc, run, wait_for

PIDFILE = "qotd.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[int]]:
    """Pids of daemons a test started; killed at the end if still alive."""
    pids: list[int] = []
    yield pids
    pidfile = tmp_path / PIDFILE
    if pidfile.exists() and pidfile.read_text().strip().isdigit():
        pids.append(int(pidfile.read_text()))
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _build(tmp_path: Path, port: int, *extra: str) -> None:
    made = run("mktap", *extra, "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", "-s", "daemonic", cwd=tmp_path)
    assert made.returncode == 0, made.stderr


def test_daemon_start_serve_stop(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    _build(tmp_path, port)
    launched = run("twistd", "-f", "qotd.tap", "--pidfile", PIDFILE, "--logfile", "qotd.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout == "" and launched.stderr == ""
    # No polling: the launcher returned, so the port must accept right now.
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    pid = int((tmp_path / PIDFILE).read_text())
    daemons.append(pid)
    assert _alive(pid)
    assert os.getsid(pid) == pid or os.getsid(pid) != os.getsid(0)  # its own session, not ours
    assert nc(port) == b"daemonic\r\n"
    log = (tmp_path / "qotd.log").read_text()
    assert f"listening on 127.0.0.1:{port}" in log and "qotd started" in log

    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not (tmp_path / PIDFILE).exists() and not _alive(pid), "the daemon to exit")
    assert (tmp_path / "qotd-shutdown.tap").is_file()
    assert "saved qotd-shutdown.tap" in (tmp_path / "qotd.log").read_text()


def test_daemon_defaults_pidfile_and_logfile(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    _build(tmp_path, port)
    launched = run("twistd", "-o", "-f", "qotd.tap", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "twistd.pid").read_text())
    daemons.append(pid)
    assert (tmp_path / "twistd.log").read_text().count("\n") >= 3
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not _alive(pid), "the daemon to exit")
    assert not (tmp_path / "twistd.pid").exists()


def test_port_in_use_fails_the_launch_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        _build(tmp_path, port)
        launched = run("twistd", "-f", "qotd.tap", "--pidfile", PIDFILE, "--logfile", "qotd.log", cwd=tmp_path)
    assert_one_clean_line(launched)
    assert launched.returncode == 1
    assert f"127.0.0.1:{port}" in launched.stderr and "in use" in launched.stderr
    assert not (tmp_path / PIDFILE).exists()


@pytest.mark.parametrize("content", [None, b"\x80\x05garbage"])
def test_missing_or_corrupt_file_fails_the_launch(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / "qotd.tap").write_bytes(content)
    launched = run("twistd", "-f", "qotd.tap", "--pidfile", PIDFILE, cwd=tmp_path)
    assert_one_clean_line(launched)
    assert "qotd.tap" in launched.stderr
    assert not (tmp_path / PIDFILE).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")
def test_unknown_user_fails_the_launch(tmp_path: Path) -> None:
    port = free_port()
    _build(tmp_path, port, "-u", "no-such-user-xyz")
    launched = run("twistd", "-f", "qotd.tap", "--pidfile", PIDFILE, "--logfile", "qotd.log", cwd=tmp_path)
    assert_one_clean_line(launched)
    assert "no-such-user-xyz" in launched.stderr
    assert not (tmp_path / PIDFILE).exists()


def test_second_daemon_is_refused_then_stale_pidfile_is_replaced(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    _build(tmp_path, port)
    assert run("twistd", "-o", "-f", "qotd.tap", "--pidfile", PIDFILE, cwd=tmp_path).returncode == 0
    first = int((tmp_path / PIDFILE).read_text())
    daemons.append(first)
    second = run("twistd", "-o", "-f", "qotd.tap", "--pidfile", PIDFILE, cwd=tmp_path)
    assert_one_clean_line(second)
    assert f"already running as pid {first}" in second.stderr
    assert int((tmp_path / PIDFILE).read_text()) == first

    os.kill(first, signal.SIGKILL)  # a crash: the pidfile stays behind
    wait_for(lambda: not _alive(first), "the first daemon to die")
    assert (tmp_path / PIDFILE).exists()
    again = run("twistd", "-o", "-f", "qotd.tap", "--pidfile", PIDFILE, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    new = int((tmp_path / PIDFILE).read_text())
    daemons.append(new)
    assert new != first and _alive(new)


def test_daemon_needs_a_log_file(tmp_path: Path) -> None:
    r = run("twistd", "-l", "-", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2 and "-n" in r.stderr
