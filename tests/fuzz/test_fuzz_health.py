"""The health server's request parser and the probe protocol, fed hostile bytes in every split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tapster.core import testing
from tapster.twistd.health import MAX_HEAD, HealthFactory, HealthState, parse_request

REQUEST_LINES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda m, p, v: b" ".join([m, p, v]),
              st.sampled_from([b"GET", b"HEAD", b"POST", b"get", b"G\x00T", b""]),
              st.one_of(st.sampled_from([b"/healthz", b"/readyz", b"/metrics", b"/", b"x", b"/\xff"]),
                        st.binary(max_size=40)),
              st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1\r"])),
)


@given(REQUEST_LINES, st.binary(max_size=100))
def test_parse_request_never_raises_and_answers_only_known_statuses(line: bytes, rest: bytes) -> None:
    status, method, path = parse_request(line + b"\r\n" + rest)
    if method is None:
        assert status in (400, 431)
    else:
        assert status == 0 and path is not None and path.startswith("/") and method.isupper()


@given(st.binary(max_size=600), st.lists(st.integers(1, 50), max_size=20))
def test_the_probe_answers_once_or_closes_whatever_arrives(data: bytes, cuts: list[int]) -> None:
    with testing.freshReactor() as reactor:
        factory = HealthFactory(HealthState(reactor, "fuzz"))
        protocol = factory.buildProtocol(None)
        transport = testing.StringTransport()
        protocol.makeConnection(transport)
        position = 0
        for cut in [*cuts, len(data)]:
            protocol.dataReceived(data[position:position + cut])
            position += cut
            if position >= len(data):
                break
        written = transport.value()
        assert written == b"" or written.startswith(b"HTTP/1.1 ")
        assert written.count(b"HTTP/1.1 ") <= 1  # one answer per connection, never more
        assert len(protocol._head) <= MAX_HEAD + 50  # nothing kept beyond the bound
        protocol.connectionLost(None)
        assert factory.open == 0


def test_a_request_split_byte_by_byte_gets_its_answer() -> None:
    with testing.freshReactor() as reactor:
        state = HealthState(reactor, "split")
        state.phase = "ready"
        protocol = HealthFactory(state).buildProtocol(None)
        transport = testing.StringTransport()
        protocol.makeConnection(transport)
        for byte in b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n":
            protocol.dataReceived(bytes([byte]))
        assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n") and transport.value().endswith(b"ready\n")


def test_an_oversized_head_is_431_and_too_many_probes_are_closed() -> None:
    with testing.freshReactor() as reactor:
        factory = HealthFactory(HealthState(reactor, "big"))
        protocol = factory.buildProtocol(None)
        transport = testing.StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET /" + b"a" * (MAX_HEAD + 10))
        assert transport.value().startswith(b"HTTP/1.1 431 ")
        factory.open = 64
        extra = factory.buildProtocol(None)
        t2 = testing.StringTransport()
        extra.makeConnection(t2)
        assert t2.value() == b"" and t2.aborted
