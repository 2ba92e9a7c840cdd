"""The telnet parser (the first code a console client's bytes reach): total, bounded, and split-invariant."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tapster.plugins._console import negotiation as tn

#: Bytes weighted toward what matters to the parser: IAC, verbs, SB/SE, CR, LF, NUL.
TELNET_BYTES = st.lists(st.one_of(st.sampled_from([255, 251, 252, 253, 254, 250, 240, 13, 10, 0, 244, 246]),
                                  st.integers(0, 255)), max_size=400).map(bytes)


def merged(events: list[tn.Event]) -> list[tn.Event]:
    """Events with neighbouring Data joined: how the data stream is chunked is not part of the meaning."""
    out: list[tn.Event] = []
    for event in events:
        if isinstance(event, tn.Data) and out and isinstance(out[-1], tn.Data):
            out[-1] = tn.Data(out[-1].data + event.data)
        else:
            out.append(event)
    return out


@given(TELNET_BYTES, st.lists(st.integers(1, 50), max_size=20))
def test_the_same_events_however_the_stream_is_split(data: bytes, cuts: list[int]) -> None:
    whole = merged(tn.TelnetParser().feed(data))
    parser = tn.TelnetParser()
    pieces: list[tn.Event] = []
    i = 0
    for cut in cuts:
        pieces.extend(parser.feed(data[i:i + cut]))
        i += cut
    pieces.extend(parser.feed(data[i:]))
    assert merged(pieces) == whole


@given(TELNET_BYTES)
def test_events_are_well_formed_and_bounded(data: bytes) -> None:
    events = tn.TelnetParser().feed(data)
    total = 0
    for event in events:
        if isinstance(event, tn.Data):
            assert event.data and b"\r" not in event.data  # line ends normalised to \n
            total += len(event.data)
        elif isinstance(event, tn.Negotiation):
            assert event.verb in (251, 252, 253, 254) and 0 <= event.option <= 255
        elif isinstance(event, tn.Subnegotiation):
            assert len(event.payload) <= 4096
    assert total <= len(data)


@given(st.integers(0, 255), st.integers(1, 20_000))
def test_an_endless_subnegotiation_holds_a_bounded_amount(option: int, size: int) -> None:
    parser = tn.TelnetParser()
    parser.feed(bytes([255, 250, option]))
    for _ in range(size // 1000 + 1):
        parser.feed(b"x" * 1000)
    events = parser.feed(b"\xff\xf0")
    assert len(events) == 1 and isinstance(events[0], tn.Subnegotiation) and len(events[0].payload) <= 4096


@given(st.text(max_size=200))
def test_encode_then_parse_gives_the_text_back(text: str) -> None:
    """What the server writes, a telnet peer reads back as the same text (lone CRs as line ends)."""
    expected = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8", "replace").replace(b"\x00", b"")
    events = merged(tn.TelnetParser().feed(tn.encode(text)))
    got = events[0].data if events else b""  # type: ignore[union-attr]
    assert got == expected
