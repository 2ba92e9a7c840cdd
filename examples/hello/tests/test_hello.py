"""Tests of the hello plugin with tapster's test doubles: no sockets, no reactor."""

import pytest

from tapster.core import usage
from tapster.core.testing import MemoryReactor, StringTransport
from tapster_hello import plugin


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
    (port, factory, backlog, interface), = service.reactor.tcpServers
    assert (port, interface, factory.name) == (9000, "127.0.0.1", "Ada")
    service.stopService()
