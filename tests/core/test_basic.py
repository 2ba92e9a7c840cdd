"""Tests for tapster.core.basic: line, netstring and length-prefixed framing, driven through StringTransport."""

from __future__ import annotations

import struct

import pytest

import tapster.core.basic
from tapster.core.basic import (
    Int8StringReceiver,
    Int16StringReceiver,
    Int32StringReceiver,
    IntNStringReceiver,
    LineOnlyReceiver,
    LineReceiver,
    NetstringReceiver,
    StringTooLongError,
)
from tapster.core.testing import StringTransport, StringTransportWithDisconnection


def connect(proto, transport=None):
    transport = transport if transport is not None else StringTransport()
    proto.makeConnection(transport)
    return proto, transport


# -- fixtures: recording protocols ----------------------------------------------------


class Lines(LineReceiver):
    """Records lines, raw data and over-long lines; scripted by a few magic lines."""

    def __init__(self):
        self.lines = []
        self.raw = []
        self.exceeded = []

    def lineReceived(self, line):
        self.lines.append(line)
        if line == b"raw":
            self.setRawMode()
        elif line == b"pause":
            self.pauseProducing()
        elif line == b"quit":
            self.transport.loseConnection()
        elif line.startswith(b"delim "):
            self.delimiter = line[6:].replace(b"\\n", b"\n")
        elif line == b"clear":
            self.cleared = self.clearLineBuffer()
        elif line == b"stop":
            return "stop requested"
        elif line == b"boom":
            raise ValueError("boom")
        return None

    def rawDataReceived(self, data):
        self.raw.append(data)

    def lineLengthExceeded(self, line):
        self.exceeded.append(line)
        return super().lineLengthExceeded(line)


class OnlyLines(LineOnlyReceiver):
    def __init__(self):
        self.lines = []
        self.exceeded = []

    def lineReceived(self, line):
        self.lines.append(line)
        if line == b"quit":
            self.transport.loseConnection()

    def lineLengthExceeded(self, line):
        self.exceeded.append(line)
        return super().lineLengthExceeded(line)


def test_public_names_are_exported():
    assert set(tapster.core.basic.__all__) == {
        "LineOnlyReceiver",
        "LineReceiver",
        "NetstringReceiver",
        "NetstringParseError",
        "IntNStringReceiver",
        "Int32StringReceiver",
        "Int16StringReceiver",
        "Int8StringReceiver",
        "StringTooLongError",
    }
    for name in tapster.core.basic.__all__:
        assert hasattr(tapster.core.basic, name)


def test_defaults_match_twisted():
    assert LineReceiver.delimiter == b"\r\n" and LineReceiver.MAX_LENGTH == 16384
    assert LineOnlyReceiver.delimiter == b"\r\n" and LineOnlyReceiver.MAX_LENGTH == 16384
    assert LineReceiver.line_mode == 1
    assert NetstringReceiver.MAX_LENGTH == 99999
    assert IntNStringReceiver.MAX_LENGTH == 99999
    assert (Int32StringReceiver.structFormat, Int32StringReceiver.prefixLength) == ("!I", 4)
    assert (Int16StringReceiver.structFormat, Int16StringReceiver.prefixLength) == ("!H", 2)
    assert (Int8StringReceiver.structFormat, Int8StringReceiver.prefixLength) == ("!B", 1)
    assert issubclass(StringTooLongError, AssertionError)


# -- LineReceiver ---------------------------------------------------------------------


def test_several_lines_in_one_chunk_are_delivered_in_order():
    p, _ = connect(Lines())
    p.dataReceived(b"one\r\ntwo\r\nthree\r\n")
    assert p.lines == [b"one", b"two", b"three"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n",
        b"a\r\nb\r\n",
        b"a\r\nb",  # a tail
        b"a\r\nb\r",  # a delimiter cut after its \r
        b"a\rb\r",  # lone \r breaks of the right total length: not CRLF lines
        b"a\r\r\nb",
        b"a\nb\r\n",
        b"\n",
        b"\r",
        b"\n\r",
        b"a\x0bb\x0cc\x1cd\x85e\r\n",  # str.splitlines would break at these, bytes.splitlines does not
    ],
)
def test_the_line_splitter_gives_what_bytes_split_gives(data):
    assert tapster.core.basic._split(data, b"\r\n") == data.split(b"\r\n")
    assert tapster.core.basic._split(data, b"\n") == data.split(b"\n")


def test_lone_cr_and_lf_inside_crlf_lines_stay_in_the_lines():
    p, _ = connect(Lines())
    p.dataReceived(b"a\rb\r\nc\nd\r\n\r\r\ne")
    assert p.lines == [b"a\rb", b"c\nd", b"\r"]
    p.dataReceived(b"\r\n")
    assert p.lines[-1] == b"e"


def test_a_class_that_starts_in_raw_mode_still_does():
    class Raw(LineReceiver):
        line_mode = 0

        def __init__(self):
            self.raw = []

        def rawDataReceived(self, data):
            self.raw.append(data)

    p, _ = connect(Raw())
    p.dataReceived(b"not\r\nlines\r\n")
    assert p.raw == [b"not\r\nlines\r\n"]
    assert Raw.line_mode == 0 and LineReceiver.line_mode == 1 and LineReceiver.paused is False


def test_line_split_across_chunks_is_reassembled():
    p, _ = connect(Lines())
    for piece in (b"hel", b"lo\r", b"\nwor", b"ld", b"\r\n"):
        p.dataReceived(piece)
    assert p.lines == [b"hello", b"world"]


def test_byte_by_byte_delivery_gives_the_same_lines():
    stream = b"alpha\r\n\r\nbeta\r\ngamma\r\n"
    p, _ = connect(Lines())
    for i in range(len(stream)):
        p.dataReceived(stream[i : i + 1])
    assert p.lines == [b"alpha", b"", b"beta", b"gamma"]


def test_incomplete_line_stays_buffered_until_its_delimiter():
    p, _ = connect(Lines())
    p.dataReceived(b"a\r\npartial")
    assert p.lines == [b"a"]
    p.dataReceived(b" line\r\n")
    assert p.lines == [b"a", b"partial line"]


def test_lone_carriage_return_is_not_a_delimiter():
    p, _ = connect(Lines())
    p.dataReceived(b"a\rb\nc\r\n")
    assert p.lines == [b"a\rb\nc"]


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"\x00", b"--END--"])
def test_custom_delimiter_class_attribute(delimiter):
    class Custom(Lines):
        pass

    Custom.delimiter = delimiter
    p, tr = connect(Custom())
    stream = delimiter.join([b"x", b"yy", b"zzz"]) + delimiter + b"tail"
    for i in range(0, len(stream), 3):
        p.dataReceived(stream[i : i + 3])
    assert p.lines == [b"x", b"yy", b"zzz"]
    p.sendLine(b"out")
    assert tr.value() == b"out" + delimiter


def test_changing_delimiter_inside_lineReceived_applies_to_the_rest_of_the_chunk():
    p, _ = connect(Lines())
    p.dataReceived(b"delim \\n\r\nnext\nafter\n")
    assert p.lines == [b"delim \\n", b"next", b"after"]
    assert p.delimiter == b"\n"


def test_changing_delimiter_between_chunks():
    p, _ = connect(Lines())
    p.dataReceived(b"first\r\nsecond|")
    p.delimiter = b"|"
    p.dataReceived(b"third|")
    assert p.lines == [b"first", b"second", b"third"]


def test_sendLine_appends_the_delimiter():
    p, tr = connect(Lines())
    p.sendLine(b"hello")
    p.sendLine(b"")
    assert tr.value() == b"hello\r\n\r\n"


def test_line_longer_than_max_length_calls_lineLengthExceeded_and_closes():
    p, tr = connect(Lines())
    p.MAX_LENGTH = 10
    p.dataReceived(b"short\r\n" + b"x" * 11 + b"\r\nafter\r\n")
    assert p.lines == [b"short"]
    # Twisted hands over the long line and everything buffered after it.
    assert p.exceeded == [b"x" * 11 + b"\r\nafter\r\n"]
    assert tr.disconnecting


def test_line_of_exactly_max_length_is_accepted():
    p, tr = connect(Lines())
    p.MAX_LENGTH = 10
    p.dataReceived(b"y" * 10 + b"\r\n")
    assert p.lines == [b"y" * 10]
    assert not tr.disconnecting and p.exceeded == []


def test_overlong_line_without_delimiter_is_detected():
    p, tr = connect(Lines())
    p.MAX_LENGTH = 10
    p.dataReceived(b"z" * 6)
    assert p.exceeded == []
    p.dataReceived(b"z" * 6)
    assert p.exceeded == [b"z" * 12]
    assert tr.disconnecting


def test_overlong_line_detection_without_delimiter_follows_twisteds_threshold():
    # MAX_LENGTH + len(delimiter) - 1 bytes could still be a legal line plus
    # part of its delimiter, so Twisted waits for one more byte; so do we,
    # and lineLengthExceeded then sees the line with its delimiter.
    p, tr = connect(Lines())
    p.MAX_LENGTH = 10
    p.dataReceived(b"x" * 11)
    assert p.exceeded == [] and not tr.disconnecting
    p.dataReceived(b"\r\n")
    assert p.exceeded == [b"x" * 11 + b"\r\n"]
    assert tr.disconnecting


def test_max_length_line_followed_by_part_of_the_delimiter_is_not_overlong():
    p, tr = connect(Lines())
    p.MAX_LENGTH = 10
    p.dataReceived(b"w" * 10 + b"\r")
    assert p.exceeded == [] and not tr.disconnecting
    p.dataReceived(b"\n")
    assert p.lines == [b"w" * 10]


def test_default_max_length_rejects_a_huge_line():
    p, tr = connect(Lines())
    p.dataReceived(b"a" * (LineReceiver.MAX_LENGTH + 2))
    assert len(p.exceeded) == 1
    assert tr.disconnecting


def test_switching_to_raw_mode_hands_the_rest_of_the_buffer_to_rawDataReceived():
    p, _ = connect(Lines())
    p.dataReceived(b"a\r\nraw\r\nnot a line\r\nmore")
    assert p.lines == [b"a", b"raw"]
    assert b"".join(p.raw) == b"not a line\r\nmore"
    p.dataReceived(b"later\r\n")
    assert p.raw[-1] == b"later\r\n"
    assert p.line_mode == 0


def test_setLineMode_with_extra_parses_the_extra_bytes_as_lines():
    class Body(Lines):
        """Reads 'size N' then N raw bytes, then lines again."""

        def lineReceived(self, line):
            if line.startswith(b"size "):
                self.remaining = int(line[5:])
                self.setRawMode()
            else:
                self.lines.append(line)

        def rawDataReceived(self, data):
            body, extra = data[: self.remaining], data[self.remaining :]
            self.remaining -= len(body)
            self.raw.append(body)
            if self.remaining == 0:
                self.setLineMode(extra)

    p, _ = connect(Body())
    p.dataReceived(b"size 5\r\nab")
    p.dataReceived(b"cdeline1\r\nline2\r\nsize 3\r\nxyzend\r\n")
    assert p.raw == [b"ab", b"cde", b"xyz"]
    assert p.lines == [b"line1", b"line2", b"end"]
    assert p.line_mode == 1


def test_setLineMode_from_outside_processes_buffered_and_extra_data():
    p, _ = connect(Lines())
    p.setRawMode()
    p.dataReceived(b"raw bytes")
    p.setLineMode(b"x\r\ny\r\n")
    assert p.raw == [b"raw bytes"]
    assert p.lines == [b"x", b"y"]


def test_pause_holds_lines_until_resume():
    p, tr = connect(Lines())
    p.dataReceived(b"a\r\npause\r\nb\r\nc\r\n")
    assert p.lines == [b"a", b"pause"]
    assert tr.producerState == "paused"
    p.dataReceived(b"d\r\n")
    assert p.lines == [b"a", b"pause"]
    p.resumeProducing()
    assert tr.producerState == "producing"
    assert p.lines == [b"a", b"pause", b"b", b"c", b"d"]


def test_pauseProducing_from_outside_stops_delivery():
    p, _tr = connect(Lines())
    p.pauseProducing()
    p.dataReceived(b"x\r\ny\r\n")
    assert p.lines == []
    p.resumeProducing()
    assert p.lines == [b"x", b"y"]


def test_stopProducing_stops_delivery_and_the_transport():
    p, tr = connect(Lines())
    p.stopProducing()
    p.dataReceived(b"x\r\n")
    assert p.lines == []
    assert tr.producerState == "stopped"


def test_no_more_lines_after_the_transport_starts_disconnecting():
    p, tr = connect(Lines())
    p.dataReceived(b"a\r\nquit\r\nb\r\nc\r\n")
    assert p.lines == [b"a", b"quit"]
    assert tr.disconnecting


def test_no_more_lines_after_connection_lost_with_disconnecting_transport():
    lost = []

    class Closer(Lines):
        def connectionLost(self, reason):
            lost.append(reason)

    tr = StringTransportWithDisconnection()
    p = Closer()
    tr.protocol = p
    p.makeConnection(tr)
    p.dataReceived(b"quit\r\nnever\r\n")
    assert p.lines == [b"quit"]
    assert len(lost) == 1


def test_clearLineBuffer_inside_lineReceived_discards_and_returns_the_rest():
    p, _ = connect(Lines())
    p.dataReceived(b"a\r\nclear\r\nb\r\nc\r\npartial")
    assert p.lines == [b"a", b"clear"]
    assert p.cleared == b"b\r\nc\r\npartial"
    p.dataReceived(b"d\r\n")
    assert p.lines == [b"a", b"clear", b"d"]


def test_clearLineBuffer_outside_returns_the_partial_line():
    p, _ = connect(Lines())
    p.dataReceived(b"a\r\nhalf")
    assert p.clearLineBuffer() == b"half"
    assert p.clearLineBuffer() == b""
    p.dataReceived(b"new\r\n")
    assert p.lines == [b"a", b"new"]


def test_lineReceived_returning_true_stops_processing_and_keeps_the_rest():
    p, _ = connect(Lines())
    assert p.dataReceived(b"stop\r\nx\r\n") == "stop requested"
    assert p.lines == [b"stop"]
    p.dataReceived(b"")
    assert p.lines == [b"stop", b"x"]


def test_exception_in_lineReceived_propagates_and_keeps_undelivered_lines():
    p, _ = connect(Lines())
    with pytest.raises(ValueError, match="boom"):
        p.dataReceived(b"a\r\nboom\r\nb\r\nc")
    assert p.lines == [b"a", b"boom"]
    p.dataReceived(b"\r\n")
    assert p.lines == [b"a", b"boom", b"b", b"c"]


def test_exception_in_single_line_chunk_leaves_the_receiver_usable():
    p, _ = connect(Lines())
    with pytest.raises(ValueError):
        p.dataReceived(b"boom\r\n")
    p.dataReceived(b"fine\r\n")
    assert p.lines == [b"boom", b"fine"]


def test_reentrant_dataReceived_from_lineReceived_queues_behind_the_current_data():
    class Reentrant(Lines):
        def lineReceived(self, line):
            self.lines.append(line)
            if line == b"inject":
                self.dataReceived(b"injected\r\n")

    p, _ = connect(Reentrant())
    p.dataReceived(b"inject\r\nnext\r\n")
    assert p.lines == [b"inject", b"next", b"injected"]
    p2, _ = connect(Reentrant())
    p2.dataReceived(b"inject\r\n")  # the one-line fast path
    assert p2.lines == [b"inject", b"injected"]


def test_line_receiver_works_without_a_transport():
    p = Lines()
    p.dataReceived(b"a\r\nb\r\n")
    assert p.lines == [b"a", b"b"]


def test_data_received_alias_is_bound_at_class_level_for_subclasses():
    assert Lines.data_received is LineReceiver.dataReceived
    p, _ = connect(Lines())
    p.data_received(b"via asyncio\r\n")
    assert p.lines == [b"via asyncio"]


def test_unimplemented_callbacks_raise_not_implemented():
    p, _ = connect(LineReceiver())
    with pytest.raises(NotImplementedError):
        p.dataReceived(b"x\r\n")
    p2, _ = connect(LineReceiver())
    p2.setRawMode()
    with pytest.raises(NotImplementedError):
        p2.dataReceived(b"x")


# -- LineOnlyReceiver -------------------------------------------------------------------


def test_line_only_receiver_delivers_lines_across_chunks():
    p, _ = connect(OnlyLines())
    for piece in (b"a\r\nb", b"c\r", b"\n", b"d\r\ne\r\n"):
        p.dataReceived(piece)
    assert p.lines == [b"a", b"bc", b"d", b"e"]


def test_line_only_receiver_sendLine_uses_the_delimiter():
    p, tr = connect(OnlyLines())
    p.delimiter = b"\n"
    p.sendLine(b"hi")
    assert tr.value() == b"hi\n"


def test_line_only_receiver_drops_lines_after_disconnect():
    p, tr = connect(OnlyLines())
    p.dataReceived(b"a\r\nquit\r\nb\r\n")
    assert p.lines == [b"a", b"quit"]
    assert tr.disconnecting


def test_line_only_receiver_overlong_line_with_delimiter():
    p, tr = connect(OnlyLines())
    p.MAX_LENGTH = 4
    p.dataReceived(b"ok\r\n" + b"x" * 5 + b"\r\nlater\r\n")
    assert p.lines == [b"ok"]
    assert p.exceeded == [b"x" * 5]
    assert tr.disconnecting


def test_line_only_receiver_overlong_line_without_delimiter():
    p, tr = connect(OnlyLines())
    p.MAX_LENGTH = 4
    p.dataReceived(b"x" * 5)
    assert p.exceeded == [b"x" * 5]
    assert tr.disconnecting


def test_line_only_receiver_max_length_line_with_partial_delimiter_waits():
    p, tr = connect(OnlyLines())
    p.MAX_LENGTH = 4
    p.dataReceived(b"abcd\r")
    assert p.exceeded == [] and not tr.disconnecting
    p.dataReceived(b"\n")
    assert p.lines == [b"abcd"]


@pytest.mark.parametrize("receiver", [OnlyLines, Lines])
@pytest.mark.parametrize(
    "delimiter, max_length, chunks, line",
    [
        (b"END", 1, [b"EN", b"D"], b""),
        (b"END", 1, [b"xEN", b"D"], b"x"),
        (b"\r\n\r\n", 4, [b"abc\r\n", b"\r\n"], b"abc"),
        (b"\r\n\r\n", 4, [b"ab\r\n\r", b"\n"], b"ab"),
        (b"\r\n\r\n", 4, [b"abcd\r\n\r", b"\n"], b"abcd"),
        (b"aa", 2, [b"xa", b"a"], b"x"),
    ],
)
def test_a_legal_line_whose_delimiter_arrives_split_near_max_length_is_not_overlong(
    receiver, delimiter, max_length, chunks, line
):
    p, tr = connect(receiver())
    p.delimiter, p.MAX_LENGTH = delimiter, max_length
    for chunk in chunks:
        p.dataReceived(chunk)
    assert p.lines == [line]
    assert p.exceeded == [] and not tr.disconnecting


@pytest.mark.parametrize("delimiter, max_length, data", [(b"END", 1, b"xxE"), (b"\r\n\r\n", 4, b"abcde\r\n\r")])
def test_line_only_receiver_still_reports_a_tail_that_cannot_be_a_legal_line_at_once(delimiter, max_length, data):
    p, tr = connect(OnlyLines())
    p.delimiter, p.MAX_LENGTH = delimiter, max_length
    p.dataReceived(data)
    assert p.exceeded == [data] and tr.disconnecting


def test_line_only_receiver_custom_delimiter():
    class Nul(OnlyLines):
        delimiter = b"\x00"

    p, _ = connect(Nul())
    p.dataReceived(b"a\x00b\x00c")
    assert p.lines == [b"a", b"b"]


# -- NetstringReceiver -------------------------------------------------------------------


class Strings(NetstringReceiver):
    def __init__(self):
        self.strings = []

    def stringReceived(self, string):
        self.strings.append(string)


def test_netstrings_are_decoded():
    p, tr = connect(Strings())
    p.dataReceived(b"5:hello,0:,12:hello world!,")
    assert p.strings == [b"hello", b"", b"hello world!"]
    assert not p.brokenPeer and not tr.disconnecting


def test_netstrings_split_at_every_byte_are_decoded():
    stream = b"3:abc,1:,,10:0123456789,"
    p, _ = connect(Strings())
    for i in range(len(stream)):
        p.dataReceived(stream[i : i + 1])
    assert p.strings == [b"abc", b",", b"0123456789"]
    assert not p.brokenPeer


def test_large_netstring_in_many_chunks_is_decoded_once_complete():
    payload = bytes(range(256)) * 300
    stream = b"%d:%b," % (len(payload), payload)
    p, _ = connect(Strings())
    for i in range(0, len(stream), 1000):
        p.dataReceived(stream[i : i + 1000])
    assert p.strings == [payload]


def test_sendString_writes_a_netstring():
    p, tr = connect(Strings())
    p.sendString(b"abc")
    p.sendString(b"")
    assert tr.value() == b"3:abc,0:,"


@pytest.mark.parametrize(
    "data",
    [
        b"abc:hello,",  # non-digit length
        b"a",  # non-digit, detected before the colon
        b":x,",  # empty length
        b"-1:x,",
        b"05:hello,",  # leading zero
        b"00",
        b"3:abcX",  # missing comma
        b"3:abcd,",
        b"100000:",  # longer than MAX_LENGTH
        b"100000",  # too long, detected from the digits alone
        b"99999999999999999999999999",
    ],
)
def test_invalid_netstring_closes_the_connection_and_marks_the_peer_broken(data):
    p, tr = connect(Strings())
    p.dataReceived(data)
    assert p.brokenPeer
    assert tr.disconnecting
    assert p.strings == []


def test_valid_strings_before_invalid_data_are_delivered():
    p, tr = connect(Strings())
    p.dataReceived(b"2:ok,x:bad,1:z,")
    assert p.strings == [b"ok"]
    assert p.brokenPeer and tr.disconnecting


def test_nothing_is_parsed_after_a_broken_peer():
    p, _ = connect(Strings())
    p.dataReceived(b"nope")
    p.dataReceived(b"1:a,")
    assert p.strings == []


def test_netstring_max_length_can_be_lowered():
    p, tr = connect(Strings())
    p.MAX_LENGTH = 3
    p.dataReceived(b"3:abc,")
    assert p.strings == [b"abc"]
    p.dataReceived(b"4:")
    assert p.brokenPeer and tr.disconnecting


def test_makeConnection_resets_netstring_state():
    p, _ = connect(Strings())
    p.dataReceived(b"bad")
    assert p.brokenPeer
    connect(p)
    assert not p.brokenPeer
    p.dataReceived(b"1:a,")
    assert p.strings == [b"a"]


def test_partial_length_digits_wait_for_the_colon():
    p, tr = connect(Strings())
    p.dataReceived(b"1")
    p.dataReceived(b"2")
    assert not p.brokenPeer and not tr.disconnecting
    p.dataReceived(b":hello world!,")
    assert p.strings == [b"hello world!"]


def test_incomplete_netstring_waits_for_more():
    p, _tr = connect(Strings())
    p.dataReceived(b"5:hel")
    assert p.strings == [] and not p.brokenPeer
    p.dataReceived(b"lo")
    assert p.strings == []
    p.dataReceived(b",")
    assert p.strings == [b"hello"]


# -- IntNStringReceiver ------------------------------------------------------------------


def recorder(base):
    class Recorder(base):
        def __init__(self):
            self.strings = []
            self.exceeded = []

        def stringReceived(self, string):
            self.strings.append(string)
            if string == b"pause":
                self.pauseProducing()

        def lengthLimitExceeded(self, length):
            self.exceeded.append(length)
            super().lengthLimitExceeded(length)

    return Recorder


INT_RECEIVERS = [(Int32StringReceiver, "!I"), (Int16StringReceiver, "!H"), (Int8StringReceiver, "!B")]


@pytest.mark.parametrize("base,fmt", INT_RECEIVERS)
def test_int_prefixed_strings_round_trip(base, fmt):
    p, tr = connect(recorder(base)())
    for s in (b"hello", b"", b"x" * 200):
        p.sendString(s)
    assert tr.value() == b"".join(struct.pack(fmt, len(s)) + s for s in (b"hello", b"", b"x" * 200))
    p.dataReceived(tr.value())
    assert p.strings == [b"hello", b"", b"x" * 200]


@pytest.mark.parametrize("base,fmt", INT_RECEIVERS)
def test_int_prefixed_strings_fragmented_byte_by_byte(base, fmt):
    messages = [b"a", b"", b"bcd", b"y" * 100]
    stream = b"".join(struct.pack(fmt, len(m)) + m for m in messages)
    p, _ = connect(recorder(base)())
    for i in range(len(stream)):
        p.dataReceived(stream[i : i + 1])
    assert p.strings == messages


def test_int32_large_string_in_many_chunks():
    payload = b"q" * 90000
    stream = struct.pack("!I", len(payload)) + payload + struct.pack("!I", 2) + b"ok"
    p, _ = connect(recorder(Int32StringReceiver)())
    for i in range(0, len(stream), 777):
        p.dataReceived(stream[i : i + 777])
    assert p.strings == [payload, b"ok"]


class _Sized(bytes):
    """Claims a length without allocating it: sendString checks the length before anything else."""

    def __new__(cls, length):
        self = super().__new__(cls, b"")
        self.claimed = length
        return self

    def __len__(self):
        return self.claimed


@pytest.mark.parametrize("base,fmt", INT_RECEIVERS)
def test_sendString_too_long_for_the_prefix_raises(base, fmt):
    p, tr = connect(recorder(base)())
    limit = 2 ** (8 * struct.calcsize(fmt))
    with pytest.raises(StringTooLongError):
        p.sendString(_Sized(limit))
    assert tr.value() == b""
    if limit <= 2**16:
        p.sendString(b"x" * (limit - 1))
        assert len(tr.value()) == struct.calcsize(fmt) + limit - 1


def test_int32_sendString_too_long_is_checked_against_the_prefix_not_max_length():
    p, tr = connect(recorder(Int32StringReceiver)())
    p.sendString(b"x" * (Int32StringReceiver.MAX_LENGTH + 1))  # the peer's problem, not ours
    assert len(tr.value()) == 4 + Int32StringReceiver.MAX_LENGTH + 1


def test_length_prefix_above_max_length_calls_lengthLimitExceeded_and_closes():
    p, tr = connect(recorder(Int32StringReceiver)())
    p.dataReceived(struct.pack("!I", 3) + b"abc" + struct.pack("!I", 100000) + b"zz")
    assert p.strings == [b"abc"]
    assert p.exceeded == [100000]
    assert tr.disconnecting


def test_lowered_max_length_applies_to_int16():
    p, _tr = connect(recorder(Int16StringReceiver)())
    p.MAX_LENGTH = 10
    p.dataReceived(struct.pack("!H", 10) + b"0123456789")
    p.dataReceived(struct.pack("!H", 11))
    assert p.strings == [b"0123456789"]
    assert p.exceeded == [11]


def test_int_receiver_pause_and_resume():
    p, _tr = connect(recorder(Int8StringReceiver)())
    stream = b"".join(struct.pack("!B", len(m)) + m for m in (b"a", b"pause", b"b", b"c"))
    p.dataReceived(stream)
    assert p.strings == [b"a", b"pause"]
    p.dataReceived(b"\x01d")
    assert p.strings == [b"a", b"pause"]
    p.resumeProducing()
    assert p.strings == [b"a", b"pause", b"b", b"c", b"d"]


def test_custom_struct_format_derives_prefix_length():
    class LittleEndian(IntNStringReceiver):
        structFormat = "<H"

        def __init__(self):
            self.strings = []

        def stringReceived(self, string):
            self.strings.append(string)

    assert LittleEndian.prefixLength == 2
    p, tr = connect(LittleEndian())
    p.sendString(b"abc")
    assert tr.value() == b"\x03\x00abc"
    p.dataReceived(tr.value())
    assert p.strings == [b"abc"]


# -- LineReceiver against a naive model of Twisted's algorithm --------------------------


_DELIMITERS = {b"crlf": b"\r\n", b"lf": b"\n", b"pipe": b"|"}


class _Scripted:
    """Behaviour shared by the fast receiver and the model, scripted by the lines themselves.

    ``raw N`` reads N raw bytes then returns to line mode with the extra bytes,
    ``delim X`` changes the delimiter, ``clear`` drops the buffer, ``pause``
    pauses (the test resumes after each chunk), ``quit`` disconnects.
    """

    def init(self):
        self.events = []
        self.remaining = 0

    def lineReceived(self, line):
        self.events.append(("line", line))
        if line.startswith(b"raw ") and line[4:].isdigit():
            self.remaining = int(line[4:])
            self.setRawMode()
        elif line.startswith(b"delim "):
            self.delimiter = _DELIMITERS.get(line[6:], self.delimiter)
        elif line == b"clear":
            self.events.append(("cleared", self.clearLineBuffer()))
        elif line == b"pause":
            self.paused = True
        elif line == b"quit":
            self.transport.disconnecting = True

    def rawDataReceived(self, data):
        body, extra = data[: self.remaining], data[self.remaining :]
        self.remaining -= len(body)
        self.events.append(("raw", body))
        if self.remaining == 0:
            self.setLineMode(extra)

    def lineLengthExceeded(self, line):
        self.events.append(("exceeded", line))
        self.clearLineBuffer()


class _Model(_Scripted):
    """Twisted's documented LineReceiver behaviour, one ``split(delimiter, 1)`` per line."""

    line_mode = 1
    delimiter = b"\r\n"
    MAX_LENGTH = 12
    paused = False

    def __init__(self, transport):
        self.init()
        self._buffer = b""
        self._busy = False
        self.transport = transport

    def clearLineBuffer(self):
        b, self._buffer = self._buffer, b""
        return b

    def setRawMode(self):
        self.line_mode = 0

    def setLineMode(self, extra=b""):
        self.line_mode = 1
        if extra:
            self.dataReceived(extra)

    def dataReceived(self, data):
        if self._busy:
            self._buffer += data
            return
        self._busy = True
        try:
            self._buffer += data
            while self._buffer and not self.paused:
                if self.line_mode:
                    if self.delimiter not in self._buffer:
                        if len(self._buffer) >= self.MAX_LENGTH + len(self.delimiter):
                            line, self._buffer = self._buffer, b""
                            self.lineLengthExceeded(line)
                        return
                    line, self._buffer = self._buffer.split(self.delimiter, 1)
                    if len(line) > self.MAX_LENGTH:
                        exceeded = line + self.delimiter + self._buffer
                        self._buffer = b""
                        self.lineLengthExceeded(exceeded)
                        return
                    self.lineReceived(line)
                    if self.transport.disconnecting:
                        return
                else:
                    data, self._buffer = self._buffer, b""
                    self.rawDataReceived(data)
        finally:
            self._busy = False


class _Fast(_Scripted, LineReceiver):
    MAX_LENGTH = 12

    def __init__(self):
        self.init()


class _FlagTransport(StringTransport):
    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass


def _random_stream(rng):
    words = [b"a", b"bb", b"hello", b"", b"x" * 12, b"y" * 13, b"clear", b"pause", b"\r", b"\n", b"|"]
    out = []
    delimiter = b"\r\n"
    for _ in range(rng.randrange(5, 40)):
        roll = rng.random()
        if roll < 0.1:
            n = rng.randrange(0, 6)
            out.append(b"raw %d" % n + delimiter + bytes(rng.choice(b"ab\r\n|") for _ in range(n)))
            continue
        if roll < 0.15:
            name = rng.choice(list(_DELIMITERS))
            out.append(b"delim " + name + delimiter)
            delimiter = _DELIMITERS[name]
            continue
        if roll < 0.17:
            out.append(b"quit" + delimiter)
            continue
        out.append(rng.choice(words) + delimiter)
    return b"".join(out)


@pytest.mark.parametrize("seed", range(300))
def test_line_receiver_matches_the_naive_model_under_random_chunking(seed):
    import random

    rng = random.Random(seed)
    stream = _random_stream(rng)
    cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randrange(0, 12))))
    chunks = [stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)], strict=True)]

    model_transport = _FlagTransport()
    model = _Model(model_transport)
    fast, fast_transport = connect(_Fast(), _FlagTransport())
    for chunk in chunks:
        for proto in (model, fast):
            proto.dataReceived(chunk)
            if proto.paused:
                proto.paused = False
                proto.dataReceived(b"")
    assert fast.events == model.events
    assert fast._buffer == model._buffer
    assert fast.line_mode == model.line_mode
    assert fast.delimiter == model.delimiter
    assert fast_transport.disconnecting == model_transport.disconnecting
