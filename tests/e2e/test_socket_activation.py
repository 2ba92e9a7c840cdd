"""Socket activation for real, with Debian's systemd-socket-activate (issue 12, item 2)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, assert_one_clean_line, command, free_port, nc, run, wait_for

QUOTE = b"An apple a day keeps the doctor away.\r\n"


def activate(tmp_path: Path, port: int, names: str, *twistd_args: str) -> subprocess.Popen[str]:
    exe = shutil.which("systemd-socket-activate")
    if exe is None:
        pytest.fail("systemd-socket-activate is not installed (apt-get install systemd; .ci/run does it)")
    return subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", f"--fdname={names}", command("twistd"), *twistd_args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


@pytest.mark.parametrize("endpoint", ["systemd:name=qotd", "systemd:index=0", "fd:3", "systemd:domain=INET:index=0"])
def test_a_saved_application_adopts_the_socket_systemd_passes(tmp_path: Path, endpoint: str) -> None:
    port = free_port()
    made = run("mktap", "qotd", "-p", endpoint, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    proc = activate(tmp_path, port, "qotd", "-n", "-o", "-f", "qotd.tap")
    try:
        wait_for(lambda: nc(port) == QUOTE, "the activated twistd to answer")  # the first connection starts it
        assert nc(port) == QUOTE
    finally:
        out, err = finish(proc)
    assert proc.returncode == 0, err
    assert "QOTDFactory listening on 127.0.0.1:" in out
    assert "LISTEN_FDS" not in out


def test_the_socket_activated_application_saves_the_name_not_the_descriptor(tmp_path: Path) -> None:
    port = free_port()
    assert run("mktap", "--type", "yaml", "qotd", "-p", "systemd:name=qotd", cwd=tmp_path).returncode == 0
    assert "systemd:name=qotd" in (tmp_path / "qotd.yaml").read_text()
    proc = activate(tmp_path, port, "qotd", "-n", "-f", "qotd.yaml")
    try:
        wait_for(lambda: nc(port) == QUOTE, "the activated twistd to answer")
    finally:
        _, err = finish(proc)
    assert proc.returncode == 0, err
    assert "systemd:name=qotd" in (tmp_path / "qotd-shutdown.yaml").read_text()


def test_an_unknown_name_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", "systemd:name=other", cwd=tmp_path).returncode == 0
    exe = shutil.which("systemd-socket-activate") or "systemd-socket-activate"
    errors = tmp_path / "stderr"
    with errors.open("w") as err_file:
        # systemd-socket-activate stays, to start the command again at the next connection: read its stderr file.
        proc = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", "--fdname=qotd", command("twistd"), "-n", "-o",
                                 "-f", "qotd.tap"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_file)
        try:
            wait_for(lambda: "Listening on" in errors.read_text(), "systemd-socket-activate to listen")
            nc(port)  # starts twistd, which cannot serve and exits
            wait_for(lambda: "twistd:" in errors.read_text(), f"twistd's error line in {errors}")
        finally:
            finish_quietly(proc)
    err = errors.read_text()
    lines = [line for line in err.splitlines() if line.startswith("twistd:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "systemd passed no socket named 'other': passed: qotd (index 0, fd 3)" in lines[0]


def finish_quietly(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_without_activation_the_endpoint_says_what_is_missing(tmp_path: Path) -> None:
    result = run("twistd", "-n", "qotd", "-p", "systemd:name=qotd", cwd=tmp_path)
    assert_one_clean_line(result)
    assert "none were passed (LISTEN_FDS is not set for this process)" in result.stderr


@pytest.mark.parametrize("endpoint, needle", [
    ("systemd:domain=INET", "give name=NAME"),
    ("systemd:name=a:index=0", "give name=NAME"),
    ("systemd:index=x", "index 'x' is not a number"),
    ("fd:1", "is not a number of 3 or more"),
    ("systemd:name=a:domain=IPX", "use INET, INET6 or UNIX"),
])
def test_bad_descriptions(tmp_path: Path, endpoint: str, needle: str) -> None:
    result = run("mktap", "qotd", "-p", endpoint, cwd=tmp_path)
    assert_one_clean_line(result)
    assert needle in result.stderr and not (tmp_path / "qotd.tap").exists()
