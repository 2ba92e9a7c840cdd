"""tapster's own implementations of the hooks in :mod:`core.hookspecs`.

Registered by :func:`core.plugin.get_plugin_manager` exactly like a third-party
hook module, so built-ins take no shortcut.
"""

from __future__ import annotations

import functools
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


#: The built-in formats: (name, extension, module, description, safe). Each module also
#: defines the same ``SPEC`` (a test keeps the two in step); listing them here lets
#: ``twistd -f app.tap`` import the pickle format alone instead of all four (the XML
#: and YAML modules and PyYAML cost tens of milliseconds at start-up).
_FORMATS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("pickle", "tap", "core._pickle_format",
     "Python pickle: fastest; loading runs code, so load trusted files only", False),
    ("yaml", "yaml", "core._yaml_format",
     "YAML recipe: plugin names and options, rebuilt by calling each plugin; hand-editable, safe to load", True),
    ("xml", "tax", "core._xml_format",
     "XML: readable; loading runs no code (classes only from tapster's core and installed plugins)", True),
    ("source", "tas", "core._source_format",
     "Python source: readable and diffable, rebuilds the application when run; runs code (trusted files only)", False),
)


def _deferred(module: str, function: str) -> Any:
    """A stand-in for ``module.function`` that imports the module on first call."""

    def call(*args: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), function)(*args)

    call.__qualname__ = call.__name__ = f"{module}.{function}"
    return call


@functools.lru_cache(maxsize=1)
def _format_specs() -> tuple[FormatSpec, ...]:
    return tuple(
        FormatSpec(name, extension, description, _deferred(module, "dump"), _deferred(module, "load"),
                   _deferred(module, "sniff"), safe)
        for name, extension, module, description, safe in _FORMATS
    )


@hookimpl
def tapster_formats() -> list[FormatSpec]:
    return list(_format_specs())
