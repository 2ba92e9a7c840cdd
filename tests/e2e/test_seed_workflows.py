"""The seeds' workflows, to the letter: what the 2002-era documents tell a user to type."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tapster.core import persist
from tests.e2e._e2e import free_port, nc, run, wait_for, wait_for_port

REVERSE_APP = '''\
from tapster.core import internet, protocol, service
from tapster.core.basic import LineReceiver


class Reverse(LineReceiver):
    delimiter = b"\\n"

    def lineReceived(self, line):
        self.sendLine(line[::-1])


factory = protocol.ServerFactory()
factory.protocol = Reverse
application = service.Application("Reverser")
internet.TCPServer({port}, factory, interface="127.0.0.1").setServiceParent(application)
'''


def test_seed_002_a_tac_leaves_its_shutdown_file_which_runs_again(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``twistd -y reverse_app.py``, ``kill `cat twistd.pid```: Reverser-shutdown.tap, runnable with -f."""
    port = free_port()
    (tmp_path / "reverse_app.py").write_text(REVERSE_APP.format(port=port))
    launched = run("twistd", "-y", "reverse_app.py", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    wait_for_port(port)
    assert nc(port, b"hello\n") == b"olleh\n"
    pid = int((tmp_path / "twistd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    shutdown = tmp_path / "Reverser-shutdown.tap"
    wait_for(lambda: shutdown.exists() and not (tmp_path / "twistd.pid").exists(), "the shutdown save")
    monkeypatch.syspath_prepend(str(tmp_path))  # the file's classes live in reverse_app.py, beside it
    saved = persist.load(str(shutdown))
    assert saved.name == "Reverser" and type(next(iter(saved)).args[1]).__module__ == "tapster.core.protocol"
    assert b"reverse_app" in shutdown.read_bytes()  # the protocol class, by the module the .tac ran as

    again = run("twistd", "-f", "Reverser-shutdown.tap", "--pidfile", "again.pid", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    wait_for_port(port)
    assert nc(port, b"abc\n") == b"cba\n"
    os.kill(int((tmp_path / "again.pid").read_text()), signal.SIGTERM)
    wait_for(lambda: not (tmp_path / "again.pid").exists(), "the second server to stop")


def test_seed_002_dash_o_turns_the_save_off(tmp_path: Path, twistd) -> None:
    port = free_port()
    (tmp_path / "reverse_app.py").write_text(REVERSE_APP.format(port=port))
    server = twistd("-n", "-o", "-y", "reverse_app.py")
    wait_for_port(port, server.proc)
    assert server.stop() == 0
    assert not (tmp_path / "Reverser-shutdown.tap").exists()


def test_a_tac_that_cannot_be_pickled_still_stops_cleanly(tmp_path: Path, twistd) -> None:
    """A .tac may hold what no pickle can (a lambda): the save is a warning, the exit status stays 0."""
    port = free_port()
    (tmp_path / "app.tac").write_text(
        REVERSE_APP.format(port=port) + "application.callback = lambda: None\n"
    )
    server = twistd("-n", "-y", "app.tac")
    wait_for_port(port, server.proc)
    assert server.stop() == 0
    assert "could not save the shutdown file" in server.stdout + server.stderr
    assert not (tmp_path / "Reverser-shutdown.tap").exists()
