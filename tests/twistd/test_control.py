"""--status and --stop: decided by the pidfile's lock, never by a pid alone."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapster.twistd import control

REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import signal, sys, time
from tapster.twistd.pidfile import PidFile
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # exits through PidFile.release
with PidFile(sys.argv[1]):
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
"""


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def hold(path: Path, holders: list[subprocess.Popen], on_term: str = "exit") -> subprocess.Popen:
    """A process that locks ``path`` as twistd does, then waits."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), on_term], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    holders.append(proc)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_no_pidfile_is_not_running(tmp_path: Path) -> None:
    out = io.StringIO()
    assert control.status(str(tmp_path / "t.pid"), out) == control.NOT_RUNNING == 3
    assert "not running (no pidfile" in out.getvalue()


def test_a_locked_pidfile_is_running_with_its_pid(tmp_path: Path, holders) -> None:
    path = tmp_path / "t.pid"
    proc = hold(path, holders)
    probe = control.probe(str(path))
    assert probe.running and probe.pid == proc.pid
    out = io.StringIO()
    assert control.status(str(path), out) == 0
    assert out.getvalue() == f"twistd: running as pid {proc.pid} ({path})\n"
    assert proc.poll() is None  # probing did not disturb it


def test_a_stale_pidfile_with_a_live_pid_is_not_running_and_nobody_is_killed(tmp_path: Path, holders) -> None:
    path = tmp_path / "t.pid"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    holders.append(bystander)
    path.write_text(f"{bystander.pid}\n")  # a pid reused by an unrelated process
    out = io.StringIO()
    assert control.status(str(path), out) == 3
    assert "left over" in out.getvalue() and str(bystander.pid) in out.getvalue()
    assert control.stop(str(path), timeout=1, out=out) == 0
    assert bystander.poll() is None


def test_stop_sends_sigterm_and_waits_for_the_exit(tmp_path: Path, holders) -> None:
    path = tmp_path / "t.pid"
    proc = hold(path, holders)
    out = io.StringIO()
    assert control.stop(str(path), timeout=10, out=out) == 0
    assert out.getvalue() == f"twistd: stopped pid {proc.pid} ({path})\n"
    assert proc.poll() == 0 and not path.exists()


def test_stop_gives_up_at_the_deadline_with_a_clear_message(tmp_path: Path, holders) -> None:
    path = tmp_path / "t.pid"
    proc = hold(path, holders, on_term="ignore")
    err = io.StringIO()
    assert control.stop(str(path), timeout=0.3, err=err) == 1
    assert f"pid {proc.pid} is still running 0.3s after SIGTERM" in err.getvalue()
    assert f"kill -KILL {proc.pid}" in err.getvalue()
    assert proc.poll() is None


def test_stop_when_nothing_runs_succeeds(tmp_path: Path) -> None:
    out = io.StringIO()
    assert control.stop(str(tmp_path / "t.pid"), timeout=1, out=out) == 0
    assert "nothing to stop" in out.getvalue()


def test_main_status_and_stop_use_rundir(tmp_path: Path, holders, capsys) -> None:
    from tapster.twistd.cli import main

    proc = hold(tmp_path / "x.pid", holders)
    assert main(["--status", "-d", str(tmp_path), "--pidfile", "x.pid"]) == 0
    assert f"running as pid {proc.pid}" in capsys.readouterr().out
    assert main(["--stop", "-d", str(tmp_path), "--pidfile", "x.pid"]) == 0
    assert main(["--status", "-d", str(tmp_path), "--pidfile", "x.pid"]) == 3
    assert os.getcwd() != str(tmp_path)  # --stop/--status do not change directory
