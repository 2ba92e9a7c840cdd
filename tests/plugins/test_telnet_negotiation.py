"""Telnet's byte stream without sockets: the parser's events, the option states, the output encoding."""

from __future__ import annotations

import pytest

from tapster.plugins._console import negotiation as tn
from tapster.plugins._console.negotiation import (
    Command,
    Data,
    Negotiation,
    OptionNegotiator,
    Subnegotiation,
    TelnetParser,
)


def feed_all(*chunks: bytes) -> list:
    parser = TelnetParser()
    events: list = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def data_of(events: list) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_plain_text_is_one_data_event() -> None:
    assert feed_all(b"print(1)") == [Data(b"print(1)")]


@pytest.mark.parametrize("ending", [b"\r\n", b"\r\x00", b"\n", b"\r"])
def test_every_line_ending_becomes_newline(ending: bytes) -> None:
    assert data_of(feed_all(b"a" + ending + b"b" + ending)) == b"a\nb\n"


def test_cr_nul_split_across_chunks_is_one_newline() -> None:
    assert data_of(feed_all(b"abc\r", b"\x00def\r", b"\ng")) == b"abc\ndef\ng"


def test_cr_is_delivered_at_once_without_waiting_for_the_next_byte() -> None:
    parser = TelnetParser()
    assert parser.feed(b"x\r") == [Data(b"x\n")]
    assert parser.feed(b"\n") == []  # the LF of that CR LF: already counted


def test_two_crlf_make_two_lines() -> None:
    assert data_of(feed_all(b"\r\n\r\n")) == b"\n\n"


def test_stray_nul_is_dropped() -> None:
    assert data_of(feed_all(b"a\x00b")) == b"ab"


def test_iac_iac_is_a_data_byte_255() -> None:
    assert data_of(feed_all(b"a\xff\xffb")) == b"a\xffb"


def test_negotiation_splits_data_and_keeps_order() -> None:
    events = feed_all(b"ab\xff\xfd\x01cd")
    assert events == [Data(b"ab"), Negotiation(tn.DO, tn.ECHO), Data(b"cd")]


@pytest.mark.parametrize("verb", [tn.WILL, tn.WONT, tn.DO, tn.DONT])
def test_each_verb_split_across_chunks(verb: int) -> None:
    assert feed_all(b"\xff", bytes([verb]), b"\x03") == [Negotiation(verb, tn.SGA)]


def test_two_byte_commands() -> None:
    events = feed_all(bytes([tn.IAC, tn.IP, tn.IAC, tn.AYT, tn.IAC, tn.NOP]))
    assert events == [Command(tn.IP), Command(tn.AYT), Command(tn.NOP)]


def test_subnegotiation_is_collected_and_skipped_from_data() -> None:
    naws = bytes([tn.IAC, tn.SB, 31, 0, 80, 0, 24, tn.IAC, tn.SE])
    events = feed_all(b"a" + naws + b"b")
    assert events == [Data(b"a"), Subnegotiation(31, bytes([0, 80, 0, 24])), Data(b"b")]


def test_subnegotiation_across_chunks_with_escaped_iac() -> None:
    events = feed_all(bytes([tn.IAC, tn.SB, 24, 0]), b"xt\xff\xff", bytes([tn.IAC]), bytes([tn.SE]), b"z")
    assert events == [Subnegotiation(24, b"\x00xt\xff"), Data(b"z")]


def test_endless_subnegotiation_is_bounded() -> None:
    parser = TelnetParser()
    parser.feed(bytes([tn.IAC, tn.SB, 24]) + b"x" * 100_000)
    events = parser.feed(bytes([tn.IAC, tn.SE]) + b"ok")
    assert len(events[0].payload) <= 4096
    assert events[1] == Data(b"ok")


def test_encode_uses_crlf_doubles_iac_and_pads_lone_cr() -> None:
    assert tn.encode("a\nb\r\nc") == b"a\r\nb\r\nc"
    assert tn.encode("50%\rdone") == b"50%\r\x00done"
    assert tn.encode("é") == "é".encode()


def test_encode_never_emits_a_lone_iac() -> None:
    # UTF-8 never has 0xff, so this checks the escaping on bytes that could come from a replacement path.
    assert b"\xff" not in tn.encode("\udcff")  # lone surrogate → replaced, not raw


# -- option states -----------------------------------------------------------------


def test_server_offers_and_client_accepts() -> None:
    options = OptionNegotiator()
    assert options.enable_local(tn.ECHO) == bytes([tn.IAC, tn.WILL, tn.ECHO])
    assert options.local_pending(tn.ECHO)
    assert options.receive(tn.DO, tn.ECHO) == b""  # an answer is not answered
    assert options.local_enabled(tn.ECHO)


def test_offering_twice_sends_once() -> None:
    options = OptionNegotiator()
    assert options.enable_local(tn.SGA)
    assert options.enable_local(tn.SGA) == b""


def test_client_refuses_the_offer() -> None:
    options = OptionNegotiator()
    options.enable_local(tn.ECHO)
    assert options.receive(tn.DONT, tn.ECHO) == b""
    assert not options.local_enabled(tn.ECHO) and not options.local_pending(tn.ECHO)


def test_client_asks_for_a_supported_option_unprompted() -> None:
    options = OptionNegotiator()
    assert options.receive(tn.DO, tn.SGA) == bytes([tn.IAC, tn.WILL, tn.SGA])
    assert options.local_enabled(tn.SGA)
    assert options.receive(tn.DO, tn.SGA) == b""  # already on: no loop


def test_unsupported_options_are_refused_once() -> None:
    options = OptionNegotiator()
    assert options.receive(tn.DO, tn.LINEMODE) == bytes([tn.IAC, tn.WONT, tn.LINEMODE])
    assert options.receive(tn.WILL, 31) == bytes([tn.IAC, tn.DONT, 31])  # NAWS offered by the client
    assert options.receive(tn.WONT, 31) == b""
    assert options.receive(tn.DONT, tn.LINEMODE) == b""


def test_client_turns_an_enabled_option_off_and_we_acknowledge() -> None:
    options = OptionNegotiator()
    options.enable_local(tn.ECHO)
    options.receive(tn.DO, tn.ECHO)
    assert options.receive(tn.DONT, tn.ECHO) == bytes([tn.IAC, tn.WONT, tn.ECHO])
    assert not options.local_enabled(tn.ECHO)


def test_withdrawing_an_option() -> None:
    options = OptionNegotiator()
    options.enable_local(tn.ECHO)
    options.receive(tn.DO, tn.ECHO)
    assert options.disable_local(tn.ECHO) == bytes([tn.IAC, tn.WONT, tn.ECHO])
    assert options.receive(tn.DONT, tn.ECHO) == b""
    assert not options.local_enabled(tn.ECHO)
    assert options.disable_local(tn.ECHO) == b""


def test_remote_option_we_support_is_accepted() -> None:
    options = OptionNegotiator(remote=(31,))
    assert options.receive(tn.WILL, 31) == bytes([tn.IAC, tn.DO, 31])
    assert options.remote_enabled(31)
