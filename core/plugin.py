"""Finding plugins and running hooks.

Two mechanisms, on purpose:

* **mktap plugins** (``mktap qotd``) are entry points in the group
  ``mktap.plugins``. Their *names* are read from package metadata without
  importing anything; a plugin module is imported only when it is used or
  when a listing needs its description. One plugin that fails to import never
  breaks the others.
* **Hooks** (formats, reactors, twistd lifecycle) go through pluggy, declared
  in :mod:`tapster.core.hookspecs`; third-party hook modules register under the entry
  point group ``tapster.hooks``.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, TypeVar

from tapster.core._assembly import RECIPE_ATTRIBUTE, Reporter, attach, build_application, make_service, recipe_for
from tapster.core.errors import PluginError, UnknownPluginError

if TYPE_CHECKING:
    import pluggy

    from tapster.core.hookspecs import FormatSpec, ReactorSpec
    from tapster.core.service import IService
    from tapster.core.usage import Options

__all__ = [
    "PLUGIN_GROUP",
    "HOOK_GROUP",
    "PluginEntry",
    "ServiceMaker",
    "plugin_entries",
    "find_plugin",
    "load_plugin",
    "plugin_rows",
    "get_plugin_manager",
    "reactor_specs",
    "format_specs",
    # building applications from plugins (implemented in tapster.core._assembly)
    "make_service",
    "build_application",
    "attach",
    "recipe_for",
    "Reporter",
    "RECIPE_ATTRIBUTE",
]

PLUGIN_GROUP = "mktap.plugins"
HOOK_GROUP = "tapster.hooks"

_log = logging.getLogger("tapster.plugin")


@dataclass(frozen=True)
class ServiceMaker:
    """A loaded plugin: what mktap and twistd need of it.

    ``options`` is the plugin's Options class, ``makeService(config)`` builds
    its service tree, ``description`` is one line for listings.
    """

    tapname: str
    description: str
    options: type[Options]
    makeService: Callable[[Options], IService]
    module: object = None  # the module (or object) the entry point names


@dataclass(frozen=True)
class PluginEntry:
    """One entry point of the ``mktap.plugins`` group, not yet imported."""

    name: str
    value: str
    distribution: str
    version: str = ""
    others: tuple[str, ...] = field(default=())  # other distributions claiming the same name

    def load(self) -> ServiceMaker:
        """Import the plugin and check it has what a plugin must have."""
        module_name, _, attr = self.value.partition(":")
        try:
            obj = importlib.import_module(module_name.strip())
            for part in filter(None, attr.strip().split(".")):
                obj = getattr(obj, part)
        except Exception as e:
            raise PluginError(
                f"plugin {self.name!r} (from {self.distribution}) failed to import: {type(e).__name__}: {e}"
            ) from e
        missing = [a for a in ("Options", "makeService") if not hasattr(obj, a)]
        if missing:
            raise PluginError(
                f"plugin {self.name!r} ({self.value}) has no {' or '.join(missing)}: "
                "a plugin module must define Options and makeService(config)"
            )
        description = getattr(obj, "description", None) or (getattr(obj, "__doc__", None) or "").strip()
        description = description.strip().splitlines()[0] if description.strip() else "(no description)"
        return ServiceMaker(
            tapname=getattr(obj, "tapname", self.name),
            description=description,
            options=obj.Options,
            makeService=obj.makeService,
            module=obj,
        )


def plugin_entries() -> dict[str, PluginEntry]:
    """Name → PluginEntry for every installed plugin, reading metadata only."""
    return dict(_plugin_entries())


@lru_cache(maxsize=1)
def _plugin_entries() -> tuple[tuple[str, PluginEntry], ...]:
    import importlib_metadata

    found: dict[str, list[PluginEntry]] = {}
    seen: set[tuple[str, str, str]] = set()
    for ep in importlib_metadata.entry_points(group=PLUGIN_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        key = (ep.name, ep.value, dist_name)
        if key in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(key)
        entry = PluginEntry(ep.name, ep.value, dist_name, dist.version if dist is not None else "")
        found.setdefault(ep.name, []).append(entry)
    result: dict[str, PluginEntry] = {}
    for name, entries in found.items():
        first = entries[0]
        if len(entries) > 1:
            others = tuple(e.distribution for e in entries[1:])
            first = PluginEntry(first.name, first.value, first.distribution, first.version, others)
        result[name] = first
    return tuple(sorted(result.items()))


def find_plugin(name: str) -> PluginEntry:
    """The entry for ``name``; PluginError with the closest names when there is none."""
    entries = plugin_entries()
    try:
        return entries[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    known = ", ".join(entries) or "none installed"
    raise UnknownPluginError(f"unknown plugin {name!r}{hint} (installed: {known})")


def load_plugin(name: str) -> ServiceMaker:
    """Find and import the plugin ``name``."""
    return find_plugin(name).load()


def plugin_rows(entries: dict[str, PluginEntry] | None = None) -> list[tuple[str, str]]:
    """(name, description) for each plugin, importing each module (but not its heavy deps).

    A plugin that fails to load is listed as broken with the reason; two
    distributions claiming one name are flagged on that row.
    """
    rows = []
    for name, entry in (plugin_entries() if entries is None else entries).items():
        try:
            text = entry.load().description
        except PluginError as e:
            text = f"BROKEN: {e}"
        if entry.others:
            text += f"  [WARNING: also claimed by {', '.join(entry.others)}; using {entry.distribution}]"
        rows.append((name, text))
    return rows


# -- pluggy ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide pluggy manager with tapster's hookspecs and every hook module."""
    import pluggy

    from tapster.core import _builtin_hooks, hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin_hooks, name="tapster.builtin")
    try:
        pm.load_setuptools_entrypoints(HOOK_GROUP)
    except Exception as e:  # one broken hook package must not break tapster
        _log.warning("could not load tapster.hooks plugins: %s", e)
    return pm


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_Spec = TypeVar("_Spec", bound=_Named)


def _collect(results: list[list[_Spec]], kind: str) -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    # pluggy returns the most recently registered first; built-ins were registered first,
    # so walk in reverse to let built-ins keep their names.
    for batch in reversed(results):
        for spec in batch or ():
            if spec.name in specs:
                _log.warning("%s %r is provided twice; keeping the first", kind, spec.name)
                continue
            specs[spec.name] = spec
    return specs


def reactor_specs() -> dict[str, ReactorSpec]:
    """Name → ReactorSpec from every ``tapster_reactors`` implementation."""
    return _collect(get_plugin_manager().hook.tapster_reactors(), "reactor")


def format_specs() -> dict[str, FormatSpec]:
    """Name → FormatSpec from every ``tapster_formats`` implementation."""
    return _collect(get_plugin_manager().hook.tapster_formats(), "format")
