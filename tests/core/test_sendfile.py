"""``Transport.sendfile``: zero-copy file ranges on plain TCP/UNIX, over real sockets on asyncio and uvloop.

Each scenario runs a tapster protocol behind ``loop.create_server`` and a raw
client socket; the file is big enough (several socket buffers) that the
socket fills and the transport waits for writability (EAGAIN) at least once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from pathlib import Path

import pytest

from tapster.core._reactor.transport import Transport
from tapster.core.protocol import Protocol

SIZE = 24 << 20


def _loops() -> list[object]:
    loops = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it installs
        return loops
    return [*loops, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sendfile") / "big.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(SIZE >> 20):
            f.write(bytes([i]) + block[1:])
    return path


def _fds_on(inode: int) -> int:
    """How many of this process's descriptors refer to the socket ``inode``."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == f"socket:[{inode}]":
                count += 1
        except OSError:
            pass
    return count


class Sender(Protocol):
    """Writes a head, sendfiles ``count`` bytes from ``offset``, writes a tail; ``then`` says what next."""

    path: Path
    offset = 0
    count = SIZE
    head = b"HEAD"
    then = "tail"  # "tail": write b"TAIL" and close; "lose": loseConnection at once; "abort": abort at once
    results: list[object]

    def connectionMade(self) -> None:
        self.inode = os.fstat(self.transport.getHandle().fileno()).st_ino
        self.fd = os.open(self.path, os.O_RDONLY)
        self.progress = 0
        self.transport.write(self.head)
        self.future = self.transport.sendfile(self.fd, self.offset, self.count, self.progressed)
        assert self.future is not None
        self.future.add_done_callback(self.done)
        if self.then == "lose":
            self.transport.loseConnection()
        elif self.then == "abort":
            asyncio.get_event_loop().call_later(0.05, self.transport.abortConnection)

    def progressed(self, n: int) -> None:
        self.progress += n

    def done(self, future: asyncio.Future[int]) -> None:
        os.close(self.fd)
        # the duplicate descriptor it waited on is closed: at most the transport's own is left
        self.results.append(("fds", _fds_on(self.inode) <= 1, True))
        self.results.append(("sent", future.result(), self.progress))
        if self.then == "tail":
            self.transport.write(b"TAIL")
            self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.results.append(("lost", type(reason.value).__name__ if reason is not None else None))


def _serve(new_loop, path: Path, client, unix: Path | None = None, **attrs):
    """Run a server with a Sender built from ``attrs``; ``client(sock)`` runs in a thread; returns its result."""
    results: list[object] = []
    errors: list[object] = []
    proto = type("S", (Sender,), {"path": path, "results": results, **attrs})

    async def scenario():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        if unix is not None:
            server = await loop.create_unix_server(proto, str(unix))
            family, address = socket.AF_UNIX, str(unix)
        else:
            server = await loop.create_server(proto, "127.0.0.1", 0)
            family, address = socket.AF_INET, server.sockets[0].getsockname()[:2]

        def run_client():
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                sock.settimeout(10)
                sock.connect(address)
                return client(sock)

        got = await asyncio.wait_for(loop.run_in_executor(None, run_client), 20)
        for _ in range(200):  # the server side's connectionLost, polled with a deadline
            if any(r[0] == "lost" for r in results):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()
        return got

    loop = new_loop()
    try:
        got = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert not errors, errors
    return got, results


def _read_all(sock: socket.socket) -> bytes:
    parts = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(parts)
        parts.append(data)


def _slow_then_all(sock: socket.socket) -> bytes:
    import time

    first = sock.recv(4096)
    time.sleep(0.2)  # the socket fills: the server meets EAGAIN and waits for writability
    return first + _read_all(sock)


@pytest.mark.parametrize("new_loop", _loops())
def test_sendfile_sends_the_range_after_what_was_written_and_before_what_follows(new_loop, big: Path) -> None:
    offset, count = 12345, SIZE - 12345 - 999
    got, results = _serve(new_loop, big, _slow_then_all, offset=offset, count=count)
    data = big.read_bytes()[offset:offset + count]
    assert got[:4] == b"HEAD" and got[-4:] == b"TAIL"
    assert hashlib.sha256(got[4:-4]).digest() == hashlib.sha256(data).digest()
    assert results[:2] == [("fds", results[0][1], results[0][1]), ("sent", count, count)]


@pytest.mark.parametrize("new_loop", _loops())
def test_sendfile_waits_until_a_full_write_buffer_has_drained(new_loop, big: Path) -> None:
    head = b"0123456789abcdef" * (1 << 19)  # 8 MiB: more than the socket takes at once
    got, results = _serve(new_loop, big, _slow_then_all, head=head, count=4 << 20)
    assert got == head + big.read_bytes()[: 4 << 20] + b"TAIL"
    assert results[1] == ("sent", 4 << 20, 4 << 20)


@pytest.mark.parametrize("new_loop", _loops())
def test_sendfile_over_a_unix_socket(new_loop, big: Path, tmp_path: Path) -> None:
    got, results = _serve(new_loop, big, _slow_then_all, unix=tmp_path / "s.sock", count=5 << 20)
    assert got == b"HEAD" + big.read_bytes()[: 5 << 20] + b"TAIL"
    assert results[1] == ("sent", 5 << 20, 5 << 20)


@pytest.mark.parametrize("new_loop", _loops())
def test_lose_connection_during_sendfile_closes_after_the_last_byte(new_loop, big: Path) -> None:
    got, results = _serve(new_loop, big, _slow_then_all, then="lose")
    assert len(got) == 4 + SIZE and got[:4] == b"HEAD"
    assert hashlib.sha256(got[4:]).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert results[1:] == [("sent", SIZE, SIZE), ("lost", "ConnectionDone")]


@pytest.mark.parametrize("new_loop", _loops())
def test_abort_during_sendfile_stops_it_without_errors(new_loop, big: Path) -> None:
    def never_read(sock: socket.socket) -> int:
        sock.settimeout(5)
        try:  # the server aborts: wait for that, reading nothing until then
            sock.recv(1, socket.MSG_PEEK)
            import time

            time.sleep(0.3)
            return len(_read_all(sock))
        except (ConnectionResetError, TimeoutError):
            return -1

    got, results = _serve(new_loop, big, never_read, then="abort")
    by_kind = {r[0]: r[1:] for r in results}
    sent, progress = by_kind["sent"]
    assert 0 < sent < SIZE and sent == progress
    assert by_kind["lost"] == ("ConnectionLost",)
    assert by_kind["fds"][0] == by_kind["fds"][1]
    assert got < 4 + SIZE


@pytest.mark.parametrize("new_loop", _loops())
def test_peer_going_away_mid_sendfile_ends_it_short_and_the_connection_is_lost(new_loop, big: Path) -> None:
    def read_a_little_and_reset(sock: socket.socket) -> int:
        import struct

        data = sock.recv(65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        return len(data)

    got, results = _serve(new_loop, big, read_a_little_and_reset, then="none")
    assert got > 0
    by_kind = {r[0]: r[1:] for r in results}
    assert by_kind["sent"][0] < SIZE
    assert "lost" in by_kind  # connectionLost, in whichever order the future's callback runs
    assert by_kind["fds"][0] == by_kind["fds"][1]


class _Recorder:
    closing = False

    def get_extra_info(self, name: str, default=None):
        return default

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        pass


def test_sendfile_is_not_offered_over_tls_nor_without_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    with open(path, "rb") as f:
        assert Transport(_Recorder(), Protocol(), kind="SSL").sendfile(f, 0, 10) is None  # type: ignore[arg-type]
        assert Transport(_Recorder(), Protocol(), kind="TCP").sendfile(f, 0, 10) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("new_loop", _loops())
def test_a_second_sendfile_while_one_runs_is_refused(new_loop, big: Path) -> None:
    seen: list[object] = []

    class Twice(Sender):
        def connectionMade(self) -> None:
            super().connectionMade()
            try:
                self.transport.sendfile(self.fd, 0, 10)
            except RuntimeError as e:
                seen.append(str(e))

    def read(sock: socket.socket) -> int:
        return len(_read_all(sock))

    results: list[object] = []
    Twice.path, Twice.results = big, results
    loop = new_loop()

    async def scenario() -> int:
        server = await asyncio.get_running_loop().create_server(Twice, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()[:2]

        def client() -> int:
            with socket.create_connection(address, timeout=10) as sock:
                return read(sock)

        n = await asyncio.get_running_loop().run_in_executor(None, client)
        server.close()
        await server.wait_closed()
        return n

    try:
        n = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert seen and "already in progress" in str(seen[0])
    assert n == 4 + SIZE + 4
