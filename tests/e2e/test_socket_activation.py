"""Socket activation for real, with Debian's systemd-socket-activate (issue 12, item 2)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
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


UDP_TAC = """\
from tapster.core.internet import UDPServer
from tapster.core.protocol import DatagramProtocol
from tapster.core.service import Application


class Echo(DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(b"echo:" + data, addr)


application = Application("udp")
UDPServer("systemd:name=dns", Echo()).setServiceParent(application)
"""


def test_a_udp_server_adopts_a_passed_datagram_socket(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "udp.tac").write_text(UDP_TAC)
    exe = shutil.which("systemd-socket-activate") or "systemd-socket-activate"
    proc = subprocess.Popen([exe, "-d", "-l", f"127.0.0.1:{port}", "--fdname=dns", command("twistd"), "-n", "-o",
                             "-y", "udp.tac"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(0.5)
    answers: list[bytes] = []

    def answered() -> bool:
        client.sendto(b"ping", ("127.0.0.1", port))  # the first datagram starts twistd; it stays queued
        try:
            answers.append(client.recv(100))
        except TimeoutError:
            return False
        return True

    try:
        wait_for(answered, "the activated UDP echo")
    finally:
        client.close()
        out, err = finish(proc)
    assert answers[0] == b"echo:ping" and proc.returncode == 0, err
    assert "listening on systemd:name=dns (UDP, passed by systemd)" in out


def test_a_unix_socket_passed_by_systemd(tmp_path: Path) -> None:
    path = tmp_path / "q.sock"
    assert run("mktap", "qotd", "-p", "systemd:name=q:domain=UNIX", cwd=tmp_path).returncode == 0
    exe = shutil.which("systemd-socket-activate") or "systemd-socket-activate"
    proc = subprocess.Popen([exe, "-l", str(path), "--fdname=q", command("twistd"), "-n", "-o", "-f", "qotd.tap"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def answer() -> bytes:
        nc_exe = shutil.which("nc") or "nc"
        return subprocess.run([nc_exe, "-U", "-d", str(path)], capture_output=True, timeout=10).stdout

    try:
        wait_for(lambda: path.exists() and answer() == QUOTE, "the activated twistd on the UNIX socket")
    finally:
        _, err = finish(proc)
    assert proc.returncode == 0, err


def test_a_tcp_name_given_a_unix_domain_is_refused(tmp_path: Path) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", "systemd:name=q:domain=UNIX", cwd=tmp_path).returncode == 0
    exe = shutil.which("systemd-socket-activate") or "systemd-socket-activate"
    errors = tmp_path / "stderr"
    with errors.open("w") as err_file:
        proc = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", "--fdname=q", command("twistd"), "-n", "-o", "-f",
                                 "qotd.tap"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_file)
        try:
            wait_for(lambda: "Listening on" in errors.read_text(), "systemd-socket-activate to listen")
            nc(port)
            wait_for(lambda: "twistd:" in errors.read_text(), "twistd's error line")
        finally:
            finish_quietly(proc)
    line = next(line for line in errors.read_text().splitlines() if line.startswith("twistd:"))
    assert "systemd socket 'q' is an AF_INET socket, not AF_UNIX: check the socket unit" in line


def test_bad_listen_fds_is_one_line(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "LISTEN_PID"}, "LISTEN_FDS": "lots"}
    result = subprocess.run([command("twistd"), "-n", "qotd", "-p", f"tcp:{free_port()}:interface=127.0.0.1"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "twistd: LISTEN_FDS='lots' is not a number of descriptors (1 to 4096)"
