"""SIGTERM drains (issue 9, item 10): busy clients get every answer, then a clean EOF, never a reset.

Real ``mktap echo`` / ``twistd -n -o -f echo.tap``; the clients are plain sockets driven by one
selector in the test process, each in a request/response loop as fast as it can go.
"""

from __future__ import annotations

import errno
import selectors
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, run, wait_for, wait_for_port

LOCAL = "127.0.0.1"


class Client:
    """One connection writing a line, reading its echo, and again, until the server closes."""

    def __init__(self, n: int, port: int) -> None:
        self.n = n
        self.sock = socket.create_connection((LOCAL, port), timeout=5)
        self.sock.setblocking(False)
        self.sent: list[bytes] = []  # every request whose send completed
        self.received = bytearray()
        self.outcome: str | None = None  # "eof" or "reset" (or the errno name)
        self.waiting = 0  # bytes of echo still expected for the last request
        self.keep_going = True  # False: finish the request in flight, send no more

    def request(self) -> None:
        line = b"client %d request %d\n" % (self.n, len(self.sent))
        try:
            self.sock.sendall(line)  # short lines always fit in the send buffer
        except OSError as e:
            self.outcome = errno.errorcode.get(e.errno or 0, str(e))
            return
        self.sent.append(line)
        self.waiting = len(line)

    def readable(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.outcome = "reset"
            return
        except OSError as e:
            self.outcome = errno.errorcode.get(e.errno or 0, str(e))
            return
        if not chunk:
            self.outcome = "eof"
            return
        self.received += chunk
        self.waiting -= len(chunk)
        if self.waiting == 0 and self.keep_going:
            self.request()

    def answered(self) -> int:
        """How many requests were echoed in full, checking the echo is a prefix of what was sent."""
        expected = b"".join(self.sent)
        assert expected.startswith(bytes(self.received)), (self.n, bytes(self.received[-80:]))
        count = 0
        total = 0
        for line in self.sent:
            total += len(line)
            if total > len(self.received):
                break
            count += 1
        return count


def drive(clients: list[Client], until: float, stop_when_all_done: bool = True) -> None:
    sel = selectors.DefaultSelector()
    for c in clients:
        if c.outcome is None:
            sel.register(c.sock, selectors.EVENT_READ, c)
    while time.monotonic() < until:
        if stop_when_all_done and all(c.outcome is not None for c in clients):
            break
        for key, _ in sel.select(0.05):
            c = key.data
            c.readable()
            if c.outcome is not None:
                sel.unregister(c.sock)
    sel.close()


def hog_is_stuck(sock: socket.socket) -> bool:
    """The echo has filled ``sock``'s receive queue (so the server's sends are stuck too)."""
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0] > 65536


@pytest.fixture
def echo_tap(tmp_path: Path) -> int:
    port = free_port()
    made = run("mktap", "echo", "--port", f"tcp:{port}:interface={LOCAL}", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return port


@pytest.mark.parametrize("keep_going", [True, False], ids=["clients-keep-going", "clients-finish-their-request"])
def test_sigterm_lets_busy_request_response_clients_finish_and_closes_them_cleanly(echo_tap: int, twistd,
                                                                                   keep_going: bool) -> None:
    port = echo_tap
    server = twistd("-n", "-o", "--shutdown-timeout", "10", "-f", "echo.tap")
    wait_for_port(port, server.proc)
    clients = [Client(n, port) for n in range(150)]
    try:
        for c in clients:
            c.request()
        drive(clients, time.monotonic() + 0.5, stop_when_all_done=False)  # every client in full swing
        assert all(c.outcome is None and len(c.sent) > 1 for c in clients)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for c in clients:
            c.keep_going = keep_going
        drive(clients, started + 12)
        outcomes = [c.outcome for c in clients]
        resets = outcomes.count("reset")
        assert resets == 0, f"{resets} of {len(clients)} clients were reset"
        assert outcomes.count("eof") == len(clients), outcomes
        for c in clients:
            # Every request is answered in full, but for the one that may have crossed the server's
            # decision to close on the wire (sent after the last echo, before the EOF arrived).
            # A client that stops sending gets every answer.
            assert c.answered() >= len(c.sent) - (1 if keep_going else 0), (c.n, c.answered(), len(c.sent))
        crossed = sum(c.answered() < len(c.sent) for c in clients)
        print(f"drained {len(clients)} clients in {time.monotonic() - started:.3f}s; {crossed} sent a request"
              " that crossed the server's FIN")
        assert server.stop(timeout=12) == 0, server.stderr
        assert time.monotonic() - started < 10
    finally:
        for c in clients:
            c.sock.close()


def test_a_client_that_keeps_sending_and_never_reads_is_aborted_at_the_timeout(echo_tap: int, twistd) -> None:
    port = echo_tap
    server = twistd("-n", "-o", "--shutdown-timeout", "1", "-f", "echo.tap")
    wait_for_port(port, server.proc)
    polite = Client(0, port)
    polite.request()
    hog = socket.create_connection((LOCAL, port), timeout=5)

    def flood() -> None:  # sends for ever and never reads: both directions fill up and stay full
        try:
            while True:
                hog.sendall(b"x" * 65536)
        except OSError:
            return

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        wait_for(lambda: hog_is_stuck(hog), "the flood to fill the buffers")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        drive([polite], started + 5)
        assert polite.outcome == "eof" and polite.answered() >= len(polite.sent) - 1 >= 0
        status = server.stop(timeout=10)
        elapsed = time.monotonic() - started
        assert status == 4, server.stderr
        assert 0.9 < elapsed < 4, elapsed
        flooder.join(5)
    finally:
        hog.close()
        polite.sock.close()
