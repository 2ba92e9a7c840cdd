"""tapster.core.endpoints: description strings parsed, described, turned into services and endpoints."""

from __future__ import annotations

import os
import pickle
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tapster.core import endpoints, internet
from tapster.core.endpoints import EndpointError, describe, parse
from tapster.core.errors import TapsterError
from tapster.core.protocol import Factory, Protocol
from tapster.core.ssl import DefaultOpenSSLContextFactory
from tests.core._clients import CollectingFactory, Collector

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_are_exported():
    for name in endpoints.__all__:
        assert hasattr(endpoints, name), name
    assert {"parse", "service", "describe", "serverFromString", "clientFromString", "EndpointError"} <= set(
        endpoints.__all__
    )
    assert issubclass(EndpointError, ValueError) and issubclass(EndpointError, TapsterError)


def test_importing_is_cheap():
    code = (
        "import sys, tapster.core.endpoints; "
        "print(sorted(m for m in ('asyncio', 'ssl', 'tapster.core.internet') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- parse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description, expected",
    [
        ("tcp:8007", ("tcp", (8007,), {"interface": "", "backlog": 50})),
        ("8007", ("tcp", (8007,), {"interface": "", "backlog": 50})),
        (8007, ("tcp", (8007,), {"interface": "", "backlog": 50})),
        ("8007:interface=127.0.0.1", ("tcp", (8007,), {"interface": "127.0.0.1", "backlog": 50})),
        ("TCP:port=80:backlog=5:interface=127.0.0.1", ("tcp", (80,), {"interface": "127.0.0.1", "backlog": 5})),
        ("tcp:80:127.0.0.1:7", ("tcp", (80,), {"interface": "127.0.0.1", "backlog": 7})),
        ("tcp6:8007", ("tcp6", (8007,), {"interface": "::", "backlog": 50})),
        (r"tcp6:8007:interface=\:\:1", ("tcp6", (8007,), {"interface": "::1", "backlog": 50})),
        ("unix:/run/x.sock", ("unix", ("/run/x.sock",), {"mode": 0o666, "backlog": 50, "wantPID": True})),
        ("unix:address=/a:mode=660:lockfile=0", ("unix", ("/a",), {"mode": 0o660, "backlog": 50, "wantPID": False})),
        ("unix:path=/a:mode=0o600:backlog=3", ("unix", ("/a",), {"mode": 0o600, "backlog": 3, "wantPID": True})),
        ("unix:/a:0640", ("unix", ("/a",), {"mode": 0o640, "backlog": 50, "wantPID": True})),
        (
            "ssl:443:privateKey=k.pem",
            (
                "ssl",
                (443,),
                {"privateKey": "k.pem", "certKey": "k.pem", "sslmethod": None, "interface": "", "backlog": 50},
            ),
        ),
        (
            "ssl:443:privateKey=k.pem:certKey=c.pem:interface=127.0.0.1:backlog=9:sslmethod=TLSv1_3_METHOD",
            (
                "ssl",
                (443,),
                {
                    "privateKey": "k.pem",
                    "certKey": "c.pem",
                    "sslmethod": "TLSv1_3_METHOD",
                    "interface": "127.0.0.1",
                    "backlog": 9,
                },
            ),
        ),
    ],
)
def test_parse_fills_defaults(description, expected):
    assert parse(description) == expected


@pytest.mark.parametrize(
    "description, field",
    [
        (r"unix:/tmp/a\:b", "/tmp/a:b"),
        (r"unix:/tmp/a\=b", "/tmp/a=b"),
        (r"unix:/tmp/a\\b", "/tmp/a\\b"),
        (r"unix:path=C\:\\x\=y", "C:\\x=y"),
        ("unix:path=/tmp/a=b", "/tmp/a=b"),  # only the first '=' separates
    ],
)
def test_backslash_escapes(description, field):
    assert parse(description)[1] == (field,)


def test_escaped_colon_in_a_keyword_value():
    assert parse(r"ssl:443:privateKey=C\:/key.pem:certKey=C\:/cert.pem")[2]["certKey"] == "C:/cert.pem"


def test_default_kind_applies_to_descriptions_without_one():
    assert parse("/tmp/s.sock", default="unix")[:2] == ("unix", ("/tmp/s.sock",))
    with pytest.raises(EndpointError, match="unknown type '8007'"):
        parse("8007", default=None)


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8007",
        "tcp:8007:interface=127.0.0.1:backlog=10",
        r"tcp6:80:interface=\:\:1",
        "tcp6:80",
        "unix:/run/app.sock",
        "unix:/run/app.sock:mode=600:backlog=5:lockfile=0",
        r"unix:/odd\:name\=x\\y",
        "ssl:443:privateKey=k.pem",
        "ssl:443:privateKey=k.pem:certKey=c.pem:sslmethod=TLSv1_2_METHOD:interface=127.0.0.1",
    ],
)
def test_describe_round_trips_normal_forms(description):
    assert describe(description) == description
    assert describe(parse(description)) == description
    assert parse(describe(description)) == parse(description)


@pytest.mark.parametrize(
    "description, normal",
    [
        ("8007", "tcp:8007"),
        ("TCP:port=8007:backlog=50:interface=", "tcp:8007"),
        ("unix:path=/a:mode=0o666:lockfile=1", "unix:/a"),
        ("ssl:443:privateKey=k:certKey=k", "ssl:443:privateKey=k"),
        ("tcp6:80:interface=\\:\\:", "tcp6:80"),
    ],
)
def test_describe_normalises(description, normal):
    assert describe(description) == normal


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description, words",
    [
        ("", ["empty", "tcp:8007"]),
        ("   ", ["empty"]),
        ("tpc:80", ["unknown type 'tpc'", "did you mean tcp?", "tcp, tcp6, unix, ssl"]),
        ("ftp:21", ["unknown type 'ftp'", "tcp, tcp6, unix, ssl"]),
        ("127.0.0.1:8007", ["tcp:8007:interface=127.0.0.1"]),
        ("port=80", ["does not start with a type", "tcp:8007"]),
        ("tcp:http", ["port 'http' is not an integer", "0 to 65535"]),
        ("http", ["port 'http' is not an integer"]),
        ("tcp:80.5", ["port '80.5' is not an integer"]),
        ("tcp:70000", ["port 70000 is out of range", "0 to 65535"]),
        ("-1", ["port '-1' is not an integer"]),
        ("tcp:", ["missing port", "tcp:8007"]),
        ("tcp:interface=127.0.0.1", ["missing port"]),
        (
            "tcp:80:iface=lo",
            ["unknown keyword 'iface' for tcp", "did you mean interface=?", "known: port, interface, backlog"],
        ),
        ("unix:/a:modes=600", ["unknown keyword 'modes' for unix", "mode"]),
        ("tcp:80:port=81", ["port is given twice"]),
        ("tcp:80:interface=a:interface=b", ["interface= is given twice"]),
        ("tcp:80:127.0.0.1:5:extra", ["unexpected extra field 'extra'", "name=value"]),
        ("tcp:80:backlog=many", ["backlog 'many'", "backlog=50"]),
        ("tcp6:80:interface=127.0.0.1", ["not an IPv6 address", "use tcp: for IPv4"]),
        ("unix:", ["missing socket path", "unix:/run/app.sock"]),
        ("unix:/a:mode=999", ["mode '999' is not an octal file mode", "mode=660"]),
        ("unix:/a:mode=rw", ["mode 'rw'"]),
        ("unix:/a:mode=17777", ["mode '17777'"]),
        ("unix:/a:mode=", ["mode ''"]),
        ("unix:/a:lockfile=yes", ["lockfile 'yes' must be 0 or 1"]),
        ("ssl:443", ["missing privateKey=", "ssl:8443:privateKey=server.key:certKey=server.crt"]),
        ("ssl:443:certKey=c.pem", ["missing privateKey="]),
        ("ssl:privateKey=k.pem", ["missing port"]),
        ("ssl:443:privateKey=k:extraCertChain=chain.pem", ["extraCertChain= is not supported", "certKey file"]),
        ("ssl:443:privateKey=k:dhParameters=dh.pem", ["dhParameters= is not supported"]),
        ("ssl:443:privateKey=k:sslmethod=SSLv3_METHOD", ["SSLv3_METHOD is not supported", "TLSv1_2_METHOD"]),
        ("ssl:443:privateKey=k:sslmethod=nope", ["unknown sslmethod 'nope'"]),
        ("tcp:80\\", ["lone backslash"]),
    ],
)
def test_bad_descriptions_say_what_and_how_to_fix(description, words):
    with pytest.raises(EndpointError) as info:
        parse(description)
    message = str(info.value)
    assert message.startswith(f"bad endpoint {description.strip()!r}: ")
    for word in words:
        assert word in message, (word, message)
    assert info.value.description == description.strip()


def test_error_is_a_value_error_for_option_coercion():
    with pytest.raises(ValueError):
        parse("tcp:nope")


def test_non_string_description_is_a_type_error():
    with pytest.raises(TypeError, match="tcp:8007"):
        parse(None)  # type: ignore[arg-type]
    with pytest.raises(EndpointError):
        parse(True)  # type: ignore[arg-type]


def test_bytes_descriptions_are_accepted():
    assert parse(b"tcp:8007")[:2] == ("tcp", (8007,))


# -- service -----------------------------------------------------------------------------


def _factory():
    return Factory.forProtocol(Protocol)


def test_tcp_service_gets_the_parsed_arguments():
    f = _factory()
    svc = endpoints.service("tcp:8007:interface=127.0.0.1:backlog=7", f)
    assert type(svc) is internet.TCPServer
    assert svc.args == (8007, f)
    assert svc.kwargs == {"backlog": 7, "interface": "127.0.0.1"}
    assert not svc.running


def test_tcp6_service_is_a_tcp_server_on_an_ipv6_interface():
    svc = endpoints.service("tcp6:8007", _factory())
    assert type(svc) is internet.TCPServer
    assert svc.kwargs["interface"] == "::"
    assert describe(svc) == "tcp6:8007"


def test_unix_service_gets_mode_and_lockfile():
    svc = endpoints.service("unix:/run/a.sock:mode=600:lockfile=0", _factory())
    assert type(svc) is internet.UNIXServer
    assert svc.args[0] == "/run/a.sock"
    assert svc.kwargs == {"backlog": 50, "mode": 0o600, "wantPID": False}


def test_ssl_service_holds_a_picklable_context_factory():
    svc = endpoints.service("ssl:443:privateKey=k.pem:certKey=c.pem", _factory())
    assert type(svc) is internet.SSLServer
    port, _, cf = svc.args
    assert port == 443
    assert isinstance(cf, DefaultOpenSSLContextFactory)
    assert (cf.privateKeyFileName, cf.certificateFileName) == ("k.pem", "c.pem")


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8007:interface=127.0.0.1",
        r"tcp6:80:interface=\:\:1",
        "unix:/run/a.sock:mode=600",
        "ssl:443:privateKey=k.pem",
    ],
)
def test_services_pickle_and_describe_the_same_after(description):
    svc = endpoints.service(description, _factory())
    copy = pickle.loads(pickle.dumps(svc))
    assert type(copy) is type(svc)
    assert describe(copy) == describe(svc) == describe(description)


def test_service_accepts_what_parse_returned():
    svc = endpoints.service(parse("tcp:9000"), _factory())
    assert svc.args[0] == 9000


def test_service_takes_a_reactor():
    marker = object()
    assert endpoints.service("tcp:1", _factory(), reactor=marker).reactor is marker


def test_describe_services_built_by_hand():
    f = _factory()
    assert describe(internet.TCPServer(8007, f)) == "tcp:8007"
    assert describe(internet.TCPServer(8007, f, 10, "127.0.0.1")) == "tcp:8007:interface=127.0.0.1:backlog=10"
    assert describe(internet.TCPServer(8007, f, interface="::1")) == r"tcp6:8007:interface=\:\:1"
    assert describe(internet.UNIXServer("/s", f)) == "unix:/s:lockfile=0"
    assert describe(internet.UNIXServer("/s", f, 50, 0o600, True)) == "unix:/s:mode=600"
    cf = DefaultOpenSSLContextFactory("k.pem", "c.pem")
    assert describe(internet.SSLServer(443, f, cf)) == "ssl:443:privateKey=k.pem:certKey=c.pem"
    assert describe(internet.TCPClient("example.com", 80, f)) == "tcp:host=example.com:port=80"
    assert describe(internet.TCPClient("h", 80, f, timeout=5, bindAddress=("10.0.0.1", 0))) == (
        "tcp:host=h:port=80:timeout=5:bindAddress=10.0.0.1"
    )
    assert describe(internet.UNIXClient("/s", f, checkPID=True)) == "unix:path=/s:lockfile=1"


def test_describe_refuses_services_without_endpoint_strings():
    with pytest.raises(TypeError, match="cannot describe TimerService"):
        describe(internet.TimerService(1, print))


# -- services and endpoints on real sockets -------------------------------------------------


class Greeter(Protocol):
    def connectionMade(self):
        self.transport.write(b"hello from " + self.factory.name + b"\r\n")
        self.transport.loseConnection()


def _greeter(name=b"endpoint"):
    f = Factory.forProtocol(Greeter)
    f.name = name
    return f


class _Fetch:
    """A blocking stdlib client in a thread: connect, read to EOF."""

    def __init__(self, connect):
        self.data = b""
        self.error = None
        self.done = False
        self._connect = connect
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with self._connect() as sock:
                sock.settimeout(5)
                while chunk := sock.recv(4096):
                    self.data += chunk
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.done = True


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_service_listens_and_serves(shared_reactor, run_until):
    port = _free_port()
    svc = endpoints.service(f"tcp:{port}:interface=127.0.0.1", _greeter())
    svc.startService()
    try:
        assert svc.getHost().port == port
        fetch = _Fetch(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
        assert run_until(shared_reactor, lambda: fetch.done)
    finally:
        svc.stopService()
    assert fetch.error is None
    assert fetch.data == b"hello from endpoint\r\n"


def test_unix_service_creates_socket_with_mode(shared_reactor, run_until, short_tmp):
    path = str(short_tmp / "s.sock")
    svc = endpoints.service(f"unix:{path}:mode=600:lockfile=0", _greeter(b"unix"))
    svc.startService()
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert not os.path.exists(path + ".lock")

        def connect():
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s

        fetch = _Fetch(connect)
        assert run_until(shared_reactor, lambda: fetch.done)
    finally:
        svc.stopService()
    assert fetch.data == b"hello from unix\r\n"
    assert not os.path.exists(path)


def test_unix_lockfile_is_on_by_default_like_twisted(shared_reactor, short_tmp):
    path = str(short_tmp / "l.sock")
    svc = endpoints.service(f"unix:{path}", _greeter())
    svc.startService()
    try:
        with open(path + ".lock") as f:
            assert f.read().strip() == str(os.getpid())
    finally:
        svc.stopService()
    assert not os.path.exists(path + ".lock")


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_tcp6_service_listens_on_ipv6_loopback(shared_reactor, run_until):
    svc = endpoints.service(r"tcp6:0:interface=\:\:1", _greeter(b"v6"))
    svc.startService()
    try:
        host = svc.getHost()
        assert host.host == "::1"
        fetch = _Fetch(lambda: socket.create_connection(("::1", host.port), timeout=5))
        assert run_until(shared_reactor, lambda: fetch.done)
    finally:
        svc.stopService()
    assert fetch.data == b"hello from v6\r\n"


def test_ssl_service_serves_tls_to_a_stdlib_client(shared_reactor, run_until, tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    svc = endpoints.service(
        f"ssl:0:privateKey={endpoints.quoteStringArgument(key)}:certKey={endpoints.quoteStringArgument(cert)}"
        ":interface=127.0.0.1",
        _greeter(b"tls"),
    )
    svc.startService()
    versions = []
    try:
        port = svc.getHost().port
        client_ctx = ssl.create_default_context(cafile=cert)

        def connect():
            tls = client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                         server_hostname="localhost")
            versions.append(tls.version())
            return tls

        fetch = _Fetch(connect)
        assert run_until(shared_reactor, lambda: fetch.done)
    finally:
        svc.stopService()
    assert fetch.error is None
    assert fetch.data == b"hello from tls\r\n"
    assert versions[0] in ("TLSv1.2", "TLSv1.3")
    # The started service (context cached) still pickles.
    assert describe(pickle.loads(pickle.dumps(svc))).startswith("ssl:0:privateKey=")


def test_ssl_service_with_missing_key_fails_at_start_naming_it(shared_reactor, tmp_path):
    from tapster.core.ssl import TLSContextError

    missing = str(tmp_path / "gone.key")
    svc = endpoints.service(f"ssl:0:privateKey={missing}:interface=127.0.0.1", _greeter())
    with pytest.raises(TLSContextError, match=r"gone.key"):
        svc.startService()


# -- serverFromString / clientFromString -------------------------------------------------------


def _now(d):
    """The result of a Deferred that has fired (its failure's exception raised)."""
    assert d.called, d
    out = []
    d.addBoth(out.append)
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def test_server_endpoint_listen_returns_a_fired_deferred_of_the_bound_port(shared_reactor, run_until):
    endpoint = endpoints.serverFromString(shared_reactor, "tcp:0:interface=127.0.0.1")
    assert isinstance(endpoint, endpoints.TCP4ServerEndpoint)
    listening = endpoint.listen(_greeter(b"ep"))
    port = _now(listening)
    try:
        number = port.getHost().port
        assert number > 0
        client = CollectingFactory()
        connected = endpoints.clientFromString(shared_reactor, f"tcp:host=127.0.0.1:port={number}").connect(client)
        protocols = []
        connected.addCallback(protocols.append)
        assert run_until(shared_reactor, lambda: client.done)
    finally:
        port.stopListening()
    assert client.received == b"hello from ep\r\n"
    assert len(protocols) == 1 and isinstance(protocols[0], Collector) and protocols[0].factory is client


def test_unix_endpoints_listen_and_connect(shared_reactor, run_until, short_tmp):
    path = str(short_tmp / "e.sock")
    endpoint = endpoints.serverFromString(None, f"unix:{path}:mode=660:lockfile=0")
    assert isinstance(endpoint, endpoints.UNIXServerEndpoint)
    port = _now(endpoint.listen(_greeter(b"unix ep")))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        client = CollectingFactory()
        endpoints.clientFromString(shared_reactor, f"unix:path={path}:timeout=5").connect(client)
        assert run_until(shared_reactor, lambda: client.done)
    finally:
        port.stopListening()
    assert client.received == b"hello from unix ep\r\n"


def test_ssl_endpoints_verify_and_talk(shared_reactor, run_until, tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    q = endpoints.quoteStringArgument
    port = _now(endpoints.serverFromString(
        shared_reactor, f"ssl:0:privateKey={q(key)}:certKey={q(cert)}:interface=127.0.0.1"
    ).listen(_greeter(b"ssl ep")))
    try:
        client = CollectingFactory()
        failures = []
        endpoints.clientFromString(
            shared_reactor, f"ssl:host=localhost:port={port.getHost().port}:trustRoot={q(cert)}"
        ).connect(client).addErrback(failures.append)
        assert run_until(shared_reactor, lambda: client.done)
    finally:
        port.stopListening()
    assert failures == []
    assert client.received == b"hello from ssl ep\r\n"


def test_server_endpoint_reports_port_in_use_as_a_failed_deferred(shared_reactor):
    from tapster.core.errors import CannotListenError

    first = _now(endpoints.serverFromString(shared_reactor, "tcp:0:interface=127.0.0.1").listen(_greeter()))
    try:
        taken = first.getHost().port
        listening = endpoints.serverFromString(shared_reactor, f"tcp:{taken}:interface=127.0.0.1").listen(_greeter())
        with pytest.raises(CannotListenError, match=str(taken)):
            _now(listening)
    finally:
        first.stopListening()


@pytest.mark.parametrize(
    "description, cls, args",
    [
        ("tcp:host=example.com:port=80", endpoints.TCP4ClientEndpoint, ("example.com", 80)),
        ("tcp:example.com:80", endpoints.TCP4ClientEndpoint, ("example.com", 80)),
        ("tcp:host=example.com:80", endpoints.TCP4ClientEndpoint, ("example.com", 80)),
        ("tcp:example.com:port=80", endpoints.TCP4ClientEndpoint, ("example.com", 80)),
        ("unix:/var/foo/bar", endpoints.UNIXClientEndpoint, ("/var/foo/bar",)),
        ("unix:path=/var/foo/bar:lockfile=1:timeout=9", endpoints.UNIXClientEndpoint, ("/var/foo/bar",)),
        ("ssl:host=web.example.com:port=443", endpoints.SSL4ClientEndpoint, ("web.example.com", 443)),
    ],
)
def test_client_descriptions_in_twisted_forms(description, cls, args):
    endpoint = endpoints.clientFromString(None, description)
    assert type(endpoint) is cls
    assert endpoint._args[: len(args)] == args


def test_client_keywords_are_converted():
    tcp = endpoints.clientFromString(None, "tcp:h:80:timeout=2.5:bindAddress=127.0.0.1")
    assert tcp._kwargs == {"timeout": 2.5, "bindAddress": ("127.0.0.1", 0)}
    unix = endpoints.clientFromString(None, "unix:path=/p:lockfile=1:timeout=9")
    assert unix._kwargs == {"timeout": 9.0, "checkPID": True}
    tls = endpoints.clientFromString(None, "ssl:h:443:caCertsDir=/etc/ssl/certs")
    cf = tls._args[2]
    assert (cf.hostname, cf.trustRoot, cf.verify) == ("h", "/etc/ssl/certs", True)


@pytest.mark.parametrize(
    "description, words",
    [
        ("tcp:host=example.com", ["missing port", "tcp:host=example.com:port=80"]),
        ("tcp:port=80", ["missing host"]),
        ("tcp:h:99999", ["port 99999 is out of range"]),
        ("tcp:h:80:timeout=-1", ["timeout '-1'"]),
        ("tcp:h:80:interface=x", ["unknown keyword 'interface' for tcp"]),
        ("tcp6:h:80", ["unknown type 'tcp6'", "tcp, unix, ssl"]),
        ("unix:", ["missing socket path"]),
        ("ssl:h:443:certKey=c.pem", ["certKey= needs privateKey="]),
        ("ssl:h:443:trustRoot=a:caCertsDir=b", ["not both"]),
        ("8007", ["unknown type '8007'"]),
    ],
)
def test_bad_client_descriptions(description, words):
    with pytest.raises(EndpointError) as info:
        endpoints.clientFromString(None, description)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_quote_string_argument_round_trips():
    nasty = "C:\\dir=x\\a:b"
    assert parse("unix:" + endpoints.quoteStringArgument(nasty))[1] == (nasty,)
