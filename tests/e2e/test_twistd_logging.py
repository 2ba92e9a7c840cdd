"""twistd's logs as an administrator meets them: logrotate's SIGUSR1, size rotation, JSON lines."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.e2e._e2e import free_port, nc, run, wait_for, wait_for_port
from tests.e2e._twistd_helpers import CHATTY_TAC, alive, daemons, tac  # noqa: F401  (daemons is a fixture)


def test_sigusr1_after_moving_the_log_file_writes_a_new_file_at_the_old_path(
        tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path).returncode == 0
    launched = run("twistd", "-o", "-f", "qotd.tap", "-l", "app.log", "--pidfile", "app.pid", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "app.pid").read_text())
    daemons.append(pid)
    log, moved = tmp_path / "app.log", tmp_path / "app.log.1"
    log.rename(moved)  # what logrotate does, then it sends SIGUSR1
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: log.exists() and "reopened the log file" in log.read_text(), "a new app.log")
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"  # still serving
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")
    old, new = moved.read_text(), log.read_text()
    assert "qotd started" in old and "reopened" not in old
    assert "received SIGTERM" in new and "qotd stopped" in new and "qotd started" not in new


def test_size_rotation_keeps_the_configured_number_of_files(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    tac(tmp_path, "chatty.tac", CHATTY_TAC.format(port=port))
    launched = run("twistd", "-y", "chatty.tac", "-l", "c.log", "--pidfile", "c.pid",
                   "--logfile-max-size", "4K", "--logfile-keep", "2", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "c.pid").read_text())
    daemons.append(pid)
    oldest = tmp_path / "c.log.2"
    wait_for(oldest.exists, "two rotations")
    # Keep logging until c.log.2 has been replaced twice: rotation goes on, the count stays.
    firsts: set[str] = set()

    def replaced_twice() -> bool:
        lines = oldest.read_text().splitlines()
        if lines:
            firsts.add(lines[0])
        return len(firsts) >= 3

    wait_for(replaced_twice, "more rotations")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")
    logs = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("c.log"))
    assert logs == ["c.log", "c.log.1", "c.log.2"]
    for name in logs:
        assert (tmp_path / name).stat().st_size <= 4096


def test_json_lines_in_the_foreground_carry_time_system_and_startup_facts(tmp_path: Path, twistd) -> None:
    port = free_port()
    server = twistd("-n", "--log-format", "json", "-r", "asyncio", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port, server.proc)
    assert server.stop() == 0
    events = [json.loads(line) for line in server.stdout.splitlines()]
    assert events and all(e["time"] and e["system"] and e["level"] for e in events)
    text = "\n".join(e["message"] for e in events)
    assert "tapster 0.1" in text and "(Python 3." in text and "reactor asyncio" in text
    assert "'qotd'" in text and f"listening on 127.0.0.1:{port}" in text
    assert any(e["system"] == "qotd" for e in events)
