"""The qotd plugin: quoters (no networking), the protocol on a StringTransport, the options."""

from __future__ import annotations

import pickle

import pytest

from tapster.core import usage
from tapster.core.internet import TCPServer, UNIXServer
from tapster.core.testing import StringTransport
from tapster.plugins import qotd
from tapster.plugins.quoters import DEFAULT_QUOTE, FortuneQuoter, StaticQuoter, parse_fortunes


def test_parse_fortunes_splits_on_percent_lines_and_drops_empty_ones() -> None:
    text = "one\n%\ntwo\nlines\n%\n%\n  \n%\nlast"
    assert parse_fortunes(text) == ["one", "two\nlines", "last"]


def test_parse_fortunes_keeps_percent_inside_a_line() -> None:
    assert parse_fortunes("100% sure\n%\nnext") == ["100% sure", "next"]


def test_fortune_quoter_reads_every_file(tmp_path) -> None:
    a = tmp_path / "a"
    a.write_text("A1\n%\nA2\n")
    b = tmp_path / "b"
    b.write_text("B1\n")
    quoter = FortuneQuoter([str(a), str(b)])
    quoter.load()
    assert {quoter.getQuote() for _ in range(200)} == {"A1", "A2", "B1"}


def test_fortune_quoter_pickles_file_names_not_quotes(tmp_path) -> None:
    a = tmp_path / "a"
    a.write_text("old\n")
    quoter = FortuneQuoter([str(a)])
    quoter.load()
    data = pickle.dumps(quoter)
    assert b"old" not in data
    a.write_text("new\n")
    assert pickle.loads(data).getQuote() == "new"


def test_empty_fortune_file_is_an_error_naming_it(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("%\n%\n")
    with pytest.raises(ValueError, match="empty"):
        FortuneQuoter([str(empty)]).load()


def _serve(quoter) -> StringTransport:
    factory = qotd.QOTDFactory(quoter)
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return transport


def test_protocol_sends_one_crlf_line_and_closes() -> None:
    transport = _serve(StaticQuoter("Hi there"))
    assert transport.value() == b"Hi there\r\n"
    assert transport.disconnecting


def test_multiline_quotes_use_crlf_throughout_and_utf8() -> None:
    transport = _serve(StaticQuoter("Ça va\nbien"))
    assert transport.value() == "Ça va\r\nbien\r\n".encode()


def test_live_quote_change_applies_to_the_next_connection() -> None:
    quoter = StaticQuoter("before")
    factory = qotd.QOTDFactory(quoter)
    quoter.quote = "after"
    proto = factory.buildProtocol(None)
    t = StringTransport()
    proto.makeConnection(t)
    assert t.value() == b"after\r\n"


def test_options_defaults() -> None:
    config = qotd.Options()
    config.parseOptions([])
    assert config["port"] == "8007"
    assert config["static"] == DEFAULT_QUOTE
    assert config["fortune"] == []


def test_options_fortune_is_repeatable(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("y")
    config = qotd.Options()
    config.parseOptions(["-f", str(a), "--fortune", str(b)])
    assert config["fortune"] == [str(a), str(b)]


@pytest.mark.parametrize("bad", ["notaport", "70000", "tcp:x", "bogus:1"])
def test_bad_port_is_a_usage_error_naming_the_value(bad: str) -> None:
    with pytest.raises(usage.UsageError) as info:
        qotd.Options().parseOptions(["--port", bad])
    assert bad.split(":")[-1] in str(info.value) or bad in str(info.value)


def test_missing_fortune_file_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(usage.UsageError, match="nope"):
        qotd.Options().parseOptions(["--fortune", str(tmp_path / "nope")])


def test_make_service_tcp_and_unix(tmp_path) -> None:
    config = qotd.Options()
    config.parseOptions(["--port", "tcp:8007:interface=127.0.0.1", "-s", "q"])
    service = qotd.makeService(config)
    assert isinstance(service, TCPServer)
    assert service.args[0] == 8007 and service.kwargs["interface"] == "127.0.0.1"
    assert service.args[1].quoter.getQuote() == "q"

    config = qotd.Options()
    config.parseOptions(["--port", f"unix:{tmp_path}/q.sock"])
    assert isinstance(qotd.makeService(config), UNIXServer)


def test_make_service_uses_fortunes_when_given(tmp_path) -> None:
    f = tmp_path / "f"
    f.write_text("from a file")
    config = qotd.Options()
    config.parseOptions(["-f", str(f)])
    factory = qotd.makeService(config).args[1]
    factory.startFactory()
    assert factory.quoter.getQuote() == "from a file"


def test_plugin_module_is_light() -> None:
    """Listing plugins imports this module: it must not pull in asyncio."""
    import subprocess
    import sys

    code = "import sys, tapster.plugins.qotd, tapster.plugins.echo; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
