"""``twistd --reload``'s failure paths against a real process holding a real pidfile."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tapster.twistd import control

HOLDER = textwrap.dedent("""
    import os, signal, sys, time
    from tapster.twistd.pidfile import PidFile
    behaviour = sys.argv[2]
    pidfile = PidFile(sys.argv[1])
    pidfile.acquire()
    pidfile.write()
    if behaviour != "no-status":
        with open(sys.argv[1] + ".reload", "w") as f:
            f.write("0 ready\\n")
    if behaviour == "ignore":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)   # alive, but never answers
    elif behaviour == "die":
        signal.signal(signal.SIGHUP, lambda *a: os._exit(3))
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path: Path):
    started: list[subprocess.Popen[str]] = []

    def start(behaviour: str) -> str:
        path = str(tmp_path / "app.pid")
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, path, behaviour], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return path

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def run_reload(path: str, timeout: float) -> tuple[int, str]:
    err = io.StringIO()
    code = control.reload(path, timeout=timeout, out=io.StringIO(), err=err)
    return code, err.getvalue()


def test_a_daemon_that_never_answers_times_out_in_one_line(holder) -> None:
    path = holder("ignore")
    begun = time.monotonic()
    code, err = run_reload(path, timeout=0.5)
    assert code == 1 and time.monotonic() - begun >= 0.5
    assert err.count("\n") == 1 and "did not report a reload within 0.5s" in err


def test_a_daemon_that_dies_during_the_reload_is_reported(holder) -> None:
    code, err = run_reload(holder("die"), timeout=10)
    assert code == 1 and "exited during the reload" in err


def test_a_process_that_wrote_no_status_is_not_signalled(holder) -> None:
    code, err = run_reload(holder("no-status"), timeout=1)
    assert code == 1 and "wrote no" in err and "reloads on SIGHUP" in err


def test_nothing_running(tmp_path: Path) -> None:
    code, err = run_reload(str(tmp_path / "none.pid"), timeout=1)
    assert code == 1 and "nothing to reload" in err
