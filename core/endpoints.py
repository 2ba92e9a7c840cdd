"""Endpoint description strings: where a server listens or a client connects, as text.

The syntax is Twisted's strports/endpoints mini-language. A description is
fields separated by colons; the first names the kind, the others are values
in order or ``name=value`` keywords; a backslash escapes the next character
(``\\:``, ``\\=``, ``\\\\``), which IPv6 addresses and Windows paths need::

    tcp:8007                                  all IPv4 interfaces, port 8007
    8007                                      the same (a bare port means tcp)
    tcp:8007:interface=127.0.0.1:backlog=100
    tcp6:8007:interface=\\:\\:1               IPv6 (default interface ::)
    unix:/run/app.sock:mode=660:lockfile=0
    ssl:8443:privateKey=server.key:certKey=server.crt

Server keywords, in the order they may also be given positionally:

=======  ==========================================================================
kind     fields (defaults)
=======  ==========================================================================
tcp      port, interface (all IPv4), backlog (50)
tcp6     port, interface (``::``), backlog (50)
unix     address (alias ``path``), mode (666, octal), backlog (50), lockfile (1)
ssl      port, privateKey (required), certKey (= privateKey), sslmethod, interface, backlog
=======  ==========================================================================

As in Twisted, ``lockfile`` defaults to 1: a ``<path>.lock`` file holding the
pid guards the socket, so a second server cannot steal it. Unlike Twisted, an
``ssl`` description must name its ``privateKey`` (Twisted silently assumes
``server.pem``); ``extraCertChain`` and ``dhParameters`` are refused with the
way out (put the chain in the ``certKey`` file; ECDHE needs no DH file).

Client descriptions (:func:`clientFromString`) take ``host`` and ``port``
(positionally or as keywords), ``timeout`` and ``bindAddress``; ``unix``
takes ``path``, ``timeout`` and ``lockfile``; ``ssl`` adds ``trustRoot`` (or
Twisted's ``caCertsDir``), ``privateKey``/``certKey`` for a client certificate
and ``sslmethod``.

As in Twisted, ``serverFromString(reactor, d).listen(f)`` returns a
:class:`tapster.core.defer.Deferred` of the listening port and
``clientFromString(reactor, d).connect(f)`` one of the connected protocol
(awaitable too: ``port = await endpoint.listen(f)``). tapster binds at once,
so the listening Deferred has already fired when ``listen`` returns: with the
port, or failed with :class:`tapster.core.errors.CannotListenError` (never
raised). The connecting one fires once the protocol's ``connectionMade`` has
run, or fails with the reason the attempt failed; cancelling it abandons the
attempt. The factory given to ``connect`` may be a plain ``Factory``: the
endpoint tells the Deferred, not the factory, how the attempt went.

Every bad description raises :class:`EndpointError` (a ``ValueError``) whose
message names the description and how to fix it; it reads well after an
option name (``--port: bad endpoint 'tcp:http': ...``). Importing this module
is cheap: the services, the reactor and :mod:`ssl` load only when used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tapster.core.errors import EndpointError

if TYPE_CHECKING:
    import socket
    import ssl
    from typing import Protocol

    from tapster.core.defer import Deferred
    from tapster.core.interfaces import (
        IListeningPort,
        IOpenSSLContextFactory,
        IProtocolFactory,
        IReactorSSL,
        IReactorTCP,
        IReactorUNIX,
    )
    from tapster.core.internet import (
        SSLClient,
        SSLServer,
        StreamServerEndpointService,
        TCPClient,
        TCPServer,
        UNIXClient,
        UNIXServer,
    )
    from tapster.core.protocol import ClientFactory
    from tapster.core.protocol import Protocol as _Protocol

    class _StreamReactor(IReactorTCP, IReactorSSL, IReactorUNIX, Protocol):
        """What a description may ask of a reactor: TCP, SSL and UNIX (the shared one, a MemoryReactor)."""

__all__ = [
    "EndpointError",
    "KINDS",
    "parse",
    "service",
    "describe",
    "quoteStringArgument",
    "serverFromString",
    "clientFromString",
    "listeningSocket",
    "TCP4ServerEndpoint",
    "TCP6ServerEndpoint",
    "UNIXServerEndpoint",
    "SSL4ServerEndpoint",
    "AdoptedStreamServerEndpoint",
    "SystemdServerEndpoint",
    "TCP4ClientEndpoint",
    "UNIXClientEndpoint",
    "SSL4ClientEndpoint",
]

KINDS = ("tcp", "tcp6", "unix", "ssl", "systemd", "fd")
"""The server kinds :func:`parse` knows, in the order error messages list them."""

_CLIENT_KINDS = ("tcp", "unix", "ssl")

_EXAMPLES = {
    "tcp": "tcp:8007",
    "tcp6": "tcp6:8007:interface=\\:\\:1",
    "unix": "unix:/run/app.sock",
    "ssl": "ssl:8443:privateKey=server.key:certKey=server.crt",
    "systemd": "systemd:name=web",
    "fd": "fd:3",
}
#: Kinds whose socket is passed to the process (socket activation) instead of bound by it.
ADOPTED_KINDS = ("systemd", "fd")
_DOMAINS = {"INET": "AF_INET", "INET6": "AF_INET6", "UNIX": "AF_UNIX"}
_CLIENT_EXAMPLES = {
    "tcp": "tcp:host=example.com:port=80",
    "unix": "unix:path=/run/app.sock",
    "ssl": "ssl:host=example.com:port=443",
}

_DEFAULT_BACKLOG = 50
_DEFAULT_MODE = 0o666
_DEFAULT_TIMEOUT = 30.0


# -- tokenising ------------------------------------------------------------------

_Field = tuple["str | None", str]


def _fields(description: str) -> list[_Field]:
    """Split on unescaped ``:``; a field with an unescaped ``=`` is ``(key, value)``.

    Only the first unescaped ``=`` separates: ``a=b=c`` is key ``a``, value ``b=c``.
    """
    fields: list[_Field] = []
    key: str | None = None
    current: list[str] = []
    chars = iter(description)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, None)
            if nxt is None:
                raise EndpointError(description, "it ends with a lone backslash (write \\\\ for a backslash)")
            current.append(nxt)
        elif ch == ":":
            fields.append((key, "".join(current)))
            key, current = None, []
        elif ch == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(ch)
    fields.append((key, "".join(current)))
    return fields


def quoteStringArgument(argument: str) -> str:
    """Escape ``argument`` so that it is one field of a description (Twisted's name).

    Backslashes, colons and equals signs are escaped: ``quoteStringArgument('::1')``
    is ``\\:\\:1``.
    """
    return argument.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


_quote = quoteStringArgument


def _bind(description: str, kind: str, fields: list[_Field], positional: tuple[str, ...],
          keywords: tuple[str, ...], aliases: dict[str, str] | None = None, fill_free: bool = False) -> dict[str, str]:
    """Name every field: ``name=value`` fields by their name, the others by position."""
    aliases = aliases or {}
    values: dict[str, str] = {}
    for key, value in fields:
        if key is None:
            continue
        name = aliases.get(key, key)
        if name not in keywords:
            raise EndpointError(description, _unknown_keyword(key, kind, keywords))
        if name in values:
            raise EndpointError(description, f"{name}= is given twice (keep one)")
        values[name] = value
    # Like a Python call: the n-th value is the n-th field; a client's host and
    # port fill whichever of the two was not given as a keyword (Twisted's rule).
    free = [name for name in positional if name not in values] if fill_free else list(positional)
    for key, value in fields:
        if key is not None:
            continue
        if not free:
            raise EndpointError(description, f"unexpected extra field {value!r} (optional fields look like name=value)")
        name = free.pop(0)
        if name in values:
            raise EndpointError(description, f"{name} is given twice, as field {value!r} and as {name}= (keep one)")
        values[name] = value
    return values


def _unknown_keyword(key: str, kind: str, keywords: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, keywords, n=1)
    hint = f"did you mean {close[0]}=? " if close else ""
    return f"unknown keyword {key!r} for {kind} ({hint}known: {', '.join(keywords)})"


# -- value conversions ------------------------------------------------------------

def _port(description: str, value: str | None, example: str) -> int:
    if value is None or value == "":
        raise EndpointError(description, f"missing port (e.g. {example})")
    if not (value.isascii() and value.isdigit()):
        raise EndpointError(
            description, f"port {value[:20]!r} is not an integer (use a number from 0 to 65535, e.g. {example})"
        )
    if len(value.lstrip("0")) > 5:  # before int(): thousands of digits are slow, or refused by int() itself
        raise EndpointError(description, "the port is out of range (use a number from 0 to 65535)")
    port = int(value)
    if not 0 <= port <= 65535:
        raise EndpointError(description, f"port {port} is out of range (use a number from 0 to 65535)")
    return port


def _backlog(description: str, value: str | None) -> int:
    if value is None:
        return _DEFAULT_BACKLOG
    backlog = int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else -1
    if backlog < 0:
        raise EndpointError(description, f"backlog {value!r} is not a whole number >= 0 (e.g. backlog=50)")
    return backlog


def _mode(description: str, value: str | None) -> int:
    if value is None:
        return _DEFAULT_MODE
    digits = value[2:] if value[:2].lower() == "0o" else value
    mode = (int(digits, 8) if digits.isascii() and digits.isdigit() and len(digits) <= 6
            and "8" not in digits and "9" not in digits else -1)
    if not 0 <= mode <= 0o7777:
        raise EndpointError(description, f"mode {value!r} is not an octal file mode (e.g. mode=660 or mode=0o660)")
    return mode


def _flag(description: str, name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value not in ("0", "1"):
        raise EndpointError(description, f"{name} {value!r} must be 0 or 1 (e.g. {name}=0)")
    return value == "1"


def _timeout(description: str, value: str | None) -> float:
    if value is None:
        return _DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not (timeout > 0 and timeout != float("inf")):
        raise EndpointError(description, f"timeout {value[:20]!r} is not a number of seconds > 0 (e.g. timeout=30)")
    return timeout


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).version == 6
    except ValueError:
        return False


def _required(description: str, values: dict[str, str], name: str, what: str, example: str) -> str:
    value = values.get(name)
    if not value:
        raise EndpointError(description, f"missing {what} (e.g. {example})")
    return value


def _sslmethod(description: str, value: str | None) -> str | None:
    if value is None:
        return None
    from tapster.core.ssl import check_sslmethod

    try:
        return check_sslmethod(value)
    except ValueError as e:
        raise EndpointError(description, str(e)) from None


_UNSUPPORTED = {
    "extraCertChain": "extraCertChain= is not supported: append the chain certificates to the certKey file instead",
    "dhParameters": "dhParameters= is not supported: tapster's TLS uses ECDHE, which needs no DH parameters file",
}


# -- server descriptions ------------------------------------------------------------

# (kind, args, kwargs) as the reactor's listen method takes them; the values are of as many
# types as there are options (int port, str interface, bool wantPID...), hence Any.
Parsed = tuple[str, tuple[Any, ...], dict[str, Any]]


def _parse_tcp(description: str, kind: str, fields: list[_Field]) -> Parsed:
    names = ("port", "interface", "backlog")
    values = _bind(description, kind, fields, names, names)
    port = _port(description, values.get("port"), _EXAMPLES[kind])
    if kind == "tcp6":
        interface = values.get("interface") or "::"
        if not _is_ipv6(interface):
            raise EndpointError(
                description,
                f"interface {interface!r} is not an IPv6 address (e.g. interface=\\:\\:1; use tcp: for IPv4)",
            )
    else:
        interface = values.get("interface", "")
    return kind, (port,), {"interface": interface, "backlog": _backlog(description, values.get("backlog"))}


def _parse_unix(description: str, kind: str, fields: list[_Field]) -> Parsed:
    names = ("address", "mode", "backlog", "lockfile")
    values = _bind(description, kind, fields, names, names, aliases={"path": "address"})
    address = _required(description, values, "address", "socket path", _EXAMPLES["unix"])
    return kind, (address,), {
        "mode": _mode(description, values.get("mode")),
        "backlog": _backlog(description, values.get("backlog")),
        "wantPID": _flag(description, "lockfile", values.get("lockfile"), True),
    }


def _parse_ssl(description: str, kind: str, fields: list[_Field]) -> Parsed:
    names = ("port", "privateKey", "certKey", "sslmethod", "interface", "backlog")
    for key, _ in fields:
        if key in _UNSUPPORTED:
            raise EndpointError(description, _UNSUPPORTED[key])
    values = _bind(description, kind, fields, names, names)
    port = _port(description, values.get("port"), _EXAMPLES["ssl"])
    privateKey = _required(description, values, "privateKey", "privateKey=", _EXAMPLES["ssl"])
    return kind, (port,), {
        "privateKey": privateKey,
        "certKey": values.get("certKey") or privateKey,
        "sslmethod": _sslmethod(description, values.get("sslmethod")),
        "interface": values.get("interface", ""),
        "backlog": _backlog(description, values.get("backlog")),
    }


def _domain(description: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in _DOMAINS:
        raise EndpointError(description, f"domain={value!r}: use INET, INET6 or UNIX")
    return value.upper()


def _parse_systemd(description: str, kind: str, fields: list[_Field]) -> Parsed:
    """``systemd:name=web`` or ``systemd:index=0`` (Twisted's ``systemd:domain=INET:index=0`` too)."""
    values = _bind(description, kind, fields, (), ("name", "index", "domain"))
    name, index = values.get("name"), values.get("index")
    if (name is None) == (index is None):
        raise EndpointError(description, "give name=NAME (FileDescriptorName= of the socket unit) or index=N, "
                                         "e.g. systemd:name=web")
    if index is not None and not index.isdigit():
        raise EndpointError(description, f"index {index!r} is not a number (0 is the first socket passed)")
    if name is not None and (not name or len(name) > 255 or ":" in name):
        raise EndpointError(description, "name= must be 1 to 255 characters, without ':'")
    return kind, (), {"name": name, "index": None if index is None else int(index),
                      "domain": _domain(description, values.get("domain"))}


def _parse_fd(description: str, kind: str, fields: list[_Field]) -> Parsed:
    """``fd:N``: listen on inherited descriptor N (``fd:fileno=N:domain=INET`` also reads)."""
    values = _bind(description, kind, fields, ("fileno",), ("fileno", "domain"))
    fileno = _required(description, values, "fileno", "descriptor number", _EXAMPLES["fd"])
    if not fileno.isdigit() or int(fileno) < 3 or int(fileno) > 1 << 20:
        raise EndpointError(description, f"descriptor {fileno!r} is not a number of 3 or more (0-2 are stdio)")
    return kind, (int(fileno),), {"domain": _domain(description, values.get("domain"))}


_SERVER_PARSERS: dict[str, Callable[[str, str, list[_Field]], Parsed]] = {
    "tcp": _parse_tcp,
    "tcp6": _parse_tcp,
    "unix": _parse_unix,
    "ssl": _parse_ssl,
    "systemd": _parse_systemd,
    "fd": _parse_fd,
}


def _split_kind(description: str, fields: list[_Field], default: str | None, kinds: tuple[str, ...],
                examples: dict[str, str]) -> tuple[str, list[_Field]]:
    first_key, first = fields[0]
    if first_key is None and first.lower() in kinds:
        return first.lower(), fields[1:]
    if default is not None and first_key is None and (first.isdigit() or len(fields) == 1):
        return default, fields
    known = f"use one of {', '.join(kinds)}, e.g. {examples[kinds[0]]}"
    if first_key is not None:
        raise EndpointError(description, f"it does not start with a type ({known})")
    import difflib

    close = difflib.get_close_matches(first.lower(), kinds, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    if (_is_ip(first) or first == "localhost") and len(fields) == 2 and fields[1][1].isdigit():
        hint = f"to listen on {first} port {fields[1][1]} write tcp:{fields[1][1]}:interface={_quote(first)}; "
    raise EndpointError(description, f"unknown type {first!r} ({hint}{known})")


def _text(description: str | bytes | int) -> str:
    if isinstance(description, bool):
        raise EndpointError(repr(description), "not an endpoint description (e.g. tcp:8007)")
    if isinstance(description, int):
        return str(description)
    if isinstance(description, bytes):
        try:
            return description.decode("utf-8")
        except UnicodeDecodeError:
            raise EndpointError(description.decode("utf-8", "replace"), "it is not valid UTF-8 text") from None
    if not isinstance(description, str):
        raise TypeError(f"an endpoint description is a string such as 'tcp:8007', not {type(description).__name__}")
    return description


def parse(description: str | bytes | int, default: str | None = "tcp") -> Parsed:
    """Parse a server description into ``(kind, args, kwargs)`` with every default filled in.

    ``kind`` is one of :data:`KINDS`; ``args`` is ``(port,)`` or ``(path,)``;
    ``kwargs`` holds the rest under the reactor's names (``interface``,
    ``backlog``, ``mode``, ``wantPID``, ``privateKey``, ``certKey``,
    ``sslmethod``). A description without a kind, such as ``8007``, is of kind
    ``default`` (``None``: refuse it). Raises :class:`EndpointError`.
    """
    text = _text(description).strip()
    if not text:
        raise EndpointError(text, "the description is empty (e.g. tcp:8007)")
    _check_characters(text)
    fields = _fields(text)
    kind, rest = _split_kind(text, fields, default, KINDS, _EXAMPLES)
    if kind not in _SERVER_PARSERS:
        raise EndpointError(text, f"unknown type {kind!r} (use one of {', '.join(KINDS)})")
    return _SERVER_PARSERS[kind](text, kind, rest)


def _check_characters(text: str) -> None:
    """Refuse what no address or path holds, before any field is read: NUL, other control bytes, bad UTF-8.

    A command line that is not valid UTF-8 arrives with surrogate escapes;
    a NUL would be cut off (or refused) by the operating system later, far
    from the option that carried it.
    """
    if "\x00" in text:
        raise EndpointError(text, "it holds a NUL byte, which no address or path can contain")
    if any("\udc80" <= c <= "\udcff" for c in text):
        raise EndpointError(text, "it is not valid UTF-8 text")
    if not text.isprintable():
        raise EndpointError(text, "it holds control characters")


def _parsed(description: str | bytes | int | Parsed) -> Parsed:
    """Accept a description or what :func:`parse` returned (so ``parse`` can be an option's coerce)."""
    if isinstance(description, tuple):
        if len(description) == 3 and description[0] in KINDS:
            return description
        raise TypeError(f"an endpoint description is a string such as 'tcp:8007', not {type(description).__name__}")
    return parse(description)


def service(description: str | bytes | int | Parsed, factory: IProtocolFactory,
            reactor: _StreamReactor | None = None) -> TCPServer | UNIXServer | SSLServer | StreamServerEndpointService:
    """The service for a server description, not started: Twisted's ``strports.service``.

    ``tcp``/``tcp6`` give a :class:`tapster.core.internet.TCPServer` (IPv6 when the
    interface is an IPv6 address), ``unix`` a ``UNIXServer``, ``ssl`` an
    ``SSLServer`` holding a picklable
    :class:`tapster.core.ssl.DefaultOpenSSLContextFactory`; ``systemd`` and
    ``fd`` (sockets passed to the process) a ``StreamServerEndpointService``
    that adopts the socket when it starts. ``description`` may also be what
    :func:`parse` returned. ``reactor`` (default: the shared one when the
    service starts) is set on the service.
    """
    from tapster.core import internet

    kind, args, kw = _parsed(description)
    if kind in ADOPTED_KINDS:
        endpoint = serverFromString(reactor, _render_parsed((kind, args, kw)))
        return internet.StreamServerEndpointService(endpoint, factory)
    svc: TCPServer | UNIXServer | SSLServer
    if kind in ("tcp", "tcp6"):
        svc = internet.TCPServer(args[0], factory, backlog=kw["backlog"], interface=kw["interface"])
    elif kind == "unix":
        svc = internet.UNIXServer(args[0], factory, backlog=kw["backlog"], mode=kw["mode"], wantPID=kw["wantPID"])
    else:
        from tapster.core.ssl import DefaultOpenSSLContextFactory

        cf = DefaultOpenSSLContextFactory(kw["privateKey"], kw["certKey"], sslmethod=kw["sslmethod"])
        svc = internet.SSLServer(args[0], factory, cf, backlog=kw["backlog"], interface=kw["interface"])
    if reactor is not None:
        svc.reactor = reactor
    return svc


# -- describing ---------------------------------------------------------------------

def _render(kind: str, positional: list[object], keywords: list[tuple[str, object]]) -> str:
    parts = [kind] + [_quote(str(v)) for v in positional]
    parts += [f"{name}={_quote(str(value))}" for name, value in keywords]
    return ":".join(parts)


def _render_parsed(parsed: Parsed) -> str:
    kind, args, kw = parsed
    keywords: list[tuple[str, object]] = []
    if kind in ADOPTED_KINDS:
        if kind == "systemd":
            keywords.append(("name", kw["name"]) if kw.get("name") is not None else ("index", kw["index"]))
        if kw.get("domain"):
            keywords.append(("domain", kw["domain"]))
        return _render(kind, list(args), keywords)
    if kind == "unix":
        if kw.get("mode", _DEFAULT_MODE) != _DEFAULT_MODE:
            keywords.append(("mode", f"{kw['mode']:o}"))
        if kw.get("backlog", _DEFAULT_BACKLOG) != _DEFAULT_BACKLOG:
            keywords.append(("backlog", kw["backlog"]))
        if not kw.get("wantPID", True):
            keywords.append(("lockfile", 0))
        return _render(kind, [args[0]], keywords)
    if kind == "ssl":
        keywords.append(("privateKey", kw["privateKey"]))
        if kw.get("certKey") not in (None, kw["privateKey"]):
            keywords.append(("certKey", kw["certKey"]))
        if kw.get("sslmethod"):
            keywords.append(("sslmethod", kw["sslmethod"]))
    default_interface = "::" if kind == "tcp6" else ""
    if kw.get("interface", default_interface) != default_interface:
        keywords.append(("interface", kw["interface"]))
    if kw.get("backlog", _DEFAULT_BACKLOG) != _DEFAULT_BACKLOG:
        keywords.append(("backlog", kw["backlog"]))
    return _render(kind, [args[0]], keywords)


def _arguments(svc: TCPServer | UNIXServer | SSLServer | TCPClient | UNIXClient | SSLClient, names: tuple[str, ...],
               defaults: dict[str, Any]) -> dict[str, Any]:
    """A service's constructor arguments by name, whether given by position or keyword."""
    bound = dict(defaults)
    bound.update(zip(names, svc.args, strict=False))  # positional arguments may be fewer than names
    bound.update(svc.kwargs)
    return bound


def _describe_service(svc: object) -> str:
    from tapster.core import internet

    if isinstance(svc, internet.TCPServer):
        a = _arguments(svc, ("port", "factory", "backlog", "interface"), {"backlog": _DEFAULT_BACKLOG, "interface": ""})
        kind = "tcp6" if _is_ipv6(a["interface"]) else "tcp"
        return _render_parsed((kind, (a["port"],), {"interface": a["interface"], "backlog": a["backlog"]}))
    if isinstance(svc, internet.UNIXServer):
        a = _arguments(svc, ("address", "factory", "backlog", "mode", "wantPID"),
                       {"backlog": _DEFAULT_BACKLOG, "mode": _DEFAULT_MODE, "wantPID": False})
        return _render_parsed(("unix", (a["address"],), {k: a[k] for k in ("mode", "backlog", "wantPID")}))
    if isinstance(svc, internet.SSLServer):
        a = _arguments(svc, ("port", "factory", "contextFactory", "backlog", "interface"),
                       {"backlog": _DEFAULT_BACKLOG, "interface": ""})
        cf = a["contextFactory"]
        keys = {"privateKey": getattr(cf, "privateKeyFileName", None),
                "certKey": getattr(cf, "certificateFileName", None),
                "sslmethod": getattr(cf, "sslmethod", None)}
        if keys["privateKey"] is None:  # a bare SSLContext: its files are not known
            return _render("ssl", [a["port"]], [("interface", a["interface"])] if a["interface"] else [])
        return _render_parsed(("ssl", (a["port"],), {**keys, "interface": a["interface"], "backlog": a["backlog"]}))
    if isinstance(svc, (internet.TCPClient, internet.SSLClient)):
        kind = "ssl" if isinstance(svc, internet.SSLClient) else "tcp"
        names = (
            ("host", "port", "factory") + (("contextFactory",) if kind == "ssl" else ()) + ("timeout", "bindAddress")
        )
        a = _arguments(svc, names, {"timeout": _DEFAULT_TIMEOUT, "bindAddress": None})
        keywords: list[tuple[str, object]] = [("host", a["host"]), ("port", a["port"])]
        if a["timeout"] != _DEFAULT_TIMEOUT:
            keywords.append(("timeout", a["timeout"]))
        if a["bindAddress"]:
            keywords.append(("bindAddress", a["bindAddress"][0]))
        return _render(kind, [], keywords)
    if isinstance(svc, internet.UNIXClient):
        a = _arguments(
            svc, ("address", "factory", "timeout", "checkPID"), {"timeout": _DEFAULT_TIMEOUT, "checkPID": False}
        )
        keywords = [("path", a["address"])]
        if a["timeout"] != _DEFAULT_TIMEOUT:
            keywords.append(("timeout", a["timeout"]))
        if a["checkPID"]:
            keywords.append(("lockfile", 1))
        return _render("unix", [], keywords)
    if isinstance(svc, (internet.StreamServerEndpointService, internet.ClientService)):
        return _describe_service(svc.endpoint)
    if isinstance(svc, (_ServerEndpoint, _ClientEndpoint)):
        return _describe_endpoint(svc)
    raise TypeError(
        f"cannot describe {type(svc).__name__}: only TCP, UNIX and SSL servers and clients have endpoint strings"
    )


def _describe_endpoint(endpoint: _ServerEndpoint | _ClientEndpoint) -> str:
    """The description of one of this module's endpoint objects (what ``*FromString`` turns back into it)."""
    args, kw = endpoint._args, endpoint._kwargs
    if isinstance(endpoint, SystemdServerEndpoint):
        return _render_parsed(("systemd", (), {"name": kw["name"], "index": kw["index"],
                                               "domain": kw["addressFamily"]}))
    if isinstance(endpoint, AdoptedStreamServerEndpoint):
        family = kw.get("addressFamily")
        return _render_parsed(("fd", (args[0],), {"domain": family if isinstance(family, str) else None}))
    if isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
        kind = "tcp6" if isinstance(endpoint, TCP6ServerEndpoint) else "tcp"
        return _render_parsed((kind, (args[0],), {"interface": kw["interface"], "backlog": kw["backlog"]}))
    if isinstance(endpoint, UNIXServerEndpoint):
        return _render_parsed(("unix", (args[0],), {k: kw[k] for k in ("mode", "backlog", "wantPID")}))
    if isinstance(endpoint, SSL4ServerEndpoint):
        cf = args[1]
        keys = {"privateKey": getattr(cf, "privateKeyFileName", None),
                "certKey": getattr(cf, "certificateFileName", None),
                "sslmethod": getattr(cf, "sslmethod", None)}
        if keys["privateKey"] is None:
            return _render("ssl", [args[0]], [("interface", kw["interface"])] if kw["interface"] else [])
        return _render_parsed(("ssl", (args[0],), {**keys, "interface": kw["interface"], "backlog": kw["backlog"]}))
    if isinstance(endpoint, UNIXClientEndpoint):
        keywords: list[tuple[str, object]] = [("path", args[0])]
        if kw["timeout"] != _DEFAULT_TIMEOUT:
            keywords.append(("timeout", kw["timeout"]))
        if kw["checkPID"]:
            keywords.append(("lockfile", 1))
        return _render("unix", [], keywords)
    kind = "ssl" if isinstance(endpoint, SSL4ClientEndpoint) else "tcp"
    keywords = [("host", args[0]), ("port", args[1])]
    if kw["timeout"] != _DEFAULT_TIMEOUT:
        keywords.append(("timeout", kw["timeout"]))
    bind = kw["bindAddress"]
    if isinstance(bind, tuple):
        keywords.append(("bindAddress", bind[0]))
    return _render(kind, [], keywords)


def describe(service_or_description: str | bytes | int | Parsed | object) -> str:
    """A normalised description: ``describe('tcp:port=8007:backlog=50')`` is ``'tcp:8007'``.

    Accepts a description string (or port number), what :func:`parse`
    returned, or a TCP/UNIX/SSL server or client service from
    :mod:`tapster.core.internet`. Default values are left out, so the result is the
    shortest string that :func:`parse` (or :func:`clientFromString`, for a
    client service) turns back into the same thing.
    """
    obj = service_or_description
    if isinstance(obj, (str, bytes, int, tuple)):
        return _render_parsed(_parsed(obj))
    return _describe_service(obj)


# -- endpoint objects ------------------------------------------------------------------

def _reactor(reactor: object) -> object:
    if reactor is not None:
        return reactor
    from tapster.core import reactor as shared

    return shared.getReactor()


class _ServerEndpoint:
    """``listen(factory)``: a Deferred of the listening port, already fired (tapster binds at once)."""

    method = ""

    def __init__(self, reactor: object, *args: object, **kwargs: object) -> None:
        self._reactor = reactor
        self._args = args
        self._kwargs = kwargs

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """Bind and listen now; the Deferred has the port, or a CannotListenError failure if the address is taken."""
        from tapster.core.defer import fail, succeed

        head, tail = self._args[:1], self._args[1:]
        try:
            listen = getattr(_reactor(self._reactor), "listen" + self.method)
            port: IListeningPort = listen(*head, protocolFactory, *tail, **self._kwargs)
        except Exception:
            return fail()
        return succeed(port)

    def __getstate__(self) -> dict[str, object]:
        # The reactor is a process resource (the shared one's loop does not pickle, nor does the
        # ``tapster.core.reactor`` module a porter passes): a loaded endpoint uses the shared one.
        state = self.__dict__.copy()
        state["_reactor"] = None
        return state

    def __repr__(self) -> str:
        args = ", ".join([repr(a) for a in self._args] + [f"{k}={v!r}" for k, v in self._kwargs.items()])
        return f"{type(self).__name__}({args})"


class TCP4ServerEndpoint(_ServerEndpoint):
    """``TCP4ServerEndpoint(reactor, port, backlog=50, interface='')``"""

    method = "TCP"

    def __init__(self, reactor: IReactorTCP | None, port: int, backlog: int = _DEFAULT_BACKLOG,
                 interface: str = "") -> None:
        super().__init__(reactor, port, backlog=backlog, interface=interface)


class TCP6ServerEndpoint(_ServerEndpoint):
    """``TCP6ServerEndpoint(reactor, port, backlog=50, interface='::')``"""

    method = "TCP"

    def __init__(self, reactor: IReactorTCP | None, port: int, backlog: int = _DEFAULT_BACKLOG,
                 interface: str = "::") -> None:
        super().__init__(reactor, port, backlog=backlog, interface=interface)


class UNIXServerEndpoint(_ServerEndpoint):
    """``UNIXServerEndpoint(reactor, address, backlog=50, mode=0o666, wantPID=0)``"""

    method = "UNIX"

    def __init__(self, reactor: IReactorUNIX | None, address: str, backlog: int = _DEFAULT_BACKLOG,
                 mode: int = _DEFAULT_MODE,
                 wantPID: bool = False) -> None:
        super().__init__(reactor, address, backlog=backlog, mode=mode, wantPID=wantPID)


class SSL4ServerEndpoint(_ServerEndpoint):
    """``SSL4ServerEndpoint(reactor, port, sslContextFactory, backlog=50, interface='')``"""

    method = "SSL"

    def __init__(self, reactor: IReactorSSL | None, port: int,
                 sslContextFactory: IOpenSSLContextFactory | ssl.SSLContext, backlog: int = _DEFAULT_BACKLOG,
                 interface: str = "") -> None:
        super().__init__(reactor, port, sslContextFactory, backlog=backlog, interface=interface)


class AdoptedStreamServerEndpoint(_ServerEndpoint):
    """``AdoptedStreamServerEndpoint(reactor, fileno, addressFamily)``: serve the inherited listening socket ``fileno``.

    Twisted's class of the same name; ``addressFamily`` may also be None (any)
    or a domain name (``INET``, ``INET6``, ``UNIX``). The descriptor is checked
    when listening (a listening stream socket of that family) and duplicated:
    the process keeps the original, so a service stopped and started again,
    or a reload, can adopt it again.
    """

    def __init__(self, reactor: object, fileno: int, addressFamily: int | str | None = None) -> None:
        super().__init__(reactor, fileno, addressFamily=addressFamily)

    def _socket(self) -> socket.socket:
        import socket as _socket

        from tapster.core.systemd import adoptDescriptor

        fileno = self._args[0]
        assert isinstance(fileno, int)
        return adoptDescriptor(fileno, _socket.SOCK_STREAM)

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """Adopt the socket now; the Deferred has the port, or an InheritedSocketError failure."""
        import socket as _socket

        from tapster.core.defer import fail, succeed
        from tapster.core.errors import InheritedSocketError

        try:
            sock = self._socket()
            try:
                wanted = self._kwargs.get("addressFamily")
                family = int(getattr(_socket, _DOMAINS[wanted])) if isinstance(wanted, str) else wanted
                if isinstance(family, int) and sock.family != family:
                    raise InheritedSocketError(
                        f"{self._what()} is an {_socket.AddressFamily(sock.family).name} socket, not "
                        f"{_socket.AddressFamily(family).name}: check the socket unit")
                reactor: Any = _reactor(self._reactor)  # Any: the shared reactor or a porter's, duck-typed
                port: IListeningPort = reactor.adoptStreamPort(sock.fileno(), sock.family, protocolFactory)
            finally:
                sock.close()  # adoptStreamPort keeps a duplicate
        except Exception:
            return fail()
        return succeed(port)

    def _what(self) -> str:
        return f"descriptor {self._args[0]}"


class SystemdServerEndpoint(AdoptedStreamServerEndpoint):
    """``systemd:name=web`` / ``systemd:index=0``: a socket passed by systemd's socket activation.

    Resolved when listening (twistd reads ``$LISTEN_FDS`` once at start, see
    :mod:`tapster.core.systemd`), so a saved application names the socket,
    not a descriptor number that means nothing on the next start.
    """

    def __init__(self, reactor: object, name: str | None = None, index: int | None = None,
                 domain: str | None = None) -> None:
        _ServerEndpoint.__init__(self, reactor, name=name, index=index, addressFamily=domain)

    def _socket(self) -> socket.socket:
        import socket as _socket

        from tapster.core.systemd import adopt

        name, index = self._kwargs.get("name"), self._kwargs.get("index")
        assert name is None or isinstance(name, str)
        assert index is None or isinstance(index, int)
        return adopt(name=name, index=index, kind=_socket.SOCK_STREAM)

    def _what(self) -> str:
        name = self._kwargs.get("name")
        return f"systemd socket {name!r}" if name is not None else f"systemd socket {self._kwargs.get('index')}"


def serverFromString(reactor: _StreamReactor | None, description: str) -> _ServerEndpoint:
    """The server endpoint for ``description`` (``None`` reactor: the shared one, when listening).

    ``endpoint.listen(factory)`` returns a Deferred of the bound port, as in
    Twisted; tapster binds at once, so it has already fired.
    """
    kind, args, kw = parse(description)
    if kind == "systemd":
        return SystemdServerEndpoint(reactor, name=kw["name"], index=kw["index"], domain=kw["domain"])
    if kind == "fd":
        return AdoptedStreamServerEndpoint(reactor, args[0], kw["domain"])
    if kind == "tcp":
        return TCP4ServerEndpoint(reactor, args[0], kw["backlog"], kw["interface"])
    if kind == "tcp6":
        return TCP6ServerEndpoint(reactor, args[0], kw["backlog"], kw["interface"])
    if kind == "unix":
        return UNIXServerEndpoint(reactor, args[0], kw["backlog"], kw["mode"], kw["wantPID"])
    from tapster.core.ssl import DefaultOpenSSLContextFactory

    cf = DefaultOpenSSLContextFactory(kw["privateKey"], kw["certKey"], sslmethod=kw["sslmethod"])
    return SSL4ServerEndpoint(reactor, args[0], cf, kw["backlog"], kw["interface"])


class _ClientEndpoint:
    """``connect(factory)``: a Deferred of the protocol, fired once it is connected."""

    method = ""

    def __init__(self, reactor: object, *args: object, **kwargs: object) -> None:
        self._reactor = reactor
        self._args = args
        self._kwargs = kwargs

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[_Protocol]:
        """Start connecting; the Deferred fires with the protocol after its ``connectionMade``, or fails.

        Cancelling the Deferred stops the attempt (or closes a connection that
        is up but not yet reported).
        """
        from tapster.core._endpoint_connect import ConnectingFactory

        wrapper = ConnectingFactory(protocolFactory)
        try:
            connect = getattr(_reactor(self._reactor), "connect" + self.method)
            wrapper.connector = connect(*self._split(wrapper), **self._kwargs)
        except Exception:
            wrapper.deferred.errback()
        return wrapper.deferred

    def _split(self, factory: ClientFactory) -> tuple[object, ...]:
        return (*self._args[:2], factory, *self._args[2:])

    def __getstate__(self) -> dict[str, object]:
        # The reactor is a process resource (the shared one's loop does not pickle, nor does the
        # ``tapster.core.reactor`` module a porter passes): a loaded endpoint uses the shared one.
        state = self.__dict__.copy()
        state["_reactor"] = None
        return state

    def __repr__(self) -> str:
        args = ", ".join([repr(a) for a in self._args] + [f"{k}={v!r}" for k, v in self._kwargs.items()])
        return f"{type(self).__name__}({args})"


class TCP4ClientEndpoint(_ClientEndpoint):
    """``TCP4ClientEndpoint(reactor, host, port, timeout=30, bindAddress=None)``"""

    method = "TCP"

    def __init__(self, reactor: IReactorTCP | None, host: str, port: int, timeout: float = _DEFAULT_TIMEOUT,
                 bindAddress: tuple[str, int] | None = None) -> None:
        super().__init__(reactor, host, port, timeout=timeout, bindAddress=bindAddress)


class SSL4ClientEndpoint(_ClientEndpoint):
    """``SSL4ClientEndpoint(reactor, host, port, sslContextFactory, timeout=30, bindAddress=None)``"""

    method = "SSL"

    def __init__(self, reactor: IReactorSSL | None, host: str, port: int,
                 sslContextFactory: IOpenSSLContextFactory | ssl.SSLContext, timeout: float = _DEFAULT_TIMEOUT,
                 bindAddress: tuple[str, int] | None = None) -> None:
        super().__init__(reactor, host, port, sslContextFactory, timeout=timeout, bindAddress=bindAddress)


class UNIXClientEndpoint(_ClientEndpoint):
    """``UNIXClientEndpoint(reactor, path, timeout=30, checkPID=0)``"""

    method = "UNIX"

    def __init__(self, reactor: IReactorUNIX | None, path: str, timeout: float = _DEFAULT_TIMEOUT,
                 checkPID: bool = False) -> None:
        super().__init__(reactor, path, timeout=timeout, checkPID=checkPID)

    def _split(self, factory: ClientFactory) -> tuple[object, ...]:
        return (self._args[0], factory)


def _parse_client(description: str) -> tuple[str, dict[str, Any]]:  # Any: as in Parsed
    text = _text(description).strip()
    if not text:
        raise EndpointError(text, "the description is empty (e.g. tcp:host=example.com:port=80)")
    kind, fields = _split_kind(text, _fields(text), None, _CLIENT_KINDS, _CLIENT_EXAMPLES)
    example = _CLIENT_EXAMPLES[kind]
    names: tuple[str, ...]
    if kind == "unix":
        names = ("path", "timeout", "lockfile")
        values = _bind(text, kind, fields, ("path",), names)
        return kind, {
            "path": _required(text, values, "path", "socket path", example),
            "timeout": _timeout(text, values.get("timeout")),
            "checkPID": _flag(text, "lockfile", values.get("lockfile"), False),
        }
    names = ("host", "port", "timeout", "bindAddress")
    if kind == "ssl":
        names += ("trustRoot", "caCertsDir", "privateKey", "certKey", "sslmethod")
    values = _bind(text, kind, fields, ("host", "port"), names, fill_free=True)
    if "trustRoot" in values and "caCertsDir" in values:
        raise EndpointError(text, "give trustRoot= or caCertsDir=, not both")
    bind = values.get("bindAddress")
    result: dict[str, Any] = {
        "host": _required(text, values, "host", "host", example),
        "port": _port(text, values.get("port"), example),
        "timeout": _timeout(text, values.get("timeout")),
        "bindAddress": (bind, 0) if bind else None,
    }
    if kind == "ssl":
        if values.get("certKey") and not values.get("privateKey"):
            raise EndpointError(text, "certKey= needs privateKey= too (the client certificate's key)")
        result.update(
            trustRoot=values.get("trustRoot") or values.get("caCertsDir"),
            privateKey=values.get("privateKey"),
            certKey=values.get("certKey"),
            sslmethod=_sslmethod(text, values.get("sslmethod")),
        )
    return kind, result


def clientFromString(reactor: _StreamReactor | None, description: str) -> _ClientEndpoint:
    """The client endpoint for ``description``: ``tcp:host=H:port=P``, ``unix:path=P``, ``ssl:host=H:port=P``.

    ``ssl`` clients verify the server's certificate for ``host`` against
    ``trustRoot`` (a CA file or directory; default: the system's CAs).
    """
    kind, kw = _parse_client(description)
    if kind == "unix":
        return UNIXClientEndpoint(reactor, kw["path"], kw["timeout"], kw["checkPID"])
    if kind == "tcp":
        return TCP4ClientEndpoint(reactor, kw["host"], kw["port"], kw["timeout"], kw["bindAddress"])
    from tapster.core.ssl import ClientContextFactory

    cf = ClientContextFactory(hostname=kw["host"], trustRoot=kw["trustRoot"], privateKey=kw["privateKey"],
                              certKey=kw["certKey"], sslmethod=kw["sslmethod"])
    return SSL4ClientEndpoint(reactor, kw["host"], kw["port"], cf, kw["timeout"], kw["bindAddress"])


def listeningSocket(description: str) -> socket.socket:
    """A non-blocking stream socket listening now, as ``description`` (tcp, tcp6, unix, systemd, fd) says.

    For servers that are not Protocols on the reactor (an SSH library that
    serves on a socket handed to it, a thread pool of a WSGI server): the same
    address handling as ``listenTCP``/``listenUNIX`` (IPv6, host names, a stale
    UNIX socket left by a crash removed, ``mode=``) and the same
    :class:`tapster.core.errors.CannotListenError` naming the address when it
    is taken. ``ssl:`` is refused: the caller brings its own encryption, and
    binding it in clear would silently drop the certificate it names.
    """
    import socket

    from tapster.core._reactor.ports import bind_inet, bind_unix

    kind, args, kw = parse(description)
    if kind == "unix":
        return bind_unix(socket.SOCK_STREAM, args[0], kw["backlog"], kw["mode"])
    if kind in ("tcp", "tcp6"):
        return bind_inet(socket.SOCK_STREAM, kw["interface"], args[0], kw["backlog"])
    if kind in ADOPTED_KINDS:  # systemd:name=... or fd:N: the socket passed to the process
        from tapster.core import systemd

        if kind == "fd":
            return systemd.adoptDescriptor(args[0], socket.SOCK_STREAM)
        return systemd.adopt(name=kw["name"], index=kw["index"], kind=socket.SOCK_STREAM)
    raise EndpointError(
        description, f"{kind}: endpoints cannot be bound as a plain listening socket: use tcp, tcp6 or unix"
    )
