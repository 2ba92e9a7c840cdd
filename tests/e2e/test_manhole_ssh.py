"""The SSH console with OpenSSH's client: key login, the live shell in a terminal, commands, the host key.

Needs asyncssh in the environment (the ``test`` extra has it) and Debian's
openssh-client (``.ci/run`` installs it).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, nc, run, wait_for, wait_for_port
from tests.e2e._terminal import Terminal, tool

pytest.importorskip("asyncssh")


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for term in started:
        term.close()


def keygen(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run([tool("ssh-keygen", "openssh-client"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def ssh_argv(port: int, key: Path, *command: str) -> list[str]:
    return [
        tool("ssh", "openssh-client"), "-p", str(port), "-i", str(key),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-F", "/dev/null",
        "admin@127.0.0.1", *command,
    ]


@pytest.fixture
def site(tmp_path: Path) -> tuple[int, int, Path]:
    """qotd + manhole built with mktap: (qotd port, ssh port, key)."""
    qotd_port, ssh_port = free_port(), free_port()
    key = keygen(tmp_path, "admin_key")
    made = run("mktap", "qotd", "--port", f"tcp:{qotd_port}:interface=127.0.0.1", "--static", "Before", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    added = run("mktap", "--append", "qotd.tap", "manhole", "--port", str(ssh_port),
                "--authorized-keys", "admin_key.pub", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    return qotd_port, ssh_port, key


def test_ssh_session_changes_the_running_server(site, tmp_path: Path, twistd, terminals: list[Terminal]) -> None:
    qotd_port, ssh_port, key = site
    server = twistd("-n", "-f", "qotd.tap")
    wait_for_port(ssh_port, server.proc)
    host_key = tmp_path / "qotd-ssh-host-key"
    wait_for(host_key.is_file, "the host key")  # the port is bound first, the key made when services start
    assert host_key.stat().st_mode & 0o777 == 0o600

    term = Terminal(ssh_argv(ssh_port, key))
    terminals.append(term)
    term.expect(">>> ")
    assert "console in application 'qotd'" in term.transcript
    term.sendline("application.getServiceNamed('qotd').args[1].quoter.quote = 'After'")
    term.expect(">>> ")
    assert nc(qotd_port) == b"After\r\n"
    term.sendline("1/0")
    assert "ZeroDivisionError" in term.expect(">>> ")
    term.sendline("application.save('known-good')")
    assert "'qotd-known-good.tap'" in term.expect(">>> ")
    term.send("\x04")  # ^D
    assert term.wait() == 0

    assert server.stop() == 0, server.stderr
    assert "admin logged in over ssh (public key)" in server.stdout
    key_before = host_key.read_bytes()

    again = twistd("-n", "-o", "-f", "qotd-shutdown.tap")
    wait_for_port(ssh_port, again.proc)
    assert nc(qotd_port) == b"After\r\n"
    done = subprocess.run(ssh_argv(ssh_port, key, "print(application.getServiceNamed('qotd').args[1].quoter.quote)"),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "After\n"
    assert host_key.read_bytes() == key_before  # the host key is kept, not regenerated
    assert again.stop() == 0


def test_ssh_command_exit_status_and_wrong_key(site, tmp_path: Path, twistd) -> None:
    _, ssh_port, key = site
    server = twistd("-n", "-o", "-f", "qotd.tap")
    wait_for_port(ssh_port, server.proc)
    failed = subprocess.run(ssh_argv(ssh_port, key, "raise ValueError('nope')"), capture_output=True, text=True,
                            timeout=30)
    assert failed.returncode == 1
    assert "ValueError: nope" in failed.stdout

    stranger = keygen(tmp_path, "stranger_key")
    refused = subprocess.run(ssh_argv(ssh_port, stranger, "print(1)"), capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr
    assert server.stop() == 0
    assert "disconnected without logging in" in server.stdout


def test_manhole_needs_someone_to_log_in(tmp_path: Path) -> None:
    made = run("mktap", "manhole", cwd=tmp_path)
    assert made.returncode == 2
    assert "nobody could log in" in made.stderr and "Traceback" not in made.stderr
