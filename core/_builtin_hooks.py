"""tapster's own implementations of the hooks in :mod:`tapster.core.hookspecs`.

Registered by :func:`tapster.core.plugin.get_plugin_manager` exactly like a third-party
hook module, so built-ins take no shortcut.
"""

from __future__ import annotations

import functools
from typing import Any

from tapster.core.hookspecs import FormatSpec, ReactorSpec, hookimpl


def _asyncio_reactor() -> Any:
    import asyncio

    from tapster.core._reactor.loop import AsyncioReactor

    return AsyncioReactor(asyncio.new_event_loop(), name="asyncio")


def _uvloop_reactor() -> Any:
    import uvloop

    from tapster.core._reactor.loop import AsyncioReactor

    return AsyncioReactor(uvloop.new_event_loop(), name="uvloop")


@hookimpl
def tapster_reactors() -> list[ReactorSpec]:
    specs = [ReactorSpec("asyncio", "the standard library's asyncio event loop", _asyncio_reactor)]
    import importlib.util

    if importlib.util.find_spec("uvloop") is not None:
        specs.append(ReactorSpec("uvloop", "uvloop, asyncio on libuv (the default: faster)", _uvloop_reactor))
    return specs


def _deferred(module: str, function: str) -> Any:
    """A stand-in for ``module.function`` that imports the module on first call."""

    def call(*args: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), function)(*args)

    call.__qualname__ = call.__name__ = f"{module}.{function}"
    return call


@functools.lru_cache(maxsize=1)
def _format_specs() -> tuple[FormatSpec, ...]:
    from tapster.core._persist.formats import BUILTIN_FORMATS

    return tuple(
        FormatSpec(name, extension, description, _deferred(module, "dump"), _deferred(module, "load"),
                   _deferred(module, "sniff"), safe)
        for name, extension, module, description, safe in BUILTIN_FORMATS
    )


@hookimpl
def tapster_formats() -> list[FormatSpec]:
    return list(_format_specs())


#: tapster's own classes that may appear in an application file from a stranger: the parts
#: of a service tree. Written out one by one on purpose: a new class of core is not safe to
#: name until someone has looked at what rebuilding it from a stranger's state can do.
#: Functions of core are deliberately absent (``persist.save``, ``atomic_write``... are
#: capabilities, and a service that calls a stored callable must not be handed them).
CORE_SAFE_NAMES: tuple[str, ...] = tuple(
    f"tapster.core.{module}.{name}"
    for module, names in (
        ("service", "Service MultiService Process Application"),
        ("internet", "TCPServer TCPClient UNIXServer UNIXClient SSLServer SSLClient UDPServer "
                     "UNIXDatagramServer UNIXDatagramClient MulticastServer TimerService "
                     "StreamServerEndpointService ClientService _BackoffPolicy"),
        ("protocol", "BaseProtocol Protocol Factory ServerFactory ClientFactory ReconnectingClientFactory "
                     "DatagramProtocol ConnectedDatagramProtocol"),
        ("basic", "LineOnlyReceiver LineReceiver NetstringReceiver IntNStringReceiver Int32StringReceiver "
                  "Int16StringReceiver Int8StringReceiver"),
        ("endpoints", "TCP4ServerEndpoint TCP6ServerEndpoint UNIXServerEndpoint SSL4ServerEndpoint "
                      "TCP4ClientEndpoint SSL4ClientEndpoint UNIXClientEndpoint"),
        ("address", "IPv4Address IPv6Address UNIXAddress"),
        ("ssl", "DefaultOpenSSLContextFactory ClientContextFactory"),
        ("task", "LoopingCall"),
    )
    for name in names.split()
)


@hookimpl
def tapster_safe_names() -> list[object]:
    return list(CORE_SAFE_NAMES)
