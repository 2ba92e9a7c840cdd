"""Fixtures for end-to-end tests: the real ``mktap`` and ``twistd`` as subprocesses, real sockets.

Everything listens on 127.0.0.1 only; waiting is always polling with a deadline.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DEADLINE = 15.0


def command(name: str) -> str:
    """The console script installed next to this interpreter (the project's venv)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e . first")
    return str(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, deadline: float = DEADLINE) -> None:
    """Poll until 127.0.0.1:port accepts a connection; fail early if ``proc`` died."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"server exited with {proc.returncode} before listening:\n{out}\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {deadline}s")


def wait_for(predicate, what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def nc(port: int, data: bytes | None = None, timeout: float = 10) -> bytes:
    """Talk to 127.0.0.1:port with Debian's netcat, as a user would."""
    exe = shutil.which("nc")
    if exe is None:
        pytest.fail("nc is not installed (apt-get install netcat-openbsd; .ci/run does it)")
    if data is None:
        args = [exe, "-d", "127.0.0.1", str(port)]  # -d: don't read stdin, just print what comes
    else:
        args = [exe, "-N", "127.0.0.1", str(port)]  # -N: shut down the write side after stdin EOF
    result = subprocess.run(args, input=data, capture_output=True, timeout=timeout)
    return result.stdout


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(name: str, *args: str, cwd: Path, timeout: float = 60) -> Result:
    """Run mktap/twistd to completion."""
    p = subprocess.run([command(name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


def assert_one_clean_line(result: Result) -> None:
    """Bad input: one line on stderr, no traceback, non-zero status."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr


class Server:
    """A twistd running in the foreground, stopped with SIGTERM at the end."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [command("twistd"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout = ""
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = DEADLINE) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            pytest.fail(f"twistd did not stop within {timeout}s after signal {sig}")
        return self.proc.returncode


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test; any still running at the end are killed."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate()


@pytest.fixture
def twistd(tmp_path: Path, servers: list[Server]):
    def start(*args: str, cwd: Path | None = None) -> Server:
        server = Server(*args, cwd=cwd or tmp_path)
        servers.append(server)
        return server

    return start


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Plain output: the tests read it as a pipe would.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("PYTHONPATH", raising=False)
