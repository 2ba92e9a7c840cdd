"""``twistd --health`` and ``--drain-time`` as an orchestrator uses them, probed with curl (issue 12, items 5-6)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, assert_one_clean_line, free_port, nc, run, wait_for, wait_for_port

#: One line of Prometheus' text format: name, optional labels, a number.
SAMPLE = re.compile(r'[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+]+')


def curl(url: str, *extra: str) -> tuple[int, str]:
    exe = shutil.which("curl")
    if exe is None:
        pytest.fail("curl is not installed (apt-get install curl; .ci/run does it)")
    p = subprocess.run([exe, "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5", *extra, url],
                       capture_output=True, text=True, timeout=10)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


def test_probes_metrics_and_the_drain_window(tmp_path: Path, twistd) -> None:
    port, health = free_port(), free_port()
    server = twistd("-n", "--health", f"tcp:{health}:interface=127.0.0.1", "--drain-time", "1.5",
                    "qotd", "-p", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(health, server.proc)
    base = f"http://127.0.0.1:{health}"
    assert curl(base + "/healthz") == (200, "ok\n")
    wait_for(lambda: curl(base + "/readyz")[0] == 200, "/readyz to say ready")
    for _ in range(3):
        assert nc(port).startswith(b"An apple a day")
    code, metrics = curl(base + "/metrics")
    assert code == 200
    samples = [line for line in metrics.splitlines() if not line.startswith("#")]
    assert samples and all(SAMPLE.fullmatch(line) for line in samples), metrics
    accepted = [line for line in samples if line.startswith("tapster_connections_accepted_total")]
    assert accepted == [f'tapster_connections_accepted_total{{port="tcp:127.0.0.1:{port}",factory="QOTDFactory"}} 3']
    assert 'tapster_up{application="qotd"} 1' in samples
    assert any(line.startswith("process_resident_memory_bytes ") for line in samples)
    assert curl(base + "/nothing")[0] == 404 and curl(base + "/healthz", "-X", "POST")[0] == 405
    head = subprocess.run([shutil.which("curl") or "curl", "-sI", base + "/readyz"], capture_output=True, text=True,
                          timeout=10).stdout
    assert head.startswith("HTTP/1.1 200 OK") and "Content-Length: 6" in head
    # SIGTERM: /readyz fails at once, while the application still accepts for --drain-time.
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(lambda: curl(base + "/readyz") == (503, "stopping\n"), "/readyz to fail")
    assert nc(port).startswith(b"An apple a day")
    assert time.monotonic() - signalled < 1.5  # all of that inside the window
    assert server.stop(timeout=DEADLINE) == 0
    assert "draining for 1.5s (--drain-time)" in server.stdout


@pytest.mark.parametrize("args, needle", [
    (["--health", "tcp:notaport"], "--health"),
    (["--health", "ssl:9100"], "plain HTTP"),
    (["--drain-time", "-1"], "--drain-time"),
])
def test_bad_health_options_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run("twistd", "-n", *args, "qotd", cwd=tmp_path)
    assert_one_clean_line(result)
    assert result.returncode == 2 and needle in result.stderr


def test_a_taken_health_port_fails_the_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        health = taken.getsockname()[1]
        result = run("twistd", "-n", "--health", f"tcp:{health}:interface=127.0.0.1", "qotd", "-p",
                     f"tcp:{free_port()}:interface=127.0.0.1", cwd=tmp_path)
    assert result.returncode == 1 and str(health) in result.stderr and "Traceback" not in result.stderr
