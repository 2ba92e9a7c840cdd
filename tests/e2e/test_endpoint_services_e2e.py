"""Twisted-style .tac files with endpoints run by the real ``twistd -n -y``, talked to with nc, stopped with SIGTERM."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from tests.e2e._e2e import assert_one_clean_line, free_port, nc, run, wait_for_port
from tests.e2e._twistd_helpers import tac

STRPORTS_TAC = """\
from tapster.core import strports
from tapster.core.service import Application
from tapster.plugins.echo import EchoFactory

application = Application("strecho")
strports.service("tcp:{port}:interface=127.0.0.1", EchoFactory()).setServiceParent(application)
"""

ENDPOINT_TAC = """\
from tapster.core import reactor
from tapster.core.endpoints import clientFromString, serverFromString
from tapster.core.internet import ClientService, StreamServerEndpointService, backoffPolicy
from tapster.core.service import Application
from tapster.plugins.echo import EchoFactory
from tapster.plugins.qotd import QOTDFactory
from tapster.plugins.quoters import StaticQuoter

application = Application("epecho")
StreamServerEndpointService(serverFromString(reactor, "tcp:{port}:interface=127.0.0.1"),
                            EchoFactory()).setServiceParent(application)
# A reconnecting client to a server that is not there yet: the test starts it later.
client = ClientService(clientFromString(reactor, "tcp:127.0.0.1:{peer}"),
                       QOTDFactory(StaticQuoter("hi from the client")),
                       retryPolicy=backoffPolicy(initialDelay=0.05, maxDelay=0.2))
client.setServiceParent(application)
client.whenConnected().addCallback(lambda p: print("client connected", flush=True))
"""


def test_strports_service_tac_serves_and_stops_on_sigterm(tmp_path: Path, twistd) -> None:
    port = free_port()
    tac(tmp_path, "echo.tac", STRPORTS_TAC.format(port=port))
    server = twistd("-n", "-y", "echo.tac")
    wait_for_port(port, server.proc)
    assert nc(port, b"through strports\n") == b"through strports\n"
    assert server.stop(signal.SIGTERM) == 0, server.stderr
    assert "Traceback" not in server.stderr
    # The shutdown save holds the endpoint service, and runs again with -f.
    assert (tmp_path / "strecho-shutdown.tap").exists()
    again = twistd("-n", "-f", "strecho-shutdown.tap", "-o")
    wait_for_port(port, again.proc)
    assert nc(port, b"after reload\n") == b"after reload\n"
    assert again.stop() == 0, again.stderr


def test_endpoint_service_and_client_service_tac(tmp_path: Path, twistd) -> None:
    port, peer = free_port(), free_port()
    tac(tmp_path, "ep.tac", ENDPOINT_TAC.format(port=port, peer=peer))
    server = twistd("-n", "-o", "-y", "ep.tac")
    wait_for_port(port, server.proc)
    assert nc(port, b"through an endpoint\n") == b"through an endpoint\n"

    # The ClientService keeps retrying; once something listens on its port, it connects and
    # its QOTD protocol speaks. What it says is read here by a plain socket server.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", peer))
        listener.listen(1)
        listener.settimeout(15)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(15)
            heard = b""
            while not heard.endswith(b"\r\n"):
                chunk = conn.recv(100)
                if not chunk:
                    break
                heard += chunk
    assert heard == b"hi from the client\r\n"

    # A connection open at SIGTERM is drained, not reset: nc gets its echo and a clean EOF.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        held.sendall(b"held\n")
        assert held.recv(100) == b"held\n"
        assert server.stop(signal.SIGTERM) == 0, server.stderr
        assert held.recv(100) == b""
    assert "client connected" in server.stdout
    assert "Traceback" not in server.stderr


def test_bad_description_in_a_tac_is_one_clear_line(tmp_path: Path) -> None:
    tac(tmp_path, "bad.tac", STRPORTS_TAC.replace("tcp:{port}:interface=127.0.0.1", "tcp:http"))
    r = run("twistd", "-n", "-y", "bad.tac", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "bad.tac" in r.stderr and "tcp:http" in r.stderr and "not an integer" in r.stderr


def test_endpoint_service_on_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        tac(tmp_path, "busy.tac", STRPORTS_TAC.format(port=taken))
        r = run("twistd", "-n", "-o", "-y", "busy.tac", cwd=tmp_path)
    assert_one_clean_line(r)
    assert str(taken) in r.stderr

