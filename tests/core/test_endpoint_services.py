"""Endpoint Deferreds, StreamServerEndpointService, ClientService, strports and loadApplication, on real sockets."""

from __future__ import annotations

import pickle

import pytest

from tapster.core import endpoints, internet, persist, strports
from tapster.core.defer import CancelledError, Deferred
from tapster.core.errors import CannotListenError, ConnectionRefusedError, EndpointError, TapsterError
from tapster.core.protocol import Factory, Protocol
from tapster.core.service import Application, loadApplication
from tapster.core.testing import MemoryReactor

LOCAL = "127.0.0.1"


def result_of(d):
    out = []
    d.addBoth(out.append)
    assert out, f"{d!r} has not fired"
    return out[0]


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Talker(Protocol):
    """A client protocol that records what it hears and when it is lost."""

    def connectionMade(self):
        self.factory.made.append(self)
        self.heard = b""

    def dataReceived(self, data):
        self.heard += data

    def connectionLost(self, reason):
        self.factory.lost.append(reason)


class TalkerFactory(Factory):
    protocol = Talker

    def __init__(self):
        self.made = []
        self.lost = []


def spin(reactor, predicate, timeout=5.0):
    """Run the reactor until ``predicate()`` or the deadline; unlike ``run_until`` it does not *stop* it.

    ``reactor.stop()`` shuts down (closing every port and connection), so
    connections would not survive from one wait to the next: this crashes the
    loop instead, which leaves them open.
    """
    import time

    deadline = time.monotonic() + timeout

    def check():
        if predicate() or time.monotonic() > deadline:
            reactor.crash()
        else:
            reactor.callLater(0.005, check)

    reactor.callLater(0, check)
    reactor.run(installSignalHandlers=False)
    return predicate()


def fired(d):
    """Whether ``d`` has its final result (``called`` is already true while it waits on another Deferred)."""
    return d.called and not isinstance(d.result, Deferred) and not d.paused


def _free_port(reactor):
    port = result_of(endpoints.serverFromString(reactor, f"tcp:0:interface={LOCAL}").listen(Factory.forProtocol(Echo)))
    number = port.getHost().port
    port.stopListening()
    return number


# -- endpoint Deferreds ----------------------------------------------------------------


def test_connect_fires_with_the_protocol_after_connectionMade(shared_reactor):
    port = result_of(endpoints.serverFromString(shared_reactor, f"tcp:0:interface={LOCAL}").listen(
        Factory.forProtocol(Echo)))
    try:
        factory = TalkerFactory()  # a plain Factory, not a ClientFactory, as Twisted's endpoints accept
        d = endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{port.getHost().port}").connect(factory)
        got = []
        d.addCallback(lambda p: (got.append(p), p.transport.write(b"ping"))[0])
        assert spin(shared_reactor, lambda: got and got[0].heard == b"ping")
        assert got[0] is factory.made[0]  # the factory's own protocol, no proxy
        assert "makeConnection" not in vars(got[0])  # the one-shot hook is gone
        got[0].transport.loseConnection()
        assert spin(shared_reactor, lambda: factory.lost)
    finally:
        port.stopListening()


def test_connect_refused_is_a_failed_deferred(shared_reactor):
    number = _free_port(shared_reactor)
    d = endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{number}:timeout=5").connect(TalkerFactory())
    assert spin(shared_reactor, lambda: d.called)
    assert result_of(d).check(ConnectionRefusedError)


async def _await(d):
    return await d


def test_await_endpoint_listen_and_connect_in_a_coroutine(shared_reactor):
    outcome = []

    async def main():
        port = await endpoints.serverFromString(None, f"tcp:0:interface={LOCAL}").listen(Factory.forProtocol(Echo))
        protocol = await endpoints.clientFromString(None, f"tcp:{LOCAL}:{port.getHost().port}").connect(
            TalkerFactory())
        outcome.append(protocol)
        protocol.transport.loseConnection()
        port.stopListening()

    task = shared_reactor.ensureFuture(main())
    assert spin(shared_reactor, task.done)
    task.result()
    assert isinstance(outcome[0], Talker)


def test_cancelling_connect_fails_with_cancelled(shared_reactor):
    # A TEST-NET address that never answers: the attempt is in progress when cancelled.
    d = endpoints.clientFromString(shared_reactor, "tcp:192.0.2.1:9:timeout=30").connect(TalkerFactory())
    d.cancel()
    assert result_of(d).check(CancelledError)
    spin(shared_reactor, lambda: False, timeout=0.05)  # the attempt's task sees its cancellation


def test_connect_with_a_memory_reactor():
    reactor = MemoryReactor()
    factory = TalkerFactory()
    d = endpoints.clientFromString(reactor, "tcp:example.com:80").connect(factory)
    host, port, wrapper, _timeout, _bind = reactor.tcpClients[0]
    assert (host, port) == ("example.com", 80)
    assert not d.called
    protocol = wrapper.buildProtocol(None)
    from tapster.core.testing import StringTransport

    protocol.makeConnection(StringTransport())
    assert result_of(d) is protocol and factory.made == [protocol]


# -- StreamServerEndpointService ------------------------------------------------------------


def test_stream_server_endpoint_service_listens_stops_and_restarts(shared_reactor):
    svc = internet.StreamServerEndpointService(
        endpoints.serverFromString(shared_reactor, f"tcp:0:interface={LOCAL}"), Factory.forProtocol(Echo))
    svc.setName("echo")
    assert repr(svc) == "<StreamServerEndpointService 'echo' tcp:0:interface=127.0.0.1 Factory stopped>"
    svc.privilegedStartService()
    svc.startService()
    number = svc.getHost().port
    assert repr(svc).endswith("running>")
    factory = TalkerFactory()
    d = endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{number}").connect(factory)
    assert spin(shared_reactor, lambda: d.called)
    result_of(d).transport.write(b"hello")
    assert spin(shared_reactor, lambda: factory.made[0].heard == b"hello")
    stopped = svc.stopService()
    assert isinstance(stopped, Deferred)
    # The stop drains: the open connection is closed cleanly, then the Deferred fires with None.
    assert spin(shared_reactor, lambda: fired(stopped))
    assert result_of(stopped) is None and not svc.running and factory.lost
    svc.startService()  # listens again
    try:
        assert svc.getHost().port > 0
    finally:
        done = svc.stopService()
        assert spin(shared_reactor, lambda: fired(done))


def test_stream_server_endpoint_service_raises_port_in_use_at_start(shared_reactor):
    taken = result_of(endpoints.serverFromString(shared_reactor, f"tcp:0:interface={LOCAL}").listen(Factory()))
    try:
        svc = internet.StreamServerEndpointService(
            endpoints.serverFromString(shared_reactor, f"tcp:{taken.getHost().port}:interface={LOCAL}"), Factory())
        with pytest.raises(CannotListenError, match=str(taken.getHost().port)):
            svc.privilegedStartService()
    finally:
        taken.stopListening()


def test_stream_server_endpoint_service_twisted_style_logs_instead(shared_reactor, caplog):
    taken = result_of(endpoints.serverFromString(shared_reactor, f"tcp:0:interface={LOCAL}").listen(Factory()))
    try:
        svc = internet.StreamServerEndpointService(
            endpoints.serverFromString(shared_reactor, f"tcp:{taken.getHost().port}:interface={LOCAL}"), Factory())
        svc._raiseSynchronously = False
        svc.privilegedStartService()  # Twisted's default: logged, the service runs on without its port
        assert "could not listen" in caplog.text
        assert result_of(svc.stopService()) is None
    finally:
        taken.stopListening()


@pytest.mark.parametrize("kind, name", [("pickle", "a.tap"), ("source", "a.tas"), ("xml", "a.tax")])
def test_endpoint_services_save_and_load_in_every_format(tmp_path, kind, name):
    app = Application("ep")
    svc = strports.service(f"tcp:8123:interface={LOCAL}", Factory())
    svc.setServiceParent(app)
    client = internet.ClientService(endpoints.clientFromString(None, f"tcp:{LOCAL}:8124"), Factory(),
                                    retryPolicy=internet.backoffPolicy(initialDelay=0.5, maxDelay=10))
    client.setServiceParent(app)
    persist.save(app, str(tmp_path / name), kind=kind)
    loaded = persist.load(str(tmp_path / name))
    server, cl = list(loaded)
    assert type(server) is internet.StreamServerEndpointService and type(cl) is internet.ClientService
    assert endpoints.describe(server) == "tcp:8123:interface=127.0.0.1"
    assert endpoints.describe(cl) == "tcp:host=127.0.0.1:port=8124"
    assert cl.retryPolicy.maxDelay == 10 and 0.5 * 1.5 <= cl.retryPolicy(1) <= 0.5 * 1.5 + 1
    assert loaded.ports == [server]


def test_a_running_endpoint_service_pickles_without_its_port(shared_reactor):
    svc = strports.service(f"tcp:0:interface={LOCAL}", Factory(), reactor=shared_reactor)
    svc.startService()
    try:
        copy = pickle.loads(pickle.dumps(svc))
        assert copy._waitingForPort is None and not copy.running
    finally:
        stopped = svc.stopService()
        assert spin(shared_reactor, lambda: fired(stopped))


# -- ClientService -------------------------------------------------------------------------


def test_client_service_reconnects_to_a_server_that_stops_and_comes_back(shared_reactor):
    number = _free_port(shared_reactor)
    server = internet.TCPServer(number, Factory.forProtocol(Echo), interface=LOCAL)
    server.startService()
    factory = TalkerFactory()
    attempts = []

    def policy(n):
        attempts.append(n)
        return 0.05

    client = internet.ClientService(endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{number}"),
                                    factory, retryPolicy=policy)
    first = client.whenConnected()
    client.startService()
    assert spin(shared_reactor, lambda: first.called)
    proto1 = result_of(first)
    assert isinstance(proto1, Talker) and repr(client).endswith("connected>")
    assert result_of(client.whenConnected()) is proto1  # connected: at once

    stopping = server.stopService()  # the server goes away: the connection is drained and lost
    assert spin(shared_reactor, lambda: factory.lost and (stopping is None or stopping.done()))
    assert spin(shared_reactor, lambda: len(attempts) >= 3)  # it keeps retrying, refused
    second = client.whenConnected()
    assert not second.called
    server = internet.TCPServer(number, Factory.forProtocol(Echo), interface=LOCAL)
    server.startService()
    try:
        assert spin(shared_reactor, lambda: second.called)
        proto2 = result_of(second)
        assert proto2 is not proto1 and proto2 is factory.made[-1]
        proto2.transport.write(b"again")
        assert spin(shared_reactor, lambda: proto2.heard == b"again")
        stopped = client.stopService()
        assert spin(shared_reactor, lambda: fired(stopped))
        assert result_of(stopped) is None and len(factory.lost) == 2
        assert result_of(client.whenConnected()).check(CancelledError)  # stopped: fails at once
    finally:
        stopping = server.stopService()
        spin(shared_reactor, lambda: stopping is None or stopping.done())


def test_when_connected_fail_after_failures_and_stop_while_waiting(shared_reactor):
    number = _free_port(shared_reactor)
    client = internet.ClientService(endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{number}"),
                                    TalkerFactory(), retryPolicy=lambda n: 0.02)
    client.startService()
    after_two = client.whenConnected(failAfterFailures=2)
    forever = client.whenConnected()
    assert spin(shared_reactor, lambda: after_two.called)
    assert result_of(after_two).check(ConnectionRefusedError)
    assert not forever.called
    stopped = client.stopService()
    assert spin(shared_reactor, lambda: fired(stopped))
    assert result_of(forever).check(CancelledError)


def test_prepare_connection_failure_drops_the_connection_and_retries(shared_reactor):
    server = strports.service(f"tcp:0:interface={LOCAL}", Factory.forProtocol(Echo), reactor=shared_reactor)
    server.startService()
    tries = []

    def prepare(protocol):
        tries.append(protocol)
        if len(tries) == 1:
            raise ValueError("not ready yet")
        d = Deferred()
        shared_reactor.callLater(0.01, d.callback, "ready")
        return d

    factory = TalkerFactory()
    client = internet.ClientService(
        endpoints.clientFromString(shared_reactor, f"tcp:{LOCAL}:{server.getHost().port}"), factory,
        retryPolicy=lambda n: 0.02, prepareConnection=prepare)
    connected = client.whenConnected()
    client.startService()
    try:
        assert spin(shared_reactor, lambda: connected.called)
        assert result_of(connected) is tries[1] and len(tries) == 2
        assert spin(shared_reactor, lambda: len(factory.lost) == 1)  # the first was closed
    finally:
        stops = [client.stopService(), server.stopService()]
        assert spin(shared_reactor, lambda: all(fired(d) for d in stops))


def test_backoff_policy_grows_to_its_maximum():
    policy = internet.backoffPolicy(initialDelay=1.0, maxDelay=60.0, factor=2.0, jitter=lambda: 0.0)
    assert [policy(n) for n in (0, 1, 2, 3)] == [1.0, 2.0, 4.0, 8.0]
    assert policy(10_000) == 60.0
    default = internet.backoffPolicy()
    assert 1.5 <= default(1) < 2.5


# -- strports and loadApplication -------------------------------------------------------------


def test_strports_service_and_listen(shared_reactor):
    svc = strports.service(f"tcp:0:interface={LOCAL}", Factory())
    assert isinstance(svc, internet.StreamServerEndpointService) and svc._raiseSynchronously
    port = result_of(strports.listen(f"tcp:0:interface={LOCAL}", Factory()))
    assert port.getHost().port > 0
    port.stopListening()
    with pytest.raises(EndpointError, match="tcp:http"):
        strports.service("tcp:http", Factory())


TAC = """
from tapster.core import strports
from tapster.core.protocol import Factory
from tapster.core.service import Application
application = Application("tacapp")
strports.service("tcp:0:interface=127.0.0.1", Factory()).setServiceParent(application)
"""


def test_load_application_kinds(tmp_path):
    (tmp_path / "app.tac").write_text(TAC)
    app = loadApplication(str(tmp_path / "app.tac"), "python")
    assert app.name == "tacapp" and len(list(app)) == 1
    persist.save(app, str(tmp_path / "app.tap"), kind="pickle")
    assert loadApplication(str(tmp_path / "app.tap"), "pickle").name == "tacapp"
    persist.save(app, str(tmp_path / "app.etas"), kind="source", passphrase="sekrit")
    assert loadApplication(str(tmp_path / "app.etas"), "source", passphrase="sekrit").name == "tacapp"
    (tmp_path / "bad.tac").write_text("application = 3\n")
    with pytest.raises(TapsterError, match="not an application"):
        loadApplication(str(tmp_path / "bad.tac"), "python")
    with pytest.raises(TapsterError, match="no such file"):
        loadApplication(str(tmp_path / "missing.tac"), "python")


def test_load_value_from_file(tmp_path):
    (tmp_path / "v.py").write_text("answer = 42\n")
    assert persist.loadValueFromFile(str(tmp_path / "v.py"), "answer") == 42
    with pytest.raises(TapsterError, match="defines no `question`"):
        persist.loadValueFromFile(str(tmp_path / "v.py"), "question")


def test_service_maker_names_are_those_of_plugin():
    from tapster.core import plugin, service

    assert service.IServiceMaker is plugin.IServiceMaker and service.ServiceMaker is plugin.ServiceMaker
    assert {"IServiceMaker", "ServiceMaker"} <= set(service.__all__)
