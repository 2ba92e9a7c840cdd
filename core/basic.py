"""Framing protocols with Twisted's names: lines, netstrings and length-prefixed strings.

Each class here turns the undelimited byte stream that ``dataReceived`` sees
into messages: :class:`LineReceiver` and :class:`LineOnlyReceiver` call
``lineReceived(line)``, :class:`NetstringReceiver` and the
:class:`IntNStringReceiver` family call ``stringReceived(string)``. The
semantics (buffering, limits, mode switches, what happens on bad input) are
those of Twisted's ``twisted.protocols.basic``; the implementation is new.

The receive path is the hot path of every line-based server, so it is written
for the two common shapes of traffic, many complete lines in one chunk and one
line per chunk:

* a chunk that is exactly one line is recognised with one ``find`` and
  delivered without any bookkeeping;
* any other chunk is split on the delimiter once, at C speed (``bytes.split``,
  or for ``b"\\r\\n"`` the faster ``bytes.splitlines`` when the lengths prove
  it equivalent, see :func:`_split`), and the lines are handed out from an
  iterator; the unprocessed tail is the one buffer kept between chunks;
* nothing is copied per line except the line itself (Twisted's
  ``split(delimiter, 1)`` per line copies the rest of the buffer each time,
  which is quadratic in the number of lines per chunk);
* the line-length limit is checked once per chunk (not at all when the chunk
  itself is not longer than ``MAX_LENGTH``, else ``max(map(len, lines))``)
  and per line only when that check fails;
* what the delivery loop reads after every line (``paused``, ``line_mode``)
  lives on the instance, where Python loads it fastest;
* length-prefixed payloads that arrive in many pieces are collected in a list
  and joined once when complete, instead of re-concatenating a growing buffer.

Like :mod:`tapster.core.protocol`, this module imports neither asyncio nor socket.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from tapster.core.errors import NetstringParseError, StringTooLongError
from tapster.core.protocol import Protocol

if TYPE_CHECKING:
    from tapster.core.interfaces import ITransport

__all__ = [
    "LineOnlyReceiver",
    "LineReceiver",
    "NetstringReceiver",
    "NetstringParseError",
    "IntNStringReceiver",
    "Int32StringReceiver",
    "Int16StringReceiver",
    "Int8StringReceiver",
    "StringTooLongError",
]

_log = logging.getLogger("tapster.basic")


class _Detached:
    """Stands in for a missing transport so the hot loops need no ``None`` test per line."""

    disconnecting = False


def _no_transport(protocol: object) -> AttributeError:
    """What sending or closing before ``makeConnection`` raises: the AttributeError
    ``None.write`` always raised there, with a message that says why."""
    return AttributeError(f"{type(protocol).__name__} has no transport: makeConnection() has not been called")


def _connected(protocol: Protocol | _PauseableMixin) -> ITransport:
    """The protocol's transport, for what only makes sense once connected (closing, pausing).

    The hot senders (``sendLine``, ``sendString``) test inline instead: one call less per message.
    """
    transport = protocol.transport
    if transport is None:
        raise _no_transport(protocol)
    return transport


_DETACHED = _Detached()


def _overlong(tail: bytes, maxLength: int, delimiter: bytes) -> bool:
    """Whether an undelimited ``tail`` already proves that its line exceeds ``maxLength``.

    The tail holds no complete delimiter, but it may end with the first ``k``
    bytes of one whose rest is still in flight; its line would then be the
    ``len(tail) - k`` bytes before them. The tail proves an over-long line only
    if no such ``k`` (1 to ``len(delimiter) - 1``) leaves a line of at most
    ``maxLength`` bytes. Testing only the bytes past ``maxLength`` is not
    enough: with ``b"END"`` and ``MAX_LENGTH = 1``, the tail ``b"EN"`` is an
    empty line plus ``b"EN"``, and ``b"abc\r\n"`` is ``b"abc"`` plus half of
    ``b"\r\n\r\n"``. Whatever the split of the stream, the verdict is then
    the one the whole stream would give. At most ``len(delimiter) - 1``
    suffixes are compared, so the cost does not depend on the tail's length.
    """
    excess = len(tail) - maxLength
    if excess <= 0:
        return False
    for k in range(excess, len(delimiter)):
        if tail.endswith(delimiter[:k]):
            return False
    return True


def _split(data: bytes, delimiter: bytes) -> list[bytes]:
    """``data.split(delimiter)``, about twice as fast for the usual ``b"\\r\\n"``.

    CPython's ``bytes.split`` searches for a two-byte separator much more
    slowly than ``bytes.splitlines`` finds line breaks, and a chunk of
    pipelined lines spends most of its parsing time there. ``splitlines``
    breaks at ``\\r\\n``, at a lone ``\\r`` and at a lone ``\\n`` alike, so its
    result is used only when the lengths prove that every break was a
    ``\\r\\n``: each break takes one or two bytes, and the bytes that are not
    in the pieces number exactly two per break only if all were. A chunk
    that ends in ``\\r`` (a delimiter cut in two by the read) is left to
    ``split``. Any other delimiter, and any chunk with a lone ``\\r`` or ``\\n``,
    costs one extra ``splitlines`` at most before the ``split``.
    """
    if delimiter == b"\r\n" and data:
        last = data[-1]
        if last != 13:  # not b"\r"
            lines = data.splitlines()
            if last == 10:  # ends with a break: every piece is a line
                if len(data) - sum(map(len, lines)) == 2 * len(lines):
                    lines.append(b"")
                    return lines
            elif len(data) - sum(map(len, lines)) == 2 * len(lines) - 2:  # the last piece is the tail
                return lines
    return data.split(delimiter)


class _OneWritePerRead:
    """Sends what one ``dataReceived`` call writes as one write on the transport.

    A pipelined chunk of N lines makes a line protocol call ``sendLine`` N
    times; each would be a system call, since uvloop writes at once whenever
    its buffer is empty. ``dataReceived`` therefore asks the transport to hold
    its writes (``_hold_writes``, which tapster's stream transports have) while
    the subclass's ``_deliver`` parses the chunk and runs the callbacks, and
    to release them, as one write, when it returns or raises. ``sendLine`` and
    ``sendString`` append to the held list directly (one call less per
    message); direct ``transport.write`` calls from the callbacks land in the
    same list, so mixing them keeps their order, and ``loseConnection`` sends
    the list before closing. Writes made anywhere else (a timer, another
    connection) are not held and leave at once, and a plain
    :class:`~tapster.core.protocol.Protocol` never pays for any of this. A
    transport without ``_hold_writes`` (test doubles) is written to directly.
    """

    transport: ITransport | None
    #: The transport's list of held writes while this protocol's ``dataReceived`` runs.
    _held: list[bytes] | None = None

    def _deliver(self, data: bytes) -> Any:
        raise NotImplementedError

    def dataReceived(self, data: bytes) -> Any:
        """Parse ``data``, deliver the messages it completes, then send what they wrote."""
        transport = self.transport
        hold = getattr(transport, "_hold_writes", None)
        held = hold() if hold is not None else None
        if held is None:
            return self._deliver(data)
        self._held = held
        try:
            return self._deliver(data)
        finally:
            self._held = None
            transport._release_writes()  # type: ignore[union-attr]


class _LineSender(_OneWritePerRead):
    """``sendLine``, shared by both line receivers: inside ``dataReceived`` the line joins the one write."""

    delimiter: bytes  # each receiver's own class attribute (Twisted's)
    transport: ITransport | None

    def sendLine(self, line: bytes) -> None:
        """Write ``line`` followed by the delimiter."""
        held = self._held
        if held is not None:  # inside dataReceived: joined with the rest once it returns
            if type(line) is bytes:
                held.append(line)
                held.append(self.delimiter)
            else:  # a copy (a bytearray may change before the join); a str raises TypeError here
                held.append(line + self.delimiter)
            return None
        transport = self.transport
        if transport is None:
            raise _no_transport(self)
        return transport.write(line + self.delimiter)


class _PauseableMixin:
    """Lets the application stop the delivery of parsed messages (``IPushProducer``).

    Pausing also pauses the transport, so the peer's data stays in the kernel;
    whatever was already received stays buffered until ``resumeProducing``.
    """

    paused = False
    transport: ITransport | None

    if TYPE_CHECKING:  # provided by the protocol class this is mixed into

        def dataReceived(self, data: bytes) -> object: ...

    def pauseProducing(self) -> None:
        self.paused = True
        _connected(self).pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        _connected(self).resumeProducing()
        self.dataReceived(b"")

    def stopProducing(self) -> None:
        self.paused = True
        _connected(self).stopProducing()


# -- lines ----------------------------------------------------------------------


class LineOnlyReceiver(_LineSender, Protocol):
    """Calls :meth:`lineReceived` for each line; nothing else (no raw mode, no pausing).

    ``delimiter`` ends a line (``b"\\r\\n"``); a line longer than
    ``MAX_LENGTH`` bytes goes to :meth:`lineLengthExceeded` instead, which
    closes the connection. An undelimited tail is reported as soon as it
    cannot be a legal line plus the start of its delimiter (Twisted reports
    any tail above ``MAX_LENGTH``, wrongly closing on a ``MAX_LENGTH`` line
    whose ``\\r\\n`` arrives split). Once the transport is disconnecting,
    the remaining lines of the chunk are dropped: a ``quit`` command in the
    middle of a pipelined chunk ends the conversation there.
    """

    delimiter: bytes = b"\r\n"
    MAX_LENGTH: int = 16384
    _buffer: bytes = b""

    # ``Any``: what a callback returned to stop processing (Twisted's convention) comes back
    # out, and the result must still fit Protocol.dataReceived's ``None`` for asyncio.
    def _deliver(self, data: bytes) -> Any:
        """Split the stream into lines and deliver them (``dataReceived`` without the write holding)."""
        delimiter = self.delimiter
        if not self._buffer:
            # Fast path: the chunk is exactly one line (interactive traffic).
            n = len(data) - len(delimiter)
            if 0 <= n <= self.MAX_LENGTH and data.find(delimiter) == n:
                transport: ITransport | _Detached | None = self.transport
                if transport is None or not transport.disconnecting:
                    self.lineReceived(data[:n])
                return None
        buf = self._buffer + data if self._buffer else data
        lines = _split(buf, delimiter)
        self._buffer = tail = lines.pop()
        maxLength = self.MAX_LENGTH
        if lines:
            transport = self.transport
            if transport is None:
                transport = _DETACHED
            # No line is longer than the chunk: measure the lines only when the chunk could hold a long one.
            if len(buf) <= maxLength or max(map(len, lines)) <= maxLength:
                for line in lines:
                    if transport.disconnecting:
                        return None
                    self.lineReceived(line)
            else:
                for line in lines:
                    if transport.disconnecting:
                        return None
                    if len(line) > maxLength:
                        return self.lineLengthExceeded(line)
                    self.lineReceived(line)
        if len(tail) > maxLength and _overlong(tail, maxLength, delimiter):
            return self.lineLengthExceeded(tail)
        return None

    def lineReceived(self, line: bytes) -> object:
        """A line arrived, without its delimiter. Override."""
        raise NotImplementedError

    def lineLengthExceeded(self, line: bytes) -> object:
        """A line longer than ``MAX_LENGTH`` arrived (``line`` may be just its start).

        The default closes the connection; override to do something else.
        """
        _connected(self).loseConnection()
        return None


class LineReceiver(_LineSender, Protocol, _PauseableMixin):
    """Line mode (``lineReceived`` per line) or raw mode (``rawDataReceived`` per chunk).

    Everything may change from inside ``lineReceived`` and takes effect for
    the rest of the data already received: :meth:`setRawMode` hands the rest
    to ``rawDataReceived``, a new ``delimiter`` splits the rest anew,
    :meth:`pauseProducing` keeps it buffered until :meth:`resumeProducing`,
    :meth:`clearLineBuffer` discards (and returns) it, and once the transport
    is disconnecting no further line is delivered. A ``lineReceived`` that
    returns a true value stops processing too (an old Twisted convention).
    From ``rawDataReceived``, ``setLineMode(extra)`` goes back to lines,
    starting with the bytes ``extra`` that were not raw data after all.

    A line longer than ``MAX_LENGTH`` goes to :meth:`lineLengthExceeded`
    together with everything buffered after it. Without a delimiter, it is
    detected once ``MAX_LENGTH + len(delimiter)`` bytes are buffered (fewer
    could still be a legal line plus part of its delimiter); this is
    Twisted's rule, so ``lineLengthExceeded`` sees the same bytes as there.
    The default closes the connection.
    """

    line_mode: int = 1
    delimiter: bytes = b"\r\n"
    MAX_LENGTH: int = 16384
    _buffer: bytes = b""
    _busyReceiving: bool = False
    # While dataReceived hands out the lines of one chunk, the lines not yet
    # delivered are in _pending (split on _pendingDelimiter) followed by
    # _tail; bytes received re-entrantly meanwhile are appended to _buffer.
    _pending: Iterator[bytes] | None = None
    _pendingDelimiter: bytes = b""
    _tail: bytes = b""

    def makeConnection(self, transport: ITransport) -> None:
        # The delivery loop reads these two after every line. As instance attributes they
        # load several times faster than the class defaults they start as (Python 3.11
        # specialises instance-attribute loads, not class attributes read through an
        # instance); the values are the same, so nothing else changes.
        self.line_mode = self.line_mode
        self.paused = self.paused
        super().makeConnection(transport)

    def _takePending(self) -> bytes:
        """Remove and return the undelivered part of the chunk being processed."""
        pending = self._pending
        if pending is None:
            return b""
        self._pending = None
        tail = self._tail
        self._tail = b""
        rest = list(pending)  # exhausting the iterator also ends the delivery loop
        if not rest:
            return tail
        rest.append(tail)
        return self._pendingDelimiter.join(rest)

    def clearLineBuffer(self) -> bytes:
        """Discard all buffered, undelivered data and return it."""
        data = self._takePending()
        if self._buffer:
            data += self._buffer
            self._buffer = b""
        return data

    def _deliver(self, data: bytes) -> Any:  # Any: as LineOnlyReceiver._deliver
        """Deliver lines (or raw data) from ``data`` and whatever was buffered before it."""
        if self._busyReceiving:
            # Called from one of our own callbacks (setLineMode(extra),
            # resumeProducing): queue behind what is being processed.
            self._buffer += data
            return None
        if not self._buffer and self.line_mode and not self.paused:
            # Fast path: the chunk is exactly one line (interactive traffic).
            delimiter = self.delimiter
            n = len(data) - len(delimiter)
            if 0 <= n <= self.MAX_LENGTH and data.find(delimiter) == n:
                self._busyReceiving = True
                try:
                    why = self.lineReceived(data[:n])
                finally:
                    self._busyReceiving = False
                if why or not self._buffer:
                    return why
                transport: ITransport | _Detached | None = self.transport
                if transport is not None and transport.disconnecting:
                    return None
                return self.dataReceived(b"")  # bytes that arrived re-entrantly
        self._busyReceiving = True
        buf = self._buffer + data if self._buffer else data
        self._buffer = b""
        try:
            while buf and not self.paused:
                if not self.line_mode:
                    chunk, buf = buf, b""
                    why = self.rawDataReceived(chunk)
                    buf, self._buffer = self._buffer, b""
                    if why:
                        return why
                    continue
                delimiter = self.delimiter
                size = len(buf)
                lines = _split(buf, delimiter)
                buf = lines.pop()
                if not lines:
                    if len(buf) >= self.MAX_LENGTH + len(delimiter):
                        line, buf = buf, b""
                        return self.lineLengthExceeded(line)
                    break
                transport = self.transport
                if transport is None:
                    transport = _DETACHED
                maxLength = self.MAX_LENGTH
                self._tail = buf
                buf = b""
                self._pendingDelimiter = delimiter
                self._pending = pending = iter(lines)
                why = None
                if size <= maxLength or max(map(len, lines)) <= maxLength:  # (as in LineOnlyReceiver)
                    for line in pending:
                        why = self.lineReceived(line)
                        if (
                            why
                            or transport.disconnecting
                            or self.paused
                            or not self.line_mode
                            or self.delimiter is not delimiter
                        ):
                            break
                    else:
                        if self._pending is pending and not self._buffer:
                            # Every line delivered, nothing changed: keep the tail.
                            self._pending = None
                            buf = self._tail
                            self._tail = b""
                            continue
                else:
                    for line in pending:
                        if len(line) > maxLength:
                            rest = self._takePending()
                            if self._buffer:
                                rest += self._buffer
                                self._buffer = b""
                            return self.lineLengthExceeded(line + delimiter + rest)
                        why = self.lineReceived(line)
                        if (
                            why
                            or transport.disconnecting
                            or self.paused
                            or not self.line_mode
                            or self.delimiter is not delimiter
                        ):
                            break
                buf = self._takePending()
                if self._buffer:
                    buf += self._buffer
                    self._buffer = b""
                if why or transport.disconnecting:
                    return why
            return None
        finally:
            if self._pending is not None:  # a callback raised: keep what it did not see
                buf = self._takePending()
            self._buffer = buf + self._buffer if self._buffer else buf
            self._busyReceiving = False

    def setLineMode(self, extra: bytes = b"") -> Any:
        """Deliver lines from now on, starting with ``extra`` (call from ``rawDataReceived``)."""
        self.line_mode = 1
        if extra:
            return self.dataReceived(extra)
        return None

    def setRawMode(self) -> None:
        """Deliver undelimited chunks to :meth:`rawDataReceived` from now on."""
        self.line_mode = 0

    def rawDataReceived(self, data: bytes) -> object:
        """Bytes arrived in raw mode. Override if you use raw mode."""
        raise NotImplementedError

    def lineReceived(self, line: bytes) -> object:
        """A line arrived, without its delimiter. Override."""
        raise NotImplementedError

    def lineLengthExceeded(self, line: bytes) -> object:
        """A line longer than ``MAX_LENGTH`` arrived.

        ``line`` is the rest of the buffer starting with (some of) the long
        line; it may hold more than one line. The default closes the connection.
        """
        _connected(self).loseConnection()
        return None


# -- netstrings -------------------------------------------------------------------

#: Validated length prefixes of up to three digits and their values: small
#: messages are the common case, and a dict lookup is cheaper than checking
#: and converting the digits again for each one.
_SHORT_LENGTHS: dict[bytes, int] = {}


class NetstringReceiver(_OneWritePerRead, Protocol):
    """Netstrings (``b"5:hello,"``, see cr.yp.to/proto/netstrings.txt) to :meth:`stringReceived`.

    A length with leading zeros or non-digits, a length above ``MAX_LENGTH``
    (detected from the digits alone, before the payload arrives) or a payload
    not followed by a comma is a broken peer: the connection is closed, the
    ``brokenPeer`` flag set, and nothing more is parsed.
    """

    MAX_LENGTH: int = 99999
    brokenPeer: int = 0
    # Bytes kept between calls: a list of chunks, joined once enough have come.
    _parts: list[bytes] | None = None
    _have: int = 0
    _needed: int = 0

    def makeConnection(self, transport: ITransport) -> None:
        self._parts = None
        self._have = self._needed = 0
        self.brokenPeer = 0
        super().makeConnection(transport)

    def sendString(self, string: bytes) -> None:
        """Write ``string`` as one netstring."""
        held = self._held
        if held is not None:
            held.append(b"%d:%b," % (len(string), string))
            return
        transport = self.transport
        if transport is None:
            raise _no_transport(self)
        transport.write(b"%d:%b," % (len(string), string))

    def stringReceived(self, string: bytes) -> None:
        """A complete netstring's payload arrived. Override."""
        raise NotImplementedError

    def _brokenPeer(self, why: str) -> None:
        _log.debug("%s: invalid netstring from peer: %s", self.logPrefix(), why)
        self._parts = None
        self.brokenPeer = 1
        _connected(self).loseConnection()

    def _badLength(self, digits: bytes, maxDigits: int) -> str | None:
        """Why ``digits`` (a complete or partial length) is unacceptable, or None if it is fine."""
        if not digits.isdigit():  # ASCII digits only, for bytes
            return "the netstring does not start with a length"
        if len(digits) > 1 and digits[0] == 0x30:
            return "the netstring length has leading zeros"
        if len(digits) > maxDigits or int(digits) > self.MAX_LENGTH:
            return f"the netstring is longer than MAX_LENGTH ({self.MAX_LENGTH})"
        return None

    def _deliver(self, data: bytes) -> None:
        """Deliver each complete netstring in the stream."""
        if self.brokenPeer:
            return
        parts = self._parts
        if parts is not None:
            parts.append(data)
            self._have += len(data)
            if self._have < self._needed:
                return
            data = b"".join(parts)
            self._parts = None
        pos = 0
        end = len(data)
        maxLength = self.MAX_LENGTH
        maxDigits = len(str(maxLength))
        needed = 0
        while pos < end:
            colon = data.find(b":", pos, pos + maxDigits + 1)
            if colon < 0:
                why = self._badLength(data[pos : pos + maxDigits + 1], maxDigits)
                if why:
                    return self._brokenPeer(why)
                needed = end - pos + 1
                break
            digits = data[pos:colon]
            length = _SHORT_LENGTHS.get(digits)
            if length is None:
                why = self._badLength(digits, maxDigits)
                if why:
                    return self._brokenPeer(why)
                length = int(digits)
                if len(digits) <= 3:  # bounded: at most 1000 entries
                    _SHORT_LENGTHS[digits] = length
            elif length > maxLength:
                return self._brokenPeer(f"the netstring is longer than MAX_LENGTH ({maxLength})")
            start = colon + 1
            stop = start + length  # where the comma must be
            if stop >= end:
                needed = stop + 1 - pos
                break
            if data[stop] != 0x2C:
                return self._brokenPeer("the netstring is not terminated by a comma")
            pos = stop + 1
            self.stringReceived(data[start:stop])
            if self.brokenPeer:
                return
        if pos < end:
            self._parts = [data[pos:] if pos else data]
            self._have = end - pos
            self._needed = needed


# -- length-prefixed strings -------------------------------------------------------


class IntNStringReceiver(_OneWritePerRead, Protocol, _PauseableMixin):
    """Strings prefixed by their length as a big-endian integer, to :meth:`stringReceived`.

    Subclasses set ``structFormat`` (``prefixLength`` is derived from it
    unless given). A prefix above ``MAX_LENGTH`` calls
    :meth:`lengthLimitExceeded`, which closes the connection by default.
    ``sendString`` raises :class:`StringTooLongError` for a string the prefix
    cannot describe. Delivery can be paused like :class:`LineReceiver`'s.
    """

    structFormat: ClassVar[str]
    prefixLength: ClassVar[int]
    MAX_LENGTH: int = 99999
    _prefix: ClassVar[struct.Struct]
    _parts: list[bytes] | None = None
    _have: int = 0
    _needed: int = 0

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        fmt = cls.__dict__.get("structFormat")
        if fmt is not None:
            cls._prefix = struct.Struct(fmt)
            if "prefixLength" not in cls.__dict__:
                cls.prefixLength = cls._prefix.size

    def stringReceived(self, string: bytes) -> None:
        """A complete string arrived, without its prefix. Override."""
        raise NotImplementedError

    def lengthLimitExceeded(self, length: int) -> None:
        """The peer announced a string of ``length`` > ``MAX_LENGTH`` bytes; closes by default."""
        _connected(self).loseConnection()

    def sendString(self, string: bytes) -> None:
        """Write ``string`` after its length prefix."""
        limit = 1 << (8 * self.prefixLength)
        if len(string) >= limit:
            raise StringTooLongError(
                f"cannot send {len(string)} bytes with a {self.prefixLength}-byte length prefix"
                f" (at most {limit - 1})"
            )
        held = self._held
        if held is not None:
            held.append(self._prefix.pack(len(string)) + string)
            return
        transport = self.transport
        if transport is None:
            raise _no_transport(self)
        transport.write(self._prefix.pack(len(string)) + string)

    def resumeProducing(self) -> None:
        self._needed = 0  # what was held back while paused may be complete already
        super().resumeProducing()

    def _deliver(self, data: bytes) -> None:
        """Deliver each complete string in the stream."""
        parts = self._parts
        if parts is not None:
            parts.append(data)
            self._have += len(data)
            if self._have < self._needed or self.paused:
                return
            data = b"".join(parts)
            self._parts = None
        pos = 0
        end = len(data)
        prefixLength = self.prefixLength
        unpack_from = self._prefix.unpack_from
        maxLength = self.MAX_LENGTH
        needed = 0
        while not self.paused:
            start = pos + prefixLength
            if start > end:
                needed = prefixLength
                break
            (length,) = unpack_from(data, pos)
            if length > maxLength:
                # Keep the offending prefix buffered, as Twisted does.
                self._parts = [data[pos:] if pos else data]
                self._have = end - pos
                self._needed = 0
                self.lengthLimitExceeded(length)
                return
            stop = start + length
            if stop > end:
                needed = stop - pos
                break
            pos = stop
            self.stringReceived(data[start:stop])
        if pos < end:
            self._parts = [data[pos:] if pos else data]
            self._have = end - pos
            self._needed = needed


class Int32StringReceiver(IntNStringReceiver):
    """Strings prefixed by a 4-byte big-endian length."""

    structFormat = "!I"


class Int16StringReceiver(IntNStringReceiver):
    """Strings prefixed by a 2-byte big-endian length."""

    structFormat = "!H"


class Int8StringReceiver(IntNStringReceiver):
    """Strings prefixed by a 1-byte length."""

    structFormat = "!B"
