"""Where twistd gets the application: a plugin run directly, a .tac file, and their mistakes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import Result, assert_one_clean_line, command, free_port, nc, run, wait_for, wait_for_port
from tests.e2e._twistd_helpers import QOTD_TAC, alive, daemons, tac  # noqa: F401  (daemons is a fixture)


def test_plugin_runs_directly_without_a_file(tmp_path: Path, twistd) -> None:
    port = free_port()
    server = twistd("-n", "qotd", "--port", f"tcp:{port}:interface=127.0.0.1", "--static", "no file needed")
    wait_for_port(port, server.proc)
    assert nc(port) == b"no file needed\r\n"
    assert server.stop() == 0
    assert list(tmp_path.iterdir()) == []  # nothing built, nothing saved on shutdown
    assert "from plugin qotd" in server.stdout


def test_plugin_runs_as_a_daemon(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    launched = run("twistd", "--pidfile", "e.pid", "-l", "e.log", "echo", "--port",
                   f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "e.pid").read_text())
    daemons.append(pid)
    assert nc(port, b"ping\n") == b"ping\n"
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.log"]


def test_plugin_option_mistake_is_one_line_and_status_2(tmp_path: Path) -> None:
    r = run("twistd", "-n", "qotd", "--prot", "8007", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2 and "qotd" in r.stderr and "--port" in r.stderr


def test_plugin_help_is_the_plugins_with_twistds_name(tmp_path: Path) -> None:
    r = run("twistd", "qotd", "--help", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("Usage: twistd [options] qotd")


def test_tac_runs_in_the_foreground(tmp_path: Path, twistd) -> None:
    port = free_port()
    tac(tmp_path, "app.tac", QOTD_TAC.format(port=port))
    server = twistd("-n", "-y", "app.tac")
    wait_for_port(port, server.proc)
    assert nc(port) == b"from a tac\r\n"
    assert server.stop() == 0
    # a .tac is saved as <name>-shutdown.tap, as Twisted's twistd does (seed 002); -o turns it off
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.tac", "tacqotd-shutdown.tap"]
    assert "starting 'tacqotd' from app.tac" in server.stdout


def test_tac_without_application_fails_the_daemon_launch_with_one_line(tmp_path: Path) -> None:
    tac(tmp_path, "bad.tac", "from tapster.core.service import Application\napp = Application('x')\n")
    r = run("twistd", "-y", "bad.tac", "--pidfile", "b.pid", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1 and "bad.tac defines no `application`" in r.stderr
    assert not (tmp_path / "b.pid").exists()


def test_help_lists_the_plugins(tmp_path: Path) -> None:
    r = run("twistd", "--help", cwd=tmp_path)
    assert r.returncode == 0
    assert "\n  qotd " in r.stdout and "\n  echo " in r.stdout and "Exit status:" in r.stdout


def _endpoint(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


@pytest.mark.parametrize("kind, flag, ext", [("xml", "-x", "tax"), ("source", "-s", "tas")])
def test_xml_and_source_files_run_and_are_saved_back_in_their_format(
        tmp_path: Path, twistd, kind: str, flag: str, ext: str) -> None:
    port = free_port()
    made = run("mktap", "-t", kind, "qotd", "-p", _endpoint(port), "-s", f"from {kind}", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", flag, f"qotd.{ext}")
    wait_for_port(port, server.proc)
    assert nc(port) == f"from {kind}\r\n".encode()
    assert server.stop() == 0, server.stderr
    saved = tmp_path / f"qotd-shutdown.{ext}"
    assert saved.is_file()
    again = twistd("-n", "-o", "-f", saved.name)  # recognised by content
    wait_for_port(port, again.proc)
    assert nc(port) == f"from {kind}\r\n".encode()
    assert again.stop() == 0


def test_forcing_the_wrong_format_is_one_line(tmp_path: Path) -> None:
    assert run("mktap", "qotd", "-p", _endpoint(free_port()), cwd=tmp_path).returncode == 0
    r = run("twistd", "-n", "-x", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1 and "qotd.tap" in r.stderr


def test_encrypted_daemon_starts_with_a_passphrase_file_and_a_wrong_one_fails_the_launch(
        tmp_path: Path, daemons: list[int]) -> None:
    (tmp_path / "pw").write_text("correct horse\n")
    (tmp_path / "bad").write_text("wrong horse\n")
    port = free_port()
    made = run("mktap", "-e", "--passphrase-file", "pw", "qotd", "-p", _endpoint(port), cwd=tmp_path)
    assert made.returncode == 0, made.stderr

    refused = run("twistd", "--passphrase-file", "bad", "-f", "qotd.etap", "--pidfile", "q.pid", cwd=tmp_path)
    assert_one_clean_line(refused)
    assert refused.returncode == 1 and "wrong passphrase" in refused.stderr
    assert not (tmp_path / "q.pid").exists()

    asked = subprocess.run([command("twistd"), "-f", "qotd.etap", "--pidfile", "q.pid"], cwd=tmp_path,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    no_terminal = Result(asked.returncode, asked.stdout, asked.stderr)  # nobody to ask: say how to give it
    assert_one_clean_line(no_terminal)
    assert "--passphrase-file" in no_terminal.stderr

    launched = run("twistd", "--passphrase-file", "pw", "-f", "qotd.etap", "--pidfile", "q.pid", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "q.pid").read_text())
    daemons.append(pid)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    assert run("twistd", "--stop", "--pidfile", "q.pid", cwd=tmp_path).returncode == 0
    assert (tmp_path / "qotd-shutdown.etap").read_bytes().startswith(b"TAPSTER-ENCRYPTED")
