"""Telnet (RFC 854/855) as a pure parser: bytes in, events out; no sockets, no clock.

:class:`TelnetParser` splits what a client sends into :class:`Data`,
:class:`Command` (``IAC IP``, ``IAC AYT``...), :class:`Negotiation`
(``IAC WILL/WONT/DO/DONT option``) and :class:`Subnegotiation` events.
``IAC IAC`` is a data byte 255. Line ends are normalised the way a server
wants them: CR LF, CR NUL, a lone CR and a lone LF all become ``b"\\n"``
(the CR is turned into a newline at once; a LF or NUL following it, even in
the next chunk, is dropped), so a client in character mode (CR NUL) and a
raw ``nc`` (LF) look the same.

:class:`OptionNegotiator` keeps the state of each option on both sides
(RFC 1143's "Q method", without the queue bits) so that the server never
answers an answer: it asks for what it wants (``WILL ECHO``, ``WILL SGA``),
agrees to nothing else, and reports what the client accepted.
:func:`encode` prepares text for the wire (CR LF line ends, ``IAC``
doubled).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "IAC", "DONT", "DO", "WONT", "WILL", "SB", "SE", "GA", "EL", "EC", "AYT", "AO", "IP", "BRK", "DM", "NOP",
    "EOF", "SUSP", "ABORT", "ECHO", "SGA", "LINEMODE",
    "Data", "Command", "Negotiation", "Subnegotiation", "Event",
    "TelnetParser", "OptionNegotiator", "encode", "command",
]

# Commands (RFC 854) and the options this server cares about.
IAC, DONT, DO, WONT, WILL, SB = 255, 254, 253, 252, 251, 250
GA, EL, EC, AYT, AO, IP, BRK, DM, NOP, SE = 249, 248, 247, 246, 245, 244, 243, 242, 241, 240
EOF, SUSP, ABORT = 236, 237, 238
ECHO, SGA, LINEMODE = 1, 3, 34

_VERBS = (WILL, WONT, DO, DONT)
_SUBNEGOTIATION_LIMIT = 4096  # a client sending an endless SB is dropped, not buffered forever


@dataclass(frozen=True)
class Data:
    """Bytes of the user's data stream (line ends already normalised to ``\\n``)."""

    data: bytes


@dataclass(frozen=True)
class Command:
    """A two-byte command such as ``IAC IP`` (interrupt) or ``IAC AYT`` (are you there)."""

    command: int


@dataclass(frozen=True)
class Negotiation:
    """``IAC verb option``: ``verb`` is one of WILL, WONT, DO, DONT."""

    verb: int
    option: int


@dataclass(frozen=True)
class Subnegotiation:
    """``IAC SB option payload IAC SE``; the server skips these (it agrees to no such option)."""

    option: int
    payload: bytes


Event = Data | Command | Negotiation | Subnegotiation

_SPECIAL = re.compile(rb"[\xff\r\n\x00]")

# Parser states.
_DATA, _IAC, _VERB, _SB, _SB_DATA, _SB_IAC = range(6)


class TelnetParser:
    """Feed bytes with :meth:`feed`; get the events they complete. State carries across chunks."""

    def __init__(self) -> None:
        self._state = _DATA
        self._verb = 0
        self._sb_option = 0
        self._sb = bytearray()
        self._after_cr = False  # a CR was just turned into \n: drop a following LF or NUL

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        data = bytearray()
        i, n = 0, len(chunk)
        while i < n:
            state = self._state
            if state == _DATA:
                match = _SPECIAL.search(chunk, i)
                end = match.start() if match else n
                if end > i:
                    data += chunk[i:end]
                    self._after_cr = False
                    i = end
                    continue
                byte = chunk[i]
                i += 1
                if byte == IAC:
                    self._state = _IAC
                elif byte == 0x0D:
                    data += b"\n"
                    self._after_cr = True
                elif byte in (0x0A, 0x00):
                    if not self._after_cr:
                        if byte == 0x0A:
                            data += b"\n"
                        # a NUL outside CR NUL is NVT's no-op: dropped
                    self._after_cr = False
                continue
            byte = chunk[i]
            i += 1
            if state == _IAC:
                self._state = _DATA
                if byte == IAC:
                    data.append(IAC)
                    self._after_cr = False
                elif byte in _VERBS:
                    self._verb = byte
                    self._state = _VERB
                elif byte == SB:
                    self._state = _SB
                else:
                    self._flush(data, events)
                    events.append(Command(byte))
            elif state == _VERB:
                self._flush(data, events)
                events.append(Negotiation(self._verb, byte))
                self._state = _DATA
            elif state == _SB:
                self._sb_option = byte
                self._sb.clear()
                self._state = _SB_DATA
            elif state == _SB_DATA:
                if byte == IAC:
                    self._state = _SB_IAC
                elif len(self._sb) < _SUBNEGOTIATION_LIMIT:
                    self._sb.append(byte)
            else:  # _SB_IAC
                if byte == SE:
                    self._flush(data, events)
                    events.append(Subnegotiation(self._sb_option, bytes(self._sb)))
                    self._sb.clear()
                    self._state = _DATA
                else:  # IAC IAC inside SB is a 255 of the payload; anything else is kept as is
                    if len(self._sb) < _SUBNEGOTIATION_LIMIT:
                        self._sb.append(byte)
                    self._state = _SB_DATA
        self._flush(data, events)
        return events

    @staticmethod
    def _flush(data: bytearray, events: list[Event]) -> None:
        if data:
            events.append(Data(bytes(data)))
            data.clear()


def command(verb: int, option: int) -> bytes:
    """The three bytes ``IAC verb option``."""
    return bytes((IAC, verb, option))


def encode(text: str) -> bytes:
    """``text`` for the wire: UTF-8, every line end CR LF, a lone CR as CR NUL, IAC doubled."""
    text = text.replace("\r\n", "\n").replace("\r", "\r\0").replace("\n", "\r\n")
    return text.encode("utf-8", "replace").replace(b"\xff", b"\xff\xff")


# Option states (RFC 1143).
_NO, _YES, _WANTYES, _WANTNO = "no", "yes", "wantyes", "wantno"


class OptionNegotiator:
    """Which options are on, on our side (``WILL``) and the client's (``DO``), and what to answer.

    ``local`` is the set of options this server is willing to perform
    (``ECHO``, ``SGA``); ``remote`` the options it lets the client perform
    (none by default). Every method returns the bytes to send, possibly
    empty; an answer is sent only when a state changes, so two peers can
    never loop.
    """

    def __init__(self, local: Iterable[int] = (ECHO, SGA), remote: Iterable[int] = ()) -> None:
        self.local_supported = frozenset(local)
        self.remote_supported = frozenset(remote)
        self._local: dict[int, str] = {}
        self._remote: dict[int, str] = {}

    def local_enabled(self, option: int) -> bool:
        """Whether we perform ``option`` (the client said DO)."""
        return self._local.get(option, _NO) == _YES

    def local_pending(self, option: int) -> bool:
        """Whether we asked to perform ``option`` and the client has not answered."""
        return self._local.get(option, _NO) == _WANTYES

    def remote_enabled(self, option: int) -> bool:
        return self._remote.get(option, _NO) == _YES

    def enable_local(self, option: int) -> bytes:
        """Offer to perform ``option`` (send WILL unless it is on or asked already)."""
        if self._local.get(option, _NO) in (_NO, _WANTNO):
            self._local[option] = _WANTYES
            return command(WILL, option)
        return b""

    def disable_local(self, option: int) -> bytes:
        if self._local.get(option, _NO) in (_YES, _WANTYES):
            self._local[option] = _WANTNO
            return command(WONT, option)
        return b""

    def receive(self, verb: int, option: int) -> bytes:
        """Update the state for ``IAC verb option`` from the client; returns our answer."""
        if verb in (DO, DONT):
            return self._answer(self._local, self.local_supported, verb == DO, option, WILL, WONT)
        return self._answer(self._remote, self.remote_supported, verb == WILL, option, DO, DONT)

    @staticmethod
    def _answer(states: dict[int, str], supported: frozenset[int], on: bool, option: int,
                agree: int, refuse: int) -> bytes:
        state = states.get(option, _NO)
        if on:
            if state == _NO:
                if option in supported:
                    states[option] = _YES
                    return command(agree, option)
                return command(refuse, option)
            if state == _WANTYES:
                states[option] = _YES
            elif state == _WANTNO:  # crossed with our withdrawal, which they will answer (RFC 1143)
                states[option] = _NO
            return b""
        if state in (_YES, _WANTYES):
            previous = state
            states[option] = _NO
            return command(refuse, option) if previous == _YES else b""
        if state == _WANTNO:
            states[option] = _NO
        return b""
