"""``twistd --workers N``: several processes on one socket, supervised (issue 12, item 4)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e._e2e import assert_one_clean_line, free_port, nc, run, wait_for
from tests.e2e._twistd_helpers import alive, daemons, tac  # noqa: F401  (daemons is a fixture)

PID_MODULE = """\
import os
from tapster.core.protocol import Factory, Protocol


class Pid(Protocol):
    def connectionMade(self):
        self.transport.write(b"%d\\n" % os.getpid())
        self.transport.loseConnection()


class PidFactory(Factory):
    protocol = Pid
"""

TAC = """\
from tapster.core.internet import TCPServer
from tapster.core.service import Application
from pidproto import PidFactory

application = Application("workers")
TCPServer({port}, PidFactory(), interface="127.0.0.1").setServiceParent(application)
"""


def pids_seen(port: int, want: int, tries: int = 400) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        answer = nc(port).strip()
        if answer:
            seen.add(int(answer))
        if len(seen) >= want:
            break
    return seen


def test_two_workers_share_the_port_one_killed_comes_back_sigterm_stops_all(
        tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    (tmp_path / "pidproto.py").write_text(PID_MODULE)
    tac(tmp_path, "app.tac", TAC.format(port=port))
    launched = run("twistd", "--workers", "2", "-y", "app.tac", "--pidfile", "w.pid", "-l", "w.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    parent = int((tmp_path / "w.pid").read_text())
    daemons.append(parent)
    workers = pids_seen(port, 2)
    assert len(workers) == 2 and parent not in workers, workers  # both accept; the supervisor serves nothing
    daemons.extend(workers)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(victim), "the killed worker to go")
    survivor = (workers - {victim}).pop()
    replacement: set[int] = set()

    def replaced() -> bool:
        replacement.update(pids_seen(port, 2, tries=20) - {survivor, victim})
        return bool(replacement)

    wait_for(replaced, "a new worker in place of the killed one")
    daemons.extend(replacement)
    os.kill(parent, signal.SIGTERM)
    wait_for(lambda: not alive(parent), "the supervisor to exit")
    assert not any(alive(pid) for pid in {survivor, *replacement})  # every worker stopped with it
    assert not (tmp_path / "w.pid").exists()
    assert (tmp_path / "workers-shutdown.tap").exists()  # the supervisor saved the application, once
    log = (tmp_path / "w.log").read_text()
    assert "2 workers started" in log and "restarting it in 1s" in log
    assert " w1] " in log and " w2] " in log  # each worker's lines carry its number


def test_workers_refuse_the_console_and_bad_counts(tmp_path: Path) -> None:
    port = free_port()
    assert run("mktap", "telnet", "-p", f"tcp:{port}:interface=127.0.0.1", "--password", "pw", cwd=tmp_path,
               ).returncode == 0
    result = run("twistd", "-n", "--workers", "2", "-f", "telnet.tap", cwd=tmp_path)
    assert_one_clean_line(result)
    assert "cannot run with --workers" in result.stderr
    bad = run("twistd", "-n", "--workers", "0", "qotd", cwd=tmp_path)
    assert_one_clean_line(bad)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    rotate = run("twistd", "--workers", "2", "-l", "x.log", "--logfile-max-size", "1M", "qotd", cwd=tmp_path)
    assert_one_clean_line(rotate)
    assert "logrotate" in rotate.stderr


QOTD_TAC = """\
from tapster.core.internet import TCPServer
from tapster.core.service import Application
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("wq")
s = TCPServer({port}, QOTDFactory(StaticQuoter({quote!r})), interface="127.0.0.1")
s.setName("q")
s.setServiceParent(application)
"""


def test_reload_reaches_every_worker_and_a_broken_file_none(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    tac(tmp_path, "q.tac", QOTD_TAC.format(port=port, quote="first"))
    launched = run("twistd", "--workers", "2", "-y", "q.tac", "--pidfile", "q.pid", "-l", "q.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    parent = int((tmp_path / "q.pid").read_text())
    daemons.append(parent)
    assert nc(port) == b"first\r\n"
    tac(tmp_path, "q.tac", "this is not python\n")
    broken = run("twistd", "--reload", "--pidfile", "q.pid", cwd=tmp_path)
    assert_one_clean_line(broken)
    assert "reloading q.tac failed" in broken.stderr and "workers keep serving" in broken.stderr
    assert {nc(port) for _ in range(20)} == {b"first\r\n"}
    tac(tmp_path, "q.tac", QOTD_TAC.format(port=port, quote="second"))
    assert run("twistd", "--reload", "--pidfile", "q.pid", cwd=tmp_path).returncode == 0
    # One worker after the other: soon every answer, whichever worker gives it, is the new one.
    wait_for(lambda: {nc(port) for _ in range(20)} == {b"second\r\n"}, "both workers to reload")
    os.kill(parent, signal.SIGTERM)
    wait_for(lambda: not alive(parent), "the supervisor to exit")
    log = (tmp_path / "q.log").read_text()
    assert log.count("reloaded q.tac: 0 kept, 1 replaced") == 2  # once per worker


ENDPOINT_TAC = """\
from tapster.core import strports
from tapster.core.service import Application
from pidproto import PidFactory

application = Application("epworkers")
strports.service("tcp:{port}:interface=127.0.0.1", PidFactory()).setServiceParent(application)
"""


def test_workers_share_an_endpoint_service_port(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    (tmp_path / "pidproto.py").write_text(PID_MODULE)
    tac(tmp_path, "ep.tac", ENDPOINT_TAC.format(port=port))
    launched = run("twistd", "--workers", "2", "-y", "ep.tac", "--pidfile", "w.pid", "-l", "w.log", "-o",
                   cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    parent = int((tmp_path / "w.pid").read_text())
    daemons.append(parent)
    workers = pids_seen(port, 2)
    daemons.extend(workers)
    assert len(workers) == 2 and parent not in workers, workers
    os.kill(parent, signal.SIGTERM)
    wait_for(lambda: not alive(parent), "the supervisor to exit")
    assert not any(alive(pid) for pid in workers)


FAILING_TAC = """\
from tapster.core.service import Application, Service


class Broken(Service):
    def startService(self):
        raise RuntimeError("the database is not there")


application = Application("broken")
Broken().setServiceParent(application)
"""


def test_a_worker_that_cannot_start_fails_the_start_in_one_line(tmp_path: Path) -> None:
    tac(tmp_path, "broken.tac", FAILING_TAC)
    result = run("twistd", "--workers", "2", "-y", "broken.tac", "--pidfile", "b.pid", "-l", "b.log", cwd=tmp_path)
    assert_one_clean_line(result)
    assert "could not start" in result.stderr and "the database is not there" in result.stderr
    assert not (tmp_path / "b.pid").exists()


def test_a_taken_port_fails_before_any_worker_forks(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("twistd", "-n", "--workers", "2", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert_one_clean_line(result)
    assert str(port) in result.stderr and "worker" not in result.stderr
