"""Tests of the hello plugin.

Most use tapster's test doubles (no sockets, no reactor). Two need the
plugin installed (``pip install .``), as mktap would find it: one saves and
loads an application in the XML format, which checks ``safeNames``; one
serves a real client on a fresh shared reactor.
"""

import asyncio

import pytest
from tapster_hello import plugin

from tapster.core import persist, usage
from tapster.core.plugin import build_application
from tapster.core.testing import MemoryReactor, StringTransport, freshReactor


def test_greets_by_name_and_hangs_up() -> None:
    protocol = plugin.GreeterFactory("tests").buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value() == b"Hello, tests!\r\n"
    assert transport.disconnecting


def test_options_defaults_and_values() -> None:
    config = plugin.Options()
    config.parseOptions(["--name", "Ada", "-p", "tcp:9000:interface=127.0.0.1"])
    assert (config["name"], config["port"]) == ("Ada", "tcp:9000:interface=127.0.0.1")
    assert plugin.Options()["port"] == "8123"


def test_empty_name_is_a_usage_error() -> None:
    with pytest.raises(usage.UsageError, match="--name"):
        plugin.Options().parseOptions(["--name", " "])


def test_make_service_listens_where_asked() -> None:
    config = plugin.Options()
    config.parseOptions(["-p", "tcp:9000:interface=127.0.0.1", "-n", "Ada"])
    service = plugin.makeService(config)
    service.reactor = MemoryReactor()  # records listenTCP instead of binding
    service.privilegedStartService()
    service.startService()
    ((port, factory, _backlog, interface),) = service.reactor.tcpServers
    assert (port, interface, factory.name) == (9000, "127.0.0.1", "Ada")
    service.stopService()


def test_xml_round_trip(tmp_path) -> None:
    # What `mktap -t xml hello ...` then `twistd -f hello.tax` do: XML refuses any class that
    # its owner did not declare safe, so this fails if safeNames misses a saved class.
    app = build_application("hello", ["--name", "Ada", "--port", "tcp:9000:interface=127.0.0.1"])
    path = persist.save(app, str(tmp_path / "hello.tax"))
    loaded = persist.load(path)
    port, factory = loaded.getServiceNamed("hello").args
    assert port == 9000
    assert isinstance(factory, plugin.GreeterFactory) and factory.name == "Ada"


def test_serves_a_real_client_on_a_fresh_reactor() -> None:
    config = plugin.Options()
    config.parseOptions(["-p", "tcp:0:interface=127.0.0.1", "-n", "Ada"])
    with freshReactor() as reactor:  # a new shared reactor for this test only
        service = plugin.makeService(config)
        service.privilegedStartService()  # binds now, as twistd does
        service.startService()
        port = service.getHost().port

        async def client() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await reader.read()  # everything, until the server hangs up
            finally:
                writer.close()

        try:
            greeting = reactor.loop.run_until_complete(asyncio.wait_for(client(), timeout=5))
        finally:
            stopping = service.stopService()
            if stopping is not None:
                reactor.loop.run_until_complete(stopping)
    assert greeting == b"Hello, Ada!\r\n"
