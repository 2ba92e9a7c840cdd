"""A .tac's log observer, ``--logger`` factories and plugin Loggers under the real twistd (issue 10, item 3).

The .tac files are written as a porter writes them from Twisted's: buildbot's
(``FileLogObserver(LogFile.fromFullPath(...)).emit``) and the seed's
(``textFileLogObserver(DailyLogFile(...))``), with only the imports changed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

from tests.e2e._e2e import command, free_port, nc, run, wait_for, wait_for_port
from tests.e2e._twistd_helpers import alive, daemons, tac  # noqa: F401  (daemons is a fixture)

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"

#: buildbot's worker .tac, ported: a size-rotated LogFile given to the legacy FileLogObserver's emit.
BUILDBOT_TAC = """\
import os

from tapster.core.internet import TCPServer
from tapster.core.log import FileLogObserver, ILogObserver
from tapster.core.logfile import LogFile
from tapster.core.protocol import Factory
from tapster.core.service import Application

from hello import Hello  # beside the .tac: what is saved at shutdown must be importable

basedir = {basedir!r}
rotateLength = 10000000
maxRotatedFiles = 10

application = Application("buildbot-worker")
logfile = LogFile.fromFullPath(os.path.join(basedir, "worker.log"), rotateLength=rotateLength,
                               maxRotatedFiles=maxRotatedFiles)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)


factory = Factory()
factory.protocol = Hello
TCPServer({port}, factory, interface="127.0.0.1").setServiceParent(application)
"""

#: Seed 000: textFileLogObserver over a DailyLogFile.
DAILY_TAC = """\
from tapster.core.internet import TCPServer
from tapster.core.log import ILogObserver, textFileLogObserver
from tapster.core.logfile import DailyLogFile
from tapster.core.service import Application
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("daily")
application.setComponent(ILogObserver, textFileLogObserver(DailyLogFile("my.log", {directory!r})))
TCPServer({port}, QOTDFactory(StaticQuoter("daily quote")), interface="127.0.0.1").setServiceParent(application)
"""

HELLO_MODULE = """\
from tapster.core.log import Logger
from tapster.core.protocol import Protocol


class Hello(Protocol):
    log = Logger(namespace="worker.hello")

    def connectionMade(self):
        self.log.info("greeting {peer}", peer="a client")
        self.transport.write(b"hello\\r\\n")
        self.transport.loseConnection()
"""

LOGGER_MODULE = """\
from tapster.core.log import jsonFileLogObserver, textFileLogObserver


def logger():
    return textFileLogObserver(open({text!r}, "a"))


def json_logger():
    return jsonFileLogObserver(open({json!r}, "a"))
"""


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")


def test_buildbot_style_tac_logs_through_its_file_observer(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    (tmp_path / "hello.py").write_text(HELLO_MODULE)
    tac(tmp_path, "buildbot.tac", BUILDBOT_TAC.format(basedir=str(tmp_path), port=port))
    launched = run("twistd", "-y", "buildbot.tac", "--pidfile", "w.pid", cwd=tmp_path)  # a daemon, no --logfile
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "w.pid").read_text())
    daemons.append(pid)
    assert nc(port) == b"hello\r\n"
    log = tmp_path / "worker.log"
    wait_for(lambda: "greeting a client" in log.read_text(), "the protocol's line in worker.log")
    _stop(pid)
    text = log.read_text()
    assert not (tmp_path / "twistd.log").exists()  # the component replaced twistd's default file
    lines = text.splitlines()
    assert all(re.match(STAMP + r" \[", line) or line.startswith("\t") for line in lines), text
    assert re.search(STAMP + r" \[worker\.hello#info\] greeting a client", text), text
    assert "[twistd]" in text and "received SIGTERM" in text  # twistd's own lines go there too
    # The shutdown save keeps the services, never the observer with its open file.
    shutdown = tmp_path / "buildbot-worker-shutdown.tap"
    assert shutdown.exists(), os.listdir(tmp_path)
    # The saved application binds its own port again: run it and ask.
    relaunch = run("twistd", "-o", "-f", shutdown.name, "--pidfile", "w2.pid", "-l", "second.log", cwd=tmp_path)
    assert relaunch.returncode == 0, relaunch.stderr
    pid2 = int((tmp_path / "w2.pid").read_text())
    daemons.append(pid2)
    assert nc(port) == b"hello\r\n"
    _stop(pid2)
    # In twistd's own log, a Logger's line names its namespace.
    assert re.search(STAMP + r" \[worker\.hello\] INFO: greeting a client", (tmp_path / "second.log").read_text())
    assert log.read_text() == text  # nothing more in the first run's file


def test_daily_log_file_tac_and_the_command_line_logfile_wins(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    tac(tmp_path, "my.tac", DAILY_TAC.format(directory=str(tmp_path), port=port))
    launched = run("twistd", "-o", "-y", "my.tac", "--pidfile", "d.pid", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "d.pid").read_text())
    daemons.append(pid)
    assert nc(port) == b"daily quote\r\n"
    _stop(pid)
    mine = (tmp_path / "my.log").read_text()
    assert re.search(STAMP + r" \[twistd\] .*daily", mine) and "received SIGTERM" in mine, mine
    # Given on the command line, --logfile wins over the .tac's observer.
    (tmp_path / "my.log").unlink()
    launched = run("twistd", "-o", "-y", "my.tac", "--pidfile", "d.pid", "-l", "cli.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "d.pid").read_text())
    daemons.append(pid)
    assert nc(port) == b"daily quote\r\n"
    _stop(pid)
    assert "received SIGTERM" in (tmp_path / "cli.log").read_text()
    assert (tmp_path / "my.log").read_text() == ""  # the .tac opened it; nothing was logged there


def test_logger_option_names_a_factory_of_text_and_json_observers(tmp_path: Path, daemons: list[int]) -> None:
    text_log, json_log = tmp_path / "custom.log", tmp_path / "custom.json"
    (tmp_path / "mylogs.py").write_text(LOGGER_MODULE.format(text=str(text_log), json=str(json_log)))
    env_path = {"PYTHONPATH": str(tmp_path)}
    for factory, path in (("mylogs.logger", text_log), ("mylogs.json_logger", json_log)):
        port = free_port()
        proc = subprocess.Popen(
            [command("twistd"), "-n", "--logger", factory, "qotd", "-p", f"tcp:{port}:interface=127.0.0.1"],
            cwd=tmp_path, env={**os.environ, **env_path}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_port(port, proc)
            assert nc(port).startswith(b"An apple a day")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert out == ""  # nothing on stdout: the observer has it all
        content = path.read_text()
        if path is text_log:
            assert re.search(STAMP + r" \[qotd\] ", content) and "received SIGTERM" in content, content
        else:
            records = [json.loads(chunk) for chunk in content.split("\x1e") if chunk.strip()]
            assert records and all(r["log_time"] and r["log_level"] in ("info", "warn", "debug") for r in records)
            texts = [r["log_text"] for r in records]
            assert any("received SIGTERM" in t for t in texts) and any(r.get("log_system") == "qotd" for r in records)


def test_sigusr1_reopens_the_tacs_own_log_file_too(tmp_path: Path, daemons: list[int]) -> None:
    """logrotate moves my.log and sends SIGUSR1: the .tac's DailyLogFile starts a new my.log."""
    port = free_port()
    tac(tmp_path, "my.tac", DAILY_TAC.format(directory=str(tmp_path), port=port))
    launched = run("twistd", "-o", "-y", "my.tac", "--pidfile", "d.pid", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "d.pid").read_text())
    daemons.append(pid)
    log, moved = tmp_path / "my.log", tmp_path / "my.log.1"
    wait_for(lambda: "daily started" in log.read_text(), "the start line")
    log.rename(moved)
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: log.exists() and "reopened the log file" in log.read_text(), "a new my.log")
    assert nc(port) == b"daily quote\r\n"
    _stop(pid)
    assert "received SIGTERM" in log.read_text() and "received SIGTERM" not in moved.read_text()
