"""tapster's own implementations of the hooks in :mod:`core.hookspecs`.

Registered by :func:`core.plugin.get_plugin_manager` exactly like a third-party
hook module, so built-ins take no shortcut.
"""

from __future__ import annotations

from typing import Any

from core.hookspecs import FormatSpec, ReactorSpec, hookimpl


def _asyncio_reactor() -> Any:
    import asyncio

    from core._reactor import AsyncioReactor

    return AsyncioReactor(asyncio.new_event_loop(), name="asyncio")


def _uvloop_reactor() -> Any:
    import uvloop

    from core._reactor import AsyncioReactor

    return AsyncioReactor(uvloop.new_event_loop(), name="uvloop")


@hookimpl
def tapster_reactors() -> list[ReactorSpec]:
    specs = [ReactorSpec("asyncio", "the standard library's asyncio event loop", _asyncio_reactor)]
    import importlib.util

    if importlib.util.find_spec("uvloop") is not None:
        specs.append(ReactorSpec("uvloop", "uvloop, asyncio on libuv (the default: faster)", _uvloop_reactor))
    return specs


#: Modules holding one built-in format each, as ``SPEC``; imported only when formats are needed.
_FORMAT_MODULES: tuple[str, ...] = ("core._pickle_format", "core._yaml_format", "core._xml_format", "core._source_format")


@hookimpl
def tapster_formats() -> list[FormatSpec]:
    import importlib

    return [importlib.import_module(name).SPEC for name in _FORMAT_MODULES]
