"""The services of tapster.core.internet on the real reactor (both loops), TimerService and LoopingCall.

Network services get a fresh reactor through ``service.reactor`` (the harness
of test_reactor.py), so the shared reactor is never touched. Time-based tests
use :class:`tapster.core.testing.Clock` where they can and the real reactor, with a
deadline, where an awaitable is involved.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import gc
import ipaddress
import logging
import os
import pickle
import socket
import ssl
import stat

import pytest

from tapster.core.errors import CannotListenError, ConnectError, ConnectionDone
from tapster.core.internet import (
    MulticastServer,
    SSLClient,
    SSLServer,
    TCPClient,
    TCPServer,
    TimerService,
    UDPServer,
    UNIXClient,
    UNIXDatagramClient,
    UNIXDatagramServer,
    UNIXServer,
)
from tapster.core.service import Application, MultiService
from tapster.core.task import LoopingCall
from tests.core.test_reactor import (  # the shared harness: one fresh reactor per test
    LOCAL,
    Echo,
    Env,
    Rec,
    RecFactory,
    UDPEcho,
    UDPRec,
    _unresponsive_listener,
    drain,
    env,  # noqa: F401 - a fixture: a fresh reactor per test, on asyncio and on uvloop
    sockdir,  # noqa: F401 - a fixture
)


@pytest.fixture
def clock():
    return pytest.importorskip("tapster.core.testing").Clock()


def started(svc, env: Env):
    """Attach ``svc`` to the test's reactor, start both phases, stop it at teardown."""
    svc.reactor = env.reactor
    svc.privilegedStartService()
    svc.startService()
    env.defer(lambda: svc.running and svc.stopService())
    return svc


def refuses(number: int) -> bool:
    probe = socket.socket()
    probe.settimeout(2)
    try:
        probe.connect((LOCAL, number))
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
    finally:
        probe.close()
    return False


# -- TCPServer -------------------------------------------------------------------


def test_tcp_server_binds_in_privileged_start(env):
    f = env.factory(Echo)
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.privilegedStartService()
    env.defer(svc.stopService)
    assert not svc.running
    port = svc._port
    host = svc.getHost()
    assert host.host == LOCAL and host.port > 0
    raw = env.raw_client(host.port)
    svc.startService()
    assert svc.running
    assert svc._port is port  # startService does not bind a second time
    assert svc.getHost() == host
    raw.sendall(b"hi")
    got = bytearray()
    env.spin(lambda: (drain(raw, got), got == b"hi")[1], what="the echo")


def test_tcp_server_binds_in_start_without_privileged_phase(env):
    f = env.factory()
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.startService()
    env.defer(svc.stopService)
    assert svc.getHost().port > 0
    assert f.events == ["start"]


def test_tcp_server_port_in_use_raises_from_privileged_start(env):
    blocker = env.socket()
    blocker.bind((LOCAL, 0))
    blocker.listen(1)
    taken = blocker.getsockname()[1]
    svc = TCPServer(taken, env.factory(), interface=LOCAL)
    svc.reactor = env.reactor
    with pytest.raises(CannotListenError) as info:
        svc.privilegedStartService()
    assert f"{LOCAL}:{taken}" in str(info.value)
    assert "in use" in str(info.value)
    assert svc._port is None
    with pytest.raises(RuntimeError):
        svc.getHost()


def test_tcp_server_stop_closes_the_port(env):
    f = env.factory()
    svc = started(TCPServer(0, f, interface=LOCAL), env)
    number = svc.getHost().port
    assert svc.stopService() is None
    assert not svc.running
    assert svc._port is None
    assert f.events == ["start", "stop"]
    with pytest.raises(RuntimeError):
        svc.getHost()
    env.spin(lambda: refuses(number), what="the port to close")
    assert svc.stopService() is None  # stopping again is harmless


def test_tcp_server_can_restart_after_stop(env):
    f = env.factory()
    svc = started(TCPServer(0, f, interface=LOCAL), env)
    svc.stopService()
    svc.privilegedStartService()
    svc.startService()
    assert svc.getHost().port > 0
    assert f.events == ["start", "stop", "start"]


def test_tcp_server_pickles_without_its_port(env):
    from tapster.core.protocol import Factory

    svc = TCPServer(0, Factory.forProtocol(Echo), 10, LOCAL)
    svc.setName("web")
    started(svc, env)
    data = pickle.dumps(svc)
    loaded = pickle.loads(data)
    assert "_port" not in loaded.__dict__
    assert loaded._port is None
    assert "running" not in loaded.__dict__
    assert loaded.args[0] == 0 and loaded.args[2:] == (10, LOCAL)
    assert loaded.args[1].protocol is Echo
    assert loaded.name == "web"
    assert svc._port is not None  # the live service keeps its port


def test_tcp_server_pickles_without_an_explicit_reactor(env):
    svc = started(TCPServer(0, env.factory(), interface=LOCAL), env)
    svc.args[1].protocols.clear()
    loaded = pickle.loads(pickle.dumps(svc))
    assert loaded.reactor is None  # a loaded application uses the shared reactor


def test_tcp_server_in_application_starts_with_the_tree(env):
    app = Application("tree")
    f = env.factory()
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.setServiceParent(app)
    app.privilegedStartService()
    assert svc._port is not None and f.events == ["start"]
    app.startService()
    assert f.events == ["start"]
    assert app.stopService() is None
    assert f.events == ["start", "stop"]


# -- TCPClient -------------------------------------------------------------------


def test_tcp_client_connects_on_start_and_disconnects_on_stop(env):
    server = env.factory()
    port = env.tcp_server(server)
    client = env.factory()
    svc = TCPClient(LOCAL, port.getHost().port, client)
    svc.reactor = env.reactor
    svc.privilegedStartService()
    assert client.events == []  # nothing happens in the privileged phase
    svc.startService()
    env.spin(lambda: server.protocols and client.protocols, what="the connection")
    assert svc._connection.state == "connected"
    assert svc.stopService() is None
    assert not svc.running
    env.spin(lambda: server.protocols[0].reason is not None and client.outcome("lost"), what="the disconnect")
    assert server.protocols[0].reason.check(ConnectionDone)
    assert svc._connection is None


def test_tcp_client_stop_while_connecting_abandons_the_attempt(env):
    number = _unresponsive_listener(env)
    client = env.factory()
    svc = TCPClient(LOCAL, number, client)
    svc.reactor = env.reactor
    svc.startService()
    env.iterate()
    if client.protocols:
        pytest.skip("this kernel accepted a connection beyond the backlog")
    svc.stopService()
    env.spin(lambda: client.outcome("failed"), what="clientConnectionFailed")
    assert client.outcome("failed").check(ConnectError)


def test_tcp_client_stop_after_failure_is_harmless(env):
    closed = env.socket()
    closed.bind((LOCAL, 0))
    client = env.factory()
    svc = TCPClient(LOCAL, closed.getsockname()[1], client)
    svc.reactor = env.reactor
    svc.startService()
    env.spin(lambda: client.outcome("failed"))
    assert svc.stopService() is None


def test_tcp_client_pickles_without_its_connection(env):
    server = env.factory()
    port = env.tcp_server(server)
    svc = TCPClient(LOCAL, port.getHost().port, ClientFactoryForPickle(), timeout=5)
    started(svc, env)
    env.spin(lambda: server.protocols)
    loaded = pickle.loads(pickle.dumps(svc))
    assert "_connection" not in loaded.__dict__
    assert loaded.args[:2] == (LOCAL, port.getHost().port)
    assert loaded.kwargs == {"timeout": 5}
    assert not loaded.running


class ClientFactoryForPickle(RecFactory):
    """A picklable client factory: protocols are not part of its saved state."""

    def __getstate__(self):
        state = super().__getstate__()
        state["protocols"] = []
        return state


# -- UNIX ------------------------------------------------------------------------


def test_unix_server_and_client(env, sockdir):
    path = os.path.join(sockdir, "svc.sock")
    server = env.factory(Echo)
    ssvc = UNIXServer(path, server, mode=0o600)
    ssvc.reactor = env.reactor
    ssvc.privilegedStartService()
    env.defer(ssvc.stopService)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ssvc.startService()

    class Hello(Rec):
        def connectionMade(self):
            super().connectionMade()
            self.transport.write(b"unix hello")

    client = env.factory(Hello)
    csvc = started(UNIXClient(path, client), env)
    env.spin(lambda: client.protocols and client.protocols[0].received == b"unix hello", what="the echo")
    csvc.stopService()
    env.spin(lambda: server.protocols[0].reason is not None)
    ssvc.stopService()
    assert not os.path.exists(path)
    assert server.events == ["start", "stop"]


def test_unix_server_refuses_a_live_socket(env, sockdir):
    path = os.path.join(sockdir, "busy.sock")
    live = env.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    svc = UNIXServer(path, env.factory())
    svc.reactor = env.reactor
    with pytest.raises(CannotListenError, match=r"busy.sock"):
        svc.privilegedStartService()


# -- datagrams -------------------------------------------------------------------


def test_udp_server_round_trip_and_stop(env):
    proto = UDPEcho()
    svc = UDPServer(0, proto, interface=LOCAL)
    svc.reactor = env.reactor
    svc.privilegedStartService()
    env.defer(svc.stopService)
    assert proto.started == 1
    svc.startService()
    number = svc.getHost().port
    client = UDPRec()
    cport = env.reactor.listenUDP(0, client, interface=LOCAL)
    env.defer(cport.stopListening)
    client.transport.write(b"udp", (LOCAL, number))
    env.spin(lambda: client.got, what="the echoed datagram")
    assert client.got == [(b"udp", (LOCAL, number))]
    svc.stopService()
    assert proto.stopped == 1
    assert proto.transport is None


def test_udp_server_pickles_without_its_port(env):
    svc = started(UDPServer(0, UDPEcho(), interface=LOCAL), env)
    loaded = pickle.loads(pickle.dumps(svc))
    assert "_port" not in loaded.__dict__
    assert isinstance(loaded.args[1], UDPEcho)
    assert loaded.args[1].transport is None


def test_unix_datagram_server_and_client(env, sockdir):
    spath = os.path.join(sockdir, "s.dgram")
    cpath = os.path.join(sockdir, "c.dgram")
    sproto, cproto = UDPEcho(), UDPRec()
    started(UNIXDatagramServer(spath, sproto), env)
    csvc = started(UNIXDatagramClient(spath, cproto, bindAddress=cpath), env)
    cproto.transport.write(b"dgram")
    env.spin(lambda: cproto.got, what="the echoed datagram")
    assert cproto.got[0][0] == b"dgram"
    csvc.stopService()
    assert cproto.stopped == 1
    assert not os.path.exists(cpath)


def test_multicast_server_binds_and_stops(env):
    proto = UDPRec()
    svc = started(MulticastServer(0, proto, interface=LOCAL), env)
    assert svc.getHost().port > 0
    assert proto.started == 1
    svc.stopService()
    assert proto.stopped == 1


# -- SSL -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with cryptography."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOCAL)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOCAL))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    certfile, keyfile = d / "cert.pem", d / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)


def test_ssl_server_and_client_round_trip(env, tls_files):
    certfile, keyfile = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certfile, keyfile)
    client_ctx = ssl.create_default_context(cafile=certfile)

    server = env.factory(Echo)
    ssvc = started(SSLServer(0, server, server_ctx, interface=LOCAL), env)

    class Hello(Rec):
        def connectionMade(self):
            super().connectionMade()
            self.transport.write(b"secret")

    client = env.factory(Hello)
    csvc = started(SSLClient(LOCAL, ssvc.getHost().port, client, client_ctx), env)
    env.spin(lambda: client.protocols and client.protocols[0].received == b"secret", what="the TLS echo")
    assert ssvc.getHost().type == "TCP"
    csvc.stopService()
    env.spin(lambda: server.protocols[0].reason is not None, what="the TLS close")
    ssvc.stopService()
    assert server.events == ["start", "stop"]


def test_ssl_client_rejects_an_untrusted_server(env, tls_files):
    certfile, keyfile = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certfile, keyfile)
    ssvc = started(SSLServer(0, env.factory(), server_ctx, interface=LOCAL), env)
    client = env.factory()
    started(SSLClient(LOCAL, ssvc.getHost().port, client, ssl.create_default_context()), env)
    env.spin(lambda: client.outcome("failed"), what="the verification failure")
    assert client.outcome("failed").check(ConnectError)
    assert client.protocols == []


# -- TimerService ----------------------------------------------------------------


calls: list = []


def record_call(*args, **kwargs) -> None:
    """Module level so that a TimerService holding it pickles."""
    calls.append((args, kwargs))


def test_timer_service_calls_at_start_and_every_step(clock):
    seen = []
    svc = TimerService(5, seen.append, "tick")
    svc.clock = clock
    svc.startService()
    assert seen == ["tick"]  # first call at start
    clock.advance(4.9)
    assert seen == ["tick"]
    clock.advance(0.1)
    assert seen == ["tick", "tick"]
    clock.advance(5)
    assert len(seen) == 3
    assert svc.stopService() is None
    assert not svc.running
    clock.advance(50)
    assert len(seen) == 3
    assert clock.getDelayedCalls() == []


def test_timer_service_in_a_tree(clock):
    seen = []
    app = MultiService()
    svc = TimerService(1, seen.append, 1)
    svc.clock = clock
    svc.setServiceParent(app)
    app.privilegedStartService()
    assert seen == []
    app.startService()
    assert seen == [1]
    app.stopService()
    clock.advance(10)
    assert seen == [1]


def test_timer_service_stops_looping_when_the_callable_raises(clock, caplog):
    def broken():
        raise RuntimeError("timer failed")

    svc = TimerService(1, broken)
    svc.clock = clock
    with caplog.at_level(logging.ERROR, logger="tapster.task"):
        svc.startService()
    assert "timer failed" in caplog.text
    assert clock.getDelayedCalls() == []
    assert svc.stopService() is None  # stopping a loop that already ended is fine


def test_timer_service_pickles_its_call_but_not_its_loop(clock):
    svc = TimerService(2, record_call, 1, key="v")
    svc.clock = clock
    svc.startService()
    loaded = pickle.loads(pickle.dumps(svc))
    assert "_loop" not in loaded.__dict__
    assert "_loopFinished" not in loaded.__dict__
    assert "clock" not in loaded.__dict__
    assert loaded.step == 2
    assert loaded.call == (record_call, (1,), {"key": "v"})
    assert not loaded.running
    svc.stopService()


def test_timer_service_on_the_real_reactor(env):
    r = env.reactor
    seen = []
    svc = TimerService(0.01, lambda: seen.append(r.seconds()))
    svc.clock = r
    svc.startService()
    env.spin(lambda: len(seen) >= 3, what="three timer calls")
    svc.stopService()
    count = len(seen)
    assert seen == sorted(seen)
    assert seen[2] - seen[0] >= 0.015  # spaced by the step, not run back to back
    env.iterate(20)
    assert len(seen) == count
    assert svc._loopFinished.done()


def test_timer_service_failure_does_not_leave_an_unretrieved_future(env, caplog):
    svc = TimerService(1, lambda: 1 / 0)
    svc.clock = env.reactor
    with caplog.at_level(logging.ERROR):
        svc.startService()
        env.iterate()
        del svc
        gc.collect()
    assert "never retrieved" not in caplog.text
    assert "ZeroDivisionError" in caplog.text  # logged once, by the LoopingCall


# -- LoopingCall -----------------------------------------------------------------


def test_looping_call_runs_now_and_every_interval(clock):
    seen = []
    lc = LoopingCall(seen.append, "x")
    lc.clock = clock
    assert lc.start(1.0) is None  # no loop behind the test clock: nothing to await
    assert lc.running
    assert seen == ["x"]
    clock.pump([1, 1, 1])
    assert seen == ["x"] * 4
    lc.stop()
    assert not lc.running
    clock.advance(10)
    assert len(seen) == 4


def test_looping_call_not_now_waits_one_interval(clock):
    seen = []
    lc = LoopingCall(seen.append, 1)
    lc.clock = clock
    lc.start(2, now=False)
    assert seen == []
    clock.advance(1.9)
    assert seen == []
    clock.advance(0.1)
    assert seen == [1]
    lc.stop()


def test_looping_call_skips_missed_intervals_and_stays_aligned(clock):
    times = []
    lc = LoopingCall(lambda: times.append(clock.seconds()))
    lc.clock = clock
    lc.start(1.0)
    clock.advance(3.5)  # three intervals pass at once: one call, not three
    assert times == [0.0, 3.5]
    clock.advance(0.5)  # back on the grid started at 0
    assert times == [0.0, 3.5, 4.0]
    clock.advance(1)
    assert times == [0.0, 3.5, 4.0, 5.0]
    lc.stop()


def test_looping_call_timer_firing_early_does_not_run_the_slot_twice(clock):
    seen = []
    lc = LoopingCall(lambda: seen.append(clock.seconds()))
    lc.clock = clock
    lc.start(1)
    # uvloop's clock counts milliseconds: a timer can fire a hair before its time.
    pending = clock.getDelayedCalls()[0]
    clock.calls.remove(pending)
    clock.rightNow = 0.9995
    pending._run()
    assert len(seen) == 2
    assert [c.getTime() for c in clock.getDelayedCalls()] == [2.0]
    lc.stop()


def test_looping_call_reset_restarts_the_interval(clock):
    times = []
    lc = LoopingCall(lambda: times.append(clock.seconds()))
    lc.clock = clock
    lc.start(2)
    clock.advance(1.5)
    lc.reset()
    clock.advance(1.5)  # t=3: the old schedule would have run at 2
    assert times == [0.0]
    clock.advance(0.5)  # t=3.5 = reset time + interval
    assert times == [0.0, 3.5]
    lc.stop()


def test_looping_call_misuse_raises(clock):
    lc = LoopingCall(lambda: None)
    lc.clock = clock
    with pytest.raises(RuntimeError):
        lc.stop()
    with pytest.raises(RuntimeError):
        lc.reset()
    with pytest.raises(ValueError):
        lc.start(-1)
    lc.start(1)
    with pytest.raises(RuntimeError):
        lc.start(1)
    lc.stop()
    with pytest.raises(RuntimeError):
        lc.stop()


def test_looping_call_can_be_stopped_from_inside(clock):
    seen = []

    def f():
        seen.append(clock.seconds())
        if len(seen) == 3:
            lc.stop()

    lc = LoopingCall(f)
    lc.clock = clock
    lc.start(1)
    clock.pump([1] * 10)
    assert seen == [0.0, 1.0, 2.0]
    assert not lc.running
    assert clock.getDelayedCalls() == []


def test_looping_call_can_restart_after_stop(clock):
    seen = []
    lc = LoopingCall(seen.append, 1)
    lc.clock = clock
    lc.start(1)
    lc.stop()
    lc.start(1)
    assert seen == [1, 1]
    lc.stop()


def test_looping_call_exception_stops_the_loop(clock, caplog):
    count = []

    def f():
        count.append(1)
        if len(count) == 2:
            raise ValueError("second call fails")

    lc = LoopingCall(f)
    lc.clock = clock
    with caplog.at_level(logging.ERROR, logger="tapster.task"):
        lc.start(1)
        clock.pump([1, 1, 1])
    assert len(count) == 2
    assert not lc.running
    assert clock.getDelayedCalls() == []
    assert "second call fails" in caplog.text


def test_looping_call_zero_interval_runs_every_turn(clock):
    seen = []

    def f():
        seen.append(1)
        if len(seen) == 5:
            lc.stop()

    lc = LoopingCall(f)
    lc.clock = clock
    lc.start(0)
    clock.advance(0)
    while clock.getDelayedCalls():
        clock.advance(0)
    assert len(seen) == 5


def test_looping_call_future_completes_with_the_call_on_stop(env):
    r = env.reactor
    lc = LoopingCall(lambda: None)
    lc.clock = r
    done = lc.start(0.01)
    env.iterate()
    assert not done.done()
    lc.stop()
    env.spin(done.done)
    assert done.result() is lc


def test_looping_call_future_carries_the_exception(env):
    def broken():
        raise KeyError("lost")

    lc = LoopingCall(broken)
    lc.clock = env.reactor
    done = lc.start(1)
    env.spin(done.done)
    with pytest.raises(KeyError):
        done.result()


def test_looping_call_waits_for_an_awaitable_result(env):
    r = env.reactor
    events = []

    async def slow():
        events.append(("begin", r.seconds()))
        await asyncio.sleep(0.03)
        events.append(("end", r.seconds()))

    lc = LoopingCall(slow)
    lc.clock = r
    done = lc.start(0.001)
    env.spin(lambda: len(events) >= 4, what="two runs")
    lc.stop()
    assert [e[0] for e in events[:4]] == ["begin", "end", "begin", "end"]
    assert events[2][1] >= events[1][1]  # the second run began after the first ended
    env.spin(done.done)


def test_looping_call_failing_awaitable_stops_the_loop(env):
    async def broken():
        raise OSError("async failure")

    lc = LoopingCall(broken)
    lc.clock = env.reactor
    done = lc.start(0.01)
    env.spin(done.done)
    assert not lc.running
    with pytest.raises(OSError):
        done.result()


def test_looping_call_pickles_without_clock_or_schedule(clock):
    lc = LoopingCall(record_call, 1, k=2)
    lc.clock = clock
    lc.start(3)
    loaded = pickle.loads(pickle.dumps(lc))
    assert loaded.f is record_call
    assert loaded.a == (1,) and loaded.kw == {"k": 2}
    assert not loaded.running
    assert loaded.call is None and loaded.clock is None
    lc.stop()


def test_a_services_repr_says_what_it_is() -> None:
    """Seed 004: a listing of application.services in the console tells which entry is which."""
    from tapster.core import internet, protocol
    from tapster.core.testing import MemoryReactor

    factory = protocol.ServerFactory()
    server = internet.TCPServer(8007, factory, interface="127.0.0.1")
    server.setName("qotd")
    assert repr(server) == "<TCPServer 'qotd' tcp:8007:interface=127.0.0.1 ServerFactory stopped>"
    assert server.factory is factory
    server.reactor = MemoryReactor()
    server.startService()
    assert repr(server).endswith("ServerFactory running>")
    server.stopService()
    client = internet.TCPClient("127.0.0.1", 80, protocol.ClientFactory())
    assert repr(client) == "<TCPClient tcp:host=127.0.0.1:port=80 ClientFactory stopped>"
    server.factory = "its own"  # a subclass or ported code may set its own: it wins
    assert server.factory == "its own"
