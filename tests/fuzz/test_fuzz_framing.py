"""The framing protocols give the same callbacks however the stream is split, and never raise.

A TCP peer decides nothing about where reads end: the kernel may hand a
stream over in one ``dataReceived`` or cut it anywhere. For every receiver
of :mod:`tapster.core.basic`, a random stream (valid frames, over-long
frames, garbage, and for :class:`LineReceiver` lines that switch to raw mode
and back, change the delimiter or pause) is fed once whole and once cut at
random points; the callbacks (lines, strings, raw bytes joined, over-long
reports, whether the connection was closed) must be the same.

Feeding stops once the protocol closed the connection, as a real transport
stops reading then. Delimiters include multi-byte and self-overlapping ones
(``b"END"``, ``b"\\r\\n\\r\\n"``, ``b"aa"``) with small ``MAX_LENGTH`` values,
where a delimiter split across reads near the limit once made
:class:`LineOnlyReceiver` close on a legal line.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tapster.core import basic
from tapster.core._reactor.transport import Transport
from tapster.core.basic import (
    Int8StringReceiver,
    Int16StringReceiver,
    Int32StringReceiver,
    IntNStringReceiver,
    LineOnlyReceiver,
    LineReceiver,
    NetstringReceiver,
)
from tapster.core.protocol import Protocol
from tapster.core.testing import StringTransport

DELIMITERS = [b"\r\n", b"\n", b"END", b"\r\n\r\n", b"aa", b"|"]
#: Bytes that make delimiters, their prefixes and their overlaps likely.
ALPHABET = b"\r\nENDa|x"

CUTS = st.lists(st.one_of(st.integers(1, 4), st.integers(1, 40)), max_size=25)  # short pieces split delimiters


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    """``stream`` cut after each length in ``cuts`` (what is left is the last piece)."""
    out = []
    i = 0
    for cut in cuts:
        if i >= len(stream):
            break
        out.append(stream[i:i + cut])
        i += cut
    out.append(stream[i:])
    return out


def merged(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Events with neighbouring raw data joined: where raw reads end is not part of the meaning."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if event[0] == "raw" and out and out[-1][0] == "raw":
            out[-1] = ("raw", out[-1][1] + event[1])
        elif event != ("raw", b""):
            out.append(event)
    return out


def feed(make: Callable[[], Any], chunks: list[bytes]) -> tuple[list[tuple[Any, ...]], bool]:
    """Connect a fresh protocol, deliver ``chunks`` (resuming it whenever it paused), return what it saw."""
    proto = make()
    transport = StringTransport(lenient=True)
    proto.makeConnection(transport)
    for chunk in chunks:
        if transport.disconnecting:
            break
        proto.dataReceived(chunk)
        while getattr(proto, "paused", False) and not transport.disconnecting:
            proto.resumeProducing()
    return merged(proto.events), transport.disconnecting


def same_however_split(make: Callable[[], Any], stream: bytes, cuts: list[int]) -> None:
    assert feed(make, pieces(stream, cuts)) == feed(make, [stream])


# -- lines -----------------------------------------------------------------------------------------


@st.composite
def line_cases(draw: st.DrawFn, commands: list[bytes]) -> tuple[bytes, int, bytes]:
    """A delimiter, a MAX_LENGTH and a stream for it: lines near the limit (and over it), the
    delimiter, parts of it, commands, garbage. Near the limit is where split delimiters matter."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    max_length = draw(st.integers(1, 12))
    fragment = st.binary(max_size=1).map(lambda b: b"".join(bytes([ALPHABET[c % len(ALPHABET)]]) for c in b))
    line = st.integers(0, max_length + 3).flatmap(
        lambda n: st.lists(st.one_of(st.just(b"x"), fragment), min_size=n, max_size=n).map(b"".join))
    token = st.one_of(
        line.map(lambda text: text + delimiter),
        line,
        st.just(delimiter),
        st.integers(1, max(1, len(delimiter) - 1)).map(lambda k: delimiter[:k]),
        st.sampled_from(DELIMITERS),
        st.sampled_from(commands),
        st.binary(max_size=6),
    )
    return delimiter, max_length, b"".join(draw(st.lists(token, max_size=30)))


class OnlyLines(LineOnlyReceiver):
    def __init__(self, delimiter: bytes, max_length: int) -> None:
        self.delimiter = delimiter
        self.MAX_LENGTH = max_length
        self.events: list[tuple[Any, ...]] = []
        self.consumed = 0  # where in the stream the next undelivered byte is

    def lineReceived(self, line: bytes) -> None:
        self.events.append(("line", line))
        self.consumed += len(line) + len(self.delimiter)
        if line == b"quit":
            self.transport.loseConnection()  # type: ignore[union-attr]

    def lineLengthExceeded(self, line: bytes) -> None:
        # Which part of the long line is reported depends on where the reads end; that it
        # is reported, and where it starts, does not.
        self.events.append(("exceeded", self.consumed))
        assert len(line) > self.MAX_LENGTH and self.delimiter not in line
        super().lineLengthExceeded(line)


@given(line_cases([b"quit\r\n", b"quit\n", b"quitEND"]), CUTS)
def test_line_only_receiver_is_split_invariant(case: tuple[bytes, int, bytes], cuts: list[int]) -> None:
    delimiter, max_length, stream = case
    same_however_split(lambda: OnlyLines(delimiter, max_length), stream, cuts)


@given(line_cases([b"quit\r\n", b"quit\n", b"quitEND"]))
def test_line_only_receiver_is_the_same_byte_by_byte(case: tuple[bytes, int, bytes]) -> None:
    delimiter, max_length, stream = case
    same_however_split(lambda: OnlyLines(delimiter, max_length), stream, [1] * len(stream))


class Lines(LineReceiver):
    """Scripted by its own lines: ``raw N`` reads N raw bytes then returns to line mode with
    the rest, ``delim K`` switches to ``DELIMITERS[K]``, ``pause`` pauses, ``quit`` closes."""

    def __init__(self, delimiter: bytes, max_length: int) -> None:
        self.delimiter = delimiter
        self.MAX_LENGTH = max_length
        self.events: list[tuple[Any, ...]] = []
        self.remaining = 0
        self.consumed = 0
        self.stream = b""

    def lineReceived(self, line: bytes) -> None:
        self.events.append(("line", line))
        self.consumed += len(line) + len(self.delimiter)
        if line.startswith(b"raw ") and line[4:].isdigit():
            self.remaining = int(line[4:])
            self.setRawMode()
        elif line.startswith(b"delim ") and line[6:].isdigit() and int(line[6:]) < len(DELIMITERS):
            self.delimiter = DELIMITERS[int(line[6:])]
        elif line == b"pause":
            self.pauseProducing()
        elif line == b"quit":
            self.transport.loseConnection()  # type: ignore[union-attr]

    def rawDataReceived(self, data: bytes) -> None:
        body, extra = data[:self.remaining], data[self.remaining:]
        self.remaining -= len(body)
        self.consumed += len(body)
        self.events.append(("raw", body))
        if self.remaining == 0:
            self.setLineMode(extra)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.events.append(("exceeded", self.consumed))
        # ``line`` starts with more than MAX_LENGTH bytes of the long line (what follows
        # them depends on the reads).
        assert len(line) > self.MAX_LENGTH
        assert self.delimiter not in line[:self.MAX_LENGTH + len(self.delimiter)]
        super().lineLengthExceeded(line)


LINE_COMMANDS = [b"raw 0\r\n", b"raw 3\r\n", b"raw 7\n", b"raw 2END", b"raw 4aa", b"delim 0\n", b"delim 1\r\n",
                 b"delim 2\r\n", b"delim 3\n", b"delim 4END", b"pause\r\n", b"pause\n", b"pauseEND", b"quit\r\n",
                 b"quit\n"]


@given(line_cases(LINE_COMMANDS), CUTS)
def test_line_receiver_with_mode_switches_is_split_invariant(case: tuple[bytes, int, bytes], cuts: list[int]) -> None:
    delimiter, max_length, stream = case
    same_however_split(lambda: Lines(delimiter, max_length), stream, cuts)


@given(line_cases(LINE_COMMANDS))
def test_line_receiver_is_the_same_byte_by_byte(case: tuple[bytes, int, bytes]) -> None:
    delimiter, max_length, stream = case
    same_however_split(lambda: Lines(delimiter, max_length), stream, [1] * len(stream))


# -- netstrings ------------------------------------------------------------------------------------


class Netstrings(NetstringReceiver):
    def __init__(self, max_length: int) -> None:
        self.MAX_LENGTH = max_length
        self.events: list[tuple[Any, ...]] = []

    def stringReceived(self, string: bytes) -> None:
        self.events.append(("string", string))


def netstring_streams() -> st.SearchStrategy[bytes]:
    payload = st.binary(max_size=30)
    token = st.one_of(
        payload.map(lambda p: b"%d:%b," % (len(p), p)),  # valid
        payload.map(lambda p: b"%d:%b," % (len(p), p)),
        payload.map(lambda p: b"%d:%bX" % (len(p), p)),  # no comma
        st.integers(0, 10**7).map(lambda n: b"%d:" % n),  # a length, maybe over-long, and no payload
        st.sampled_from([b"0:,", b"00:,", b":", b",", b"1", b"-1:x,", b" 1:x,"]),
        st.binary(max_size=8),  # garbage
    )
    return st.lists(token, max_size=20).map(b"".join)


@given(st.integers(1, 40), netstring_streams(), CUTS)
def test_netstring_receiver_is_split_invariant(max_length: int, stream: bytes, cuts: list[int]) -> None:
    same_however_split(lambda: Netstrings(max_length), stream, cuts)


# -- length-prefixed strings -----------------------------------------------------------------------


def int_receiver(base: type[IntNStringReceiver], max_length: int) -> IntNStringReceiver:
    class Strings(base):  # type: ignore[valid-type, misc]
        MAX_LENGTH = max_length

        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []

        def stringReceived(self, string: bytes) -> None:
            self.events.append(("string", string))
            if string == b"pause":
                self.pauseProducing()

        def lengthLimitExceeded(self, length: int) -> None:
            self.events.append(("limit", length))
            super().lengthLimitExceeded(length)

    return Strings()


@st.composite
def int_streams(draw: st.DrawFn, fmt: str) -> bytes:
    size = struct.calcsize(fmt)
    top = (1 << (8 * size)) - 1
    out = []
    for _ in range(draw(st.integers(0, 15))):
        kind = draw(st.integers(0, 5))
        if kind <= 2:
            payload = draw(st.one_of(st.binary(max_size=40), st.just(b"pause")))
            out.append(struct.pack(fmt, len(payload)) + payload)
        elif kind == 3:
            out.append(struct.pack(fmt, draw(st.integers(0, top))))  # any length, maybe over the limit
        else:
            out.append(draw(st.binary(max_size=10)))
    return b"".join(out)


@given(st.sampled_from([(Int32StringReceiver, "!I"), (Int16StringReceiver, "!H"), (Int8StringReceiver, "!B")])
       .flatmap(lambda b: st.tuples(st.just(b[0]), st.integers(0, 60), int_streams(b[1]), CUTS)))
def test_int_prefixed_receivers_are_split_invariant(case: tuple[type[IntNStringReceiver], int, bytes, list[int]]
                                                    ) -> None:
    base, max_length, stream, cuts = case
    same_however_split(lambda: int_receiver(base, max_length), stream, cuts)


# -- what a line echo writes, through the real transport -------------------------------------------


class _Recorder:
    """The part of an asyncio transport that :class:`Transport` writes to."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close()"
        self.data += data

    def writelines(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class Echo(LineReceiver):
    """Answers each line with sendLine, mixed with direct writes; ``quit`` closes mid-chunk."""

    MAX_LENGTH = 10

    def lineReceived(self, line: bytes) -> None:
        if line == b"quit":
            self.transport.write(b"bye")  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.sendLine(line)
        if line.startswith(b"a"):
            self.transport.write(b"<" + line + b">")  # type: ignore[union-attr]


def echo_output(chunks: list[bytes]) -> bytes:
    aio = _Recorder()
    proto: Protocol = Echo()
    proto.makeConnection(Transport(aio, proto))  # type: ignore[arg-type]
    for chunk in chunks:
        if aio.closed:
            break
        proto.dataReceived(chunk)
    return aio.data


@given(st.lists(st.sampled_from([b"a1\r\n", b"b2\r\n", b"\r\n", b"quit\r\n", b"x" * 12, b"ab", b"\r"]),
                max_size=30).map(b"".join), CUTS)
def test_held_writes_leave_the_same_bytes_in_the_same_order_however_split(stream: bytes, cuts: list[int]) -> None:
    byte_by_byte = [stream[i:i + 1] for i in range(len(stream))]
    assert echo_output(pieces(stream, cuts)) == echo_output([stream]) == echo_output(byte_by_byte)


# -- the CRLF fast path of the line splitter ---------------------------------------------------------


#: Line-break look-alikes too: bytes.splitlines must not break at \x0b, \x0c, \x1c-\x1e or \x85 (str's would).
SPLIT_ALPHABET = b"\r\nx\x0b\x0c\x1c\x1d\x1e\x85"


@given(st.lists(st.sampled_from([bytes([c]) for c in SPLIT_ALPHABET] + [b"\r\n", b"xx\r\n"]), max_size=40)
       .map(b"".join), st.sampled_from(DELIMITERS))
def test_split_is_bytes_split(data: bytes, delimiter: bytes) -> None:
    assert basic._split(data, delimiter) == data.split(delimiter)


@given(line_cases(LINE_COMMANDS), CUTS)
def test_line_receivers_see_the_same_with_and_without_the_crlf_fast_path(case: tuple[bytes, int, bytes],
                                                                         cuts: list[int]) -> None:
    delimiter, max_length, stream = case
    chunks = pieces(stream, cuts)
    fast = (feed(lambda: Lines(delimiter, max_length), chunks),
            feed(lambda: OnlyLines(delimiter, max_length), chunks))
    general = basic._split
    basic._split = bytes.split  # type: ignore[assignment]  # the general path: one bytes.split per chunk
    try:
        slow = (feed(lambda: Lines(delimiter, max_length), chunks),
                feed(lambda: OnlyLines(delimiter, max_length), chunks))
    finally:
        basic._split = general
    assert fast == slow
