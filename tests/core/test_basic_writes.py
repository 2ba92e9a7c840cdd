"""What the framing protocols write while they handle one read leaves as one write on the real transport.

Driven through tapster's :class:`Transport` over a recording stand-in for the
asyncio transport (every ``write``/``writelines``/``close``/``abort`` call is
logged), then end to end over real sockets on asyncio and uvloop.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from tapster.core._reactor.transport import Transport
from tapster.core.basic import (
    Int16StringReceiver,
    Int32StringReceiver,
    LineOnlyReceiver,
    LineReceiver,
    NetstringReceiver,
)
from tapster.core.protocol import Protocol


class AioRecorder:
    """The calls an asyncio transport gets, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, data) -> None:
        self.calls.append(("writelines", b"".join(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return self.closing

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def sent(self) -> bytes:
        return b"".join(data for kind, data in self.calls if kind in ("write", "writelines"))


def connect(proto: Protocol) -> tuple[Protocol, Transport, AioRecorder]:
    aio = AioRecorder()
    transport = Transport(aio, proto)  # type: ignore[arg-type]
    proto.makeConnection(transport)
    return proto, transport, aio


class Echo(LineReceiver):
    """Echoes lines; a few lines script direct writes, closing, raising."""

    def lineReceived(self, line: bytes) -> None:
        if line == b"direct":
            self.transport.write(b"[direct]")
        elif line == b"sequence":
            self.transport.writeSequence([b"[seq1]", b"[seq2]"])
        elif line == b"quit":
            self.sendLine(b"bye")
            self.transport.loseConnection()
            return
        elif line == b"abort":
            self.transport.abortConnection()
            return
        elif line == b"boom":
            raise ValueError("boom")
        elif line == b"pause":
            self.pauseProducing()
        self.sendLine(line)


def test_a_pipelined_chunk_of_lines_is_answered_with_one_write():
    p, _, aio = connect(Echo())
    p.dataReceived(b"".join(b"line %d\r\n" % i for i in range(100)))
    assert aio.calls == [("write", b"".join(b"line %d\r\n" % i for i in range(100)))]


def test_one_line_answered_with_two_sendLines_is_one_write():
    class Two(LineReceiver):
        def lineReceived(self, line):
            self.sendLine(b"a")
            self.sendLine(b"b")

    p, _, aio = connect(Two())
    p.dataReceived(b"x\r\n")
    assert aio.calls == [("write", b"a\r\nb\r\n")]


def test_direct_writes_and_sendLine_keep_their_order_in_the_same_write():
    p, _, aio = connect(Echo())
    p.dataReceived(b"one\r\ndirect\r\ntwo\r\nsequence\r\nthree\r\n")
    assert aio.calls == [("write", b"one\r\n[direct]direct\r\ntwo\r\n[seq1][seq2]sequence\r\nthree\r\n")]


def test_loseConnection_in_the_middle_of_a_chunk_sends_everything_written_before_it_first():
    p, transport, aio = connect(Echo())
    p.dataReceived(b"one\r\ndirect\r\nquit\r\nnever\r\n")
    assert aio.calls == [("write", b"one\r\n[direct]direct\r\nbye\r\n"), ("close", b"")]
    assert transport.disconnecting


def test_abortConnection_in_the_middle_of_a_chunk_drops_what_was_held():
    p, transport, aio = connect(Echo())
    p.dataReceived(b"one\r\nabort\r\nnever\r\n")
    assert aio.calls == [("abort", b"")]
    assert transport.write == aio.write


def test_an_exception_in_lineReceived_still_sends_what_was_written_and_stops_holding():
    p, transport, aio = connect(Echo())
    with pytest.raises(ValueError, match=r"^boom$"):
        p.dataReceived(b"one\r\nboom\r\nlater\r\n")
    assert aio.calls == [("write", b"one\r\n")]
    assert transport.write == aio.write
    p.sendLine(b"after")
    assert aio.calls[-1] == ("write", b"after\r\n")


def test_writes_outside_dataReceived_go_out_at_once():
    p, transport, aio = connect(Echo())
    p.sendLine(b"from a timer")
    assert aio.calls == [("write", b"from a timer\r\n")]
    transport.write(b"raw")
    assert aio.calls[-1] == ("write", b"raw")


def test_writes_to_another_connection_from_inside_dataReceived_go_out_at_once():
    other, _, other_aio = connect(Echo())
    seen_while_handling = []

    class Relay(LineReceiver):
        def lineReceived(self, line):
            other.sendLine(line)
            seen_while_handling.append(other_aio.sent())
            self.sendLine(b"relayed")

    p, _, aio = connect(Relay())
    p.dataReceived(b"a\r\nb\r\n")
    assert seen_while_handling == [b"a\r\n", b"a\r\nb\r\n"]
    assert aio.calls == [("write", b"relayed\r\nrelayed\r\n")]


def test_resumeProducing_delivers_the_buffered_lines_with_one_write():
    p, _, aio = connect(Echo())
    p.dataReceived(b"pause\r\na\r\nb\r\n")
    assert aio.calls == [("write", b"pause\r\n")]
    p.resumeProducing()
    assert aio.calls[-1] == ("write", b"a\r\nb\r\n") and len(aio.calls) == 2


def test_held_write_checks_its_argument_where_it_is_called_and_copies_mutable_buffers():
    errors = []

    class Writer(LineReceiver):
        def lineReceived(self, line):
            buf = bytearray(b"before")
            self.transport.write(buf)
            buf[:] = b"AFTER!"
            try:
                self.transport.write("text")
            except TypeError as e:
                errors.append(e)
            self.transport.write(memoryview(b"view"))

    p, _, aio = connect(Writer())
    p.dataReceived(b"x\r\n")
    assert len(errors) == 1
    assert aio.calls == [("write", b"beforeview")]


def test_sendLine_while_held_copies_a_mutable_line_and_rejects_text():
    class Mutating(LineReceiver):
        def lineReceived(self, line):
            buf = bytearray(line)
            self.sendLine(buf)
            buf[:] = b"changed"
            with pytest.raises(TypeError):
                self.sendLine("text")

    p, _, aio = connect(Mutating())
    p.dataReceived(b"same\r\n")
    assert aio.calls == [("write", b"same\r\n")]


def test_nested_dataReceived_from_setLineMode_does_not_release_early():
    class Raw(LineReceiver):
        def lineReceived(self, line):
            self.sendLine(b"L:" + line)
            if line == b"raw":
                self.setRawMode()

        def rawDataReceived(self, data):
            self.sendLine(b"R:" + data[:3])
            self.setLineMode(data[3:])

    p, _, aio = connect(Raw())
    p.dataReceived(b"raw\r\nxyzafter\r\nend\r\n")
    assert aio.calls == [("write", b"L:raw\r\nR:xyz\r\nL:after\r\nL:end\r\n")]


def test_line_only_receiver_coalesces_too():
    class Only(LineOnlyReceiver):
        def lineReceived(self, line):
            self.sendLine(line)
            if line == b"quit":
                self.transport.loseConnection()

    p, _, aio = connect(Only())
    p.dataReceived(b"a\r\nb\r\nquit\r\nc\r\n")
    assert aio.calls == [("write", b"a\r\nb\r\nquit\r\n"), ("close", b"")]


@pytest.mark.parametrize("base, fmt", [(Int32StringReceiver, "!I"), (Int16StringReceiver, "!H")])
def test_int_prefixed_sendString_coalesces(base, fmt):
    class Echo32(base):
        def stringReceived(self, string):
            self.sendString(string.upper())

    p, _, aio = connect(Echo32())
    p.dataReceived(b"".join(struct.pack(fmt, len(s)) + s for s in (b"ab", b"c", b"")))
    assert aio.calls == [("write", b"".join(struct.pack(fmt, len(s)) + s for s in (b"AB", b"C", b"")))]


def test_netstring_sendString_coalesces():
    class EchoNet(NetstringReceiver):
        def stringReceived(self, string):
            self.sendString(string)

    p, _, aio = connect(EchoNet())
    p.dataReceived(b"1:a,2:bc,0:,")
    assert aio.calls == [("write", b"1:a,2:bc,0:,")]


def test_a_plain_protocols_write_is_the_asyncio_transports_own():
    """Nothing is added to the raw path: write is the asyncio transport's bound write, before and after."""
    class Plain(Protocol):
        def dataReceived(self, data):
            self.transport.write(data)
            self.transport.write(data)

    p, transport, aio = connect(Plain())
    assert transport.write == aio.write
    p.dataReceived(b"x")
    assert aio.calls == [("write", b"x"), ("write", b"x")]
    lines, line_transport, line_aio = connect(Echo())
    lines.dataReceived(b"a\r\n")
    assert line_transport.write == line_aio.write


# -- end to end, real sockets ---------------------------------------------------------------------


def _loops() -> list[object]:
    loops = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it installs
        return loops
    return [*loops, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("new_loop", _loops())
def test_over_real_sockets_mixed_writes_arrive_in_order_and_quit_sends_everything(new_loop):
    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(b"line %d\r\n" % i for i in range(500)) + b"direct\r\nsequence\r\nquit\r\nnever\r\n")
        data = await asyncio.wait_for(reader.read(-1), 10)  # to EOF: the server closed
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    loop = new_loop()
    try:
        data = loop.run_until_complete(scenario())
    finally:
        loop.close()
    expected = b"".join(b"line %d\r\n" % i for i in range(500)) + b"[direct]direct\r\n[seq1][seq2]sequence\r\nbye\r\n"
    assert data == expected
