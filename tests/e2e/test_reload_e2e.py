"""SIGHUP and ``twistd --reload`` on a running daemon: nothing refused, nothing lost (issue 12, item 3)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e._e2e import DEADLINE, command, free_port, nc, run, wait_for
from tests.e2e._twistd_helpers import alive, daemons, tac  # noqa: F401  (daemons is a fixture)

TAC = """\
from tapster.core.internet import TCPServer
from tapster.core.service import Application
from tapster.plugins.echo import EchoFactory
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("reloadable")
def serve(name, port, factory):
    s = TCPServer(port, factory, interface="127.0.0.1")
    s.setName(name)
    s.setServiceParent(application)
"""


def write(directory: Path, *lines: str) -> None:
    tac(directory, "app.tac", TAC + "\n".join(lines) + "\n")


class Hammer(threading.Thread):
    """Connects to a port in a loop, counting answers and refusals, until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.answers: set[bytes] = set()
        self.count = 0
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                self.answers.add(data)
                self.count += 1
            except ConnectionRefusedError:
                self.refused += 1


def start(tmp_path: Path, daemons: list[int]) -> int:
    launched = run("twistd", "-y", "app.tac", "--pidfile", "app.pid", "-l", "app.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "app.pid").read_text())
    daemons.append(pid)
    return pid


def stop(tmp_path: Path, pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")


def test_reload_keeps_unchanged_replaces_changed_and_refuses_nothing(tmp_path: Path, daemons: list[int]) -> None:
    a, b, c, e = free_port(), free_port(), free_port(), free_port()
    write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('A one')))",
          f"serve('b', {b}, QOTDFactory(StaticQuoter('B one')))", f"serve('e', {e}, EchoFactory())")
    pid = start(tmp_path, daemons)
    held = socket.create_connection(("127.0.0.1", e), timeout=5)  # an echo connection open across the reload
    held.sendall(b"before\n")
    assert held.recv(100) == b"before\n"
    hammers = [Hammer(a), Hammer(b)]
    for h in hammers:
        h.start()
    wait_for(lambda: all(h.count >= 5 for h in hammers), "clients to be served")
    # b's quote changes (same port: its socket is handed over), c is new, e stays, a stays.
    write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('A one')))",
          f"serve('b', {b}, QOTDFactory(StaticQuoter('B two')))", f"serve('e', {e}, EchoFactory())",
          f"serve('c', {c}, QOTDFactory(StaticQuoter('C new')))")
    reloaded = run("twistd", "--reload", "--pidfile", "app.pid", cwd=tmp_path)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "2 kept, 1 replaced, 0 stopped, 1 started, 1 listening socket handed over" in reloaded.stdout
    counts = [h.count for h in hammers]
    wait_for(lambda: all(h.count >= n + 5 for h, n in zip(hammers, counts, strict=True)), "clients after reload")
    for h in hammers:
        h.done.set()
        h.join(10)
    assert hammers[0].refused == 0 and hammers[1].refused == 0  # not one connection refused
    assert hammers[0].answers == {b"A one\r\n"}
    assert hammers[1].answers <= {b"B one\r\n", b"B two\r\n"} and b"B two\r\n" in hammers[1].answers
    assert nc(b) == b"B two\r\n" and nc(c) == b"C new\r\n"
    held.sendall(b"after\n")
    assert held.recv(100) == b"after\n"  # the open connection never noticed
    held.close()
    assert alive(pid)
    stop(tmp_path, pid)
    log = (tmp_path / "app.log").read_text()
    assert "received SIGHUP, reloading app.tac" in log and "reloaded app.tac: 2 kept" in log


def test_a_broken_file_or_a_taken_port_keeps_the_old_application(tmp_path: Path, daemons: list[int]) -> None:
    a, d, new = free_port(), free_port(), free_port()
    write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('old')))")
    pid = start(tmp_path, daemons)
    tac(tmp_path, "app.tac", TAC + "serve('a', (\n")  # a syntax error
    broken = run("twistd", "--reload", "--pidfile", "app.pid", cwd=tmp_path)
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.count("\n") == 1 and "reloading app.tac failed: " in broken.stderr
    assert "still serving the running application" in broken.stderr and "Traceback" not in broken.stderr
    assert nc(a) == b"old\r\n"
    # A port someone else holds: the new service cannot bind, and the other new one is not left bound.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", d))
        taken.listen()
        write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('changed')))",
              f"serve('n', {new}, QOTDFactory(StaticQuoter('n')))", f"serve('d', {d}, EchoFactory())")
        failed = run("twistd", "--reload", "--pidfile", "app.pid", cwd=tmp_path)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert "reloading app.tac failed" in failed.stderr and str(d) in failed.stderr, failed.stderr
        assert nc(a) == b"old\r\n"  # the old factory got its socket back
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", new)) != 0  # rolled back: not listening
    # Once the file is fixed, the next reload goes through.
    write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('fixed')))")
    fixed = run("twistd", "--reload", "--pidfile", "app.pid", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert nc(a) == b"fixed\r\n"
    # Plain SIGHUP, as systemctl reload sends it, does the same.
    write(tmp_path, f"serve('a', {a}, QOTDFactory(StaticQuoter('by hup')))")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: nc(a) == b"by hup\r\n", "the reload by SIGHUP")
    stop(tmp_path, pid)
    shutdown = tmp_path / "reloadable-shutdown.tap"
    assert shutdown.exists()  # the running tree, as reloaded, is what is saved
    again = run("twistd", "-o", "-f", shutdown.name, "--pidfile", "again.pid", "-l", "again.log", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    pid = int((tmp_path / "again.pid").read_text())
    daemons.append(pid)
    assert nc(a) == b"by hup\r\n"
    stop(tmp_path, pid)


def test_reload_without_a_daemon_is_one_clear_line(tmp_path: Path) -> None:
    result = run("twistd", "--reload", "--pidfile", "none.pid", cwd=tmp_path)
    assert result.returncode == 1 and "nothing to reload" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("format_args, name", [
    (["--type", "yaml"], "qotd.yaml"),
    (["-e", "--passphrase-file", "pw", "--type", "xml"], "qotd.etax"),
    ([], "qotd.tap"),
])
def test_every_format_reloads_from_its_file(tmp_path: Path, daemons: list[int], format_args: list[str],
                                            name: str) -> None:
    """The file is rewritten by mktap, as an administrator would; an encrypted one's passphrase is remembered."""
    (tmp_path / "pw").write_text("correct horse battery\n")
    port = free_port()
    endpoint = f"tcp:{port}:interface=127.0.0.1"
    assert run("mktap", *format_args, "qotd", "-p", endpoint, "-s", "before", cwd=tmp_path).returncode == 0
    extra = ["--passphrase-file", "pw"] if "-e" in format_args else []
    launched = run("twistd", "-o", "-f", name, *extra, "--pidfile", "q.pid", "-l", "q.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "q.pid").read_text())
    daemons.append(pid)
    assert nc(port) == b"before\r\n"
    (tmp_path / "pw").unlink()  # the daemon must not need it again: the passphrase is kept in memory
    (tmp_path / "pw2").write_text("correct horse battery\n")
    again_args = [a if a != "pw" else "pw2" for a in format_args]
    assert run("mktap", *again_args, "qotd", "-p", endpoint, "-s", "after", cwd=tmp_path).returncode == 0
    reloaded = run("twistd", "--reload", "--pidfile", "q.pid", cwd=tmp_path)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "1 replaced" in reloaded.stdout and "1 listening socket handed over" in reloaded.stdout
    assert nc(port) == b"after\r\n"
    stop(tmp_path, pid)


STRPORTS_TAC = """\
from tapster.core import strports
from tapster.core.service import Application
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("endpoints")
s = strports.service("tcp:{port}:interface=127.0.0.1", QOTDFactory(StaticQuoter({quote!r})))
s.setName("q")
s.setServiceParent(application)
"""


def test_an_endpoint_service_hands_its_socket_over(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    tac(tmp_path, "app.tac", STRPORTS_TAC.format(port=port, quote="one"))
    pid = start(tmp_path, daemons)
    assert nc(port) == b"one\r\n"
    hammer = Hammer(port)
    hammer.start()
    wait_for(lambda: hammer.count >= 5, "clients to be served")
    tac(tmp_path, "app.tac", STRPORTS_TAC.format(port=port, quote="two"))
    reloaded = run("twistd", "--reload", "--pidfile", "app.pid", cwd=tmp_path)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "1 replaced" in reloaded.stdout and "1 listening socket handed over" in reloaded.stdout
    done = hammer.count
    wait_for(lambda: hammer.count >= done + 5, "clients after the reload")
    hammer.done.set()
    hammer.join(10)
    assert hammer.refused == 0 and nc(port) == b"two\r\n"
    stop(tmp_path, pid)


def test_a_socket_activated_server_reloads_on_the_socket_systemd_passed(tmp_path: Path) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", "systemd:name=qotd", "-s", "before", cwd=tmp_path).returncode == 0
    exe = shutil.which("systemd-socket-activate") or "systemd-socket-activate"
    proc = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", "--fdname=qotd", command("twistd"), "-n", "-o", "-f",
                             "qotd.tap"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: nc(port) == b"before\r\n", "the activated twistd")
        assert run("mktap", "qotd", "-p", "systemd:name=qotd", "-s", "after", cwd=tmp_path).returncode == 0
        proc.send_signal(signal.SIGHUP)  # what systemctl reload sends (ExecReload=kill -HUP $MAINPID)
        wait_for(lambda: nc(port) == b"after\r\n", "the reload on the passed socket")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "1 listening socket handed over" in out


def test_live_changes_through_the_console_and_a_reload(tmp_path: Path, daemons: list[int]) -> None:
    """The documented rule: the file wins where it changed; what was changed or added live stays otherwise."""
    from tests.e2e.test_telnet_console import PASSWORD, build, nc_session

    qotd_port, telnet_port, live_port = free_port(), free_port(), free_port()
    build(tmp_path, qotd_port, telnet_port)
    launched = run("twistd", "-f", "qotd.tap", "--pidfile", "q.pid", "-l", "q.log", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    pid = int((tmp_path / "q.pid").read_text())
    daemons.append(pid)
    out = nc_session(telnet_port, [
        "admin", PASSWORD,
        "application.getServiceNamed('qotd').factory.quoter.quote = 'Changed live'",
        "from tapster.plugins.qotd import QOTDFactory; from tapster.plugins.quoters import StaticQuoter",
        f"application.listenTCP({live_port}, QOTDFactory(StaticQuoter('Added live')), interface='127.0.0.1')",
        "exit()"])
    assert "Traceback" not in out, out
    assert nc(qotd_port) == b"Changed live\r\n" and nc(live_port) == b"Added live\r\n"
    # The file has not changed: everything live stays.
    first = run("twistd", "--reload", "--pidfile", "q.pid", cwd=tmp_path)
    assert first.returncode == 0 and "2 kept, 0 replaced" in first.stdout, first
    assert nc(qotd_port) == b"Changed live\r\n" and nc(live_port) == b"Added live\r\n"
    # The file changes the quote: the file wins for that service; the live addition stays.
    made = run("mktap", "qotd", "--port", f"tcp:{qotd_port}:interface=127.0.0.1", "--static", "From the file",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    second = run("twistd", "--reload", "--pidfile", "q.pid", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "1 replaced, 1 stopped" in second.stdout, second.stdout  # qotd replaced; telnet left the file
    assert nc(qotd_port) == b"From the file\r\n" and nc(live_port) == b"Added live\r\n"
    stop(tmp_path, pid)
    log = (tmp_path / "q.log").read_text()
    assert "1 service added live (not in the file) kept as they run" in log
