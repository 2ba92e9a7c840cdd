"""twistd as a process an administrator manages: --status/--stop, run directory, umask, title, users, chroot."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, assert_one_clean_line, command, free_port, nc, run, wait_for, wait_for_port
from tests.e2e._twistd_helpers import (  # noqa: F401  (daemons is a fixture)
    SLOW_TAC,
    alive,
    daemons,
    free_privileged_port,
    nogroup,
    proc_ids,
    root_only,
    tac,
)


def _build(directory: Path, port: int, *extra: str) -> None:
    made = run("mktap", *extra, "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=directory)
    assert made.returncode == 0, made.stderr


def test_status_and_stop_find_the_daemon_through_its_pidfile(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    _build(tmp_path, port)
    assert run("twistd", "--status", "--pidfile", "q.pid", cwd=tmp_path).returncode == 3
    launched = run("twistd", "-f", "qotd.tap", "--pidfile", "q.pid", "-l", "q.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "q.pid").read_text())
    daemons.append(pid)

    status = run("twistd", "--status", "--pidfile", "q.pid", cwd=tmp_path)
    assert status.returncode == 0
    assert status.stdout == f"twistd: running as pid {pid} ({tmp_path / 'q.pid'})\n"

    stopped = run("twistd", "--stop", "--pidfile", "q.pid", cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped pid {pid}" in stopped.stdout
    assert not alive(pid) and not (tmp_path / "q.pid").exists()  # --stop waited for the exit
    assert (tmp_path / "qotd-shutdown.tap").is_file()

    after = run("twistd", "--status", "--pidfile", "q.pid", cwd=tmp_path)
    assert after.returncode == 3 and "not running" in after.stdout
    again = run("twistd", "--stop", "--pidfile", "q.pid", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to stop" in again.stdout


def test_rundir_holds_every_relative_path_and_umask_applies(tmp_path: Path, daemons: list[int]) -> None:
    rundir = tmp_path / "srv"
    rundir.mkdir()
    port = free_port()
    _build(rundir, port)
    launched = run("twistd", "-d", "srv", "--umask", "027", "-f", "qotd.tap", "-l", "app.log", "--pidfile", "app.pid",
                   cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((rundir / "app.pid").read_text())
    daemons.append(pid)
    assert os.readlink(f"/proc/{pid}/cwd") == str(rundir)
    assert (rundir / "app.log").stat().st_mode & 0o777 == 0o640
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    assert run("twistd", "--stop", "-d", "srv", "--pidfile", "app.pid", cwd=tmp_path).returncode == 0
    assert (rundir / "qotd-shutdown.tap").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["srv"]  # nothing landed in the launch directory


def test_without_umask_the_started_with_umask_is_kept(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    _build(tmp_path, port)
    launched = subprocess.run([command("twistd"), "-o", "-f", "qotd.tap", "-l", "app.log", "--pidfile", "app.pid"],
                              cwd=tmp_path, capture_output=True, text=True, umask=0o077, timeout=60)
    assert launched.returncode == 0, launched.stderr
    daemons.append(int((tmp_path / "app.pid").read_text()))
    assert (tmp_path / "app.log").stat().st_mode & 0o777 == 0o600


def test_missing_rundir_fails_with_one_line(tmp_path: Path) -> None:
    r = run("twistd", "-d", "nope", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "nope" in r.stderr and "--rundir" in r.stderr


def test_ps_shows_the_application_name_unless_originalname(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    made = run("mktap", "-n", "myquotes", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert run("twistd", "-o", "-f", "myquotes.tap", "--pidfile", "a.pid", cwd=tmp_path).returncode == 0
    pid = int((tmp_path / "a.pid").read_text())
    daemons.append(pid)
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "myquotes"
    assert run("twistd", "--stop", "--pidfile", "a.pid", cwd=tmp_path).returncode == 0

    assert run("twistd", "-o", "--originalname", "-f", "myquotes.tap", "--pidfile", "a.pid",
               cwd=tmp_path).returncode == 0
    pid = int((tmp_path / "a.pid").read_text())
    daemons.append(pid)
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "twistd"
    assert run("twistd", "--stop", "--pidfile", "a.pid", cwd=tmp_path).returncode == 0


def test_slow_stop_is_forced_within_the_shutdown_timeout(tmp_path: Path, twistd) -> None:
    port = free_port()
    tac(tmp_path, "slow.tac", SLOW_TAC.format(port=port))
    server = twistd("-n", "-y", "slow.tac", "--shutdown-timeout", "0.5")
    wait_for_port(port, server.proc)
    started = time.monotonic()
    status = server.stop()
    elapsed = time.monotonic() - started
    assert status == 4, server.stdout + server.stderr
    assert 0.4 < elapsed < 5
    assert "did not stop within 0.5s (--shutdown-timeout); forcing" in server.stdout
    assert "exit status 4" in server.stdout


@root_only
def test_uid_and_gid_options_override_the_applications(tmp_path: Path, twistd) -> None:
    port = free_privileged_port()
    _build(tmp_path, port, "-u", "daemon", "-g", "daemon")  # the application says daemon
    group = nogroup()
    server = twistd("-n", "-o", "-u", "nobody", "-g", group, "-f", "qotd.tap")  # the command line wins
    wait_for_port(port, server.proc)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    uids, gids = proc_ids(server.proc.pid)
    assert set(uids) == {pwd.getpwnam("nobody").pw_uid}
    assert set(gids) == {grp.getgrnam(group).gr_gid}
    assert server.stop() == 0


@root_only
def test_euid_switches_only_the_effective_ids(tmp_path: Path, twistd) -> None:
    port = free_privileged_port()
    group = nogroup()
    server = twistd("-n", "--euid", "-u", "nobody", "-g", group, "qotd", "-p", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port, server.proc)
    uids, gids = proc_ids(server.proc.pid)
    nobody, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam(group).gr_gid
    assert (uids[0], uids[1]) == (0, nobody)  # real stays root, effective is nobody
    assert (gids[0], gids[1]) == (0, gid)
    assert server.stop() == 0
    assert "(effective only; real uid 0)" in server.stdout


@root_only
def test_unknown_user_on_the_command_line_fails_before_the_daemon_starts(tmp_path: Path) -> None:
    port = free_port()
    _build(tmp_path, port)
    r = run("twistd", "-u", "no-such-user-xyz", "-f", "qotd.tap", "--pidfile", "x.pid", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "no-such-user-xyz" in r.stderr and not (tmp_path / "x.pid").exists()


@root_only
@pytest.mark.parametrize("build, name", [((), "qotd.tap"), (("-t", "xml", "--passphrase-file", "../pw"), "qotd.etax")])
def test_chroot_runs_the_daemon_inside_the_jail(tmp_path: Path, daemons: list[int], build: tuple, name: str) -> None:
    jail = tmp_path / "jail"
    (jail / "srv").mkdir(parents=True)
    (jail / "pw").write_text("jail passphrase\n")
    port = free_port()
    _build(jail / "srv", port, *build)
    secret = ("--passphrase-file", str(jail / "pw")) if "--passphrase-file" in build else ()
    launched = run("twistd", "--chroot", str(jail), "-d", "/srv", *secret, "-f", name, cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((jail / "srv" / "twistd.pid").read_text())
    daemons.append(pid)
    assert os.readlink(f"/proc/{pid}/root") == str(jail)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    status = run("twistd", "--status", "--chroot", str(jail), "-d", "/srv", cwd=tmp_path)
    assert status.returncode == 0 and str(pid) in status.stdout
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit", DEADLINE)
    shutdown = name.replace("qotd.", "qotd-shutdown.")
    assert (jail / "srv" / shutdown).is_file()  # saved inside the jail, in its format and encryption
    assert f"saved {shutdown}" in (jail / "srv" / "twistd.log").read_text()
