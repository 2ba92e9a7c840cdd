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
import inspect
import logging
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from tapster.core._assembly import RECIPE_ATTRIBUTE, Reporter, attach, build_application, make_service, recipe_for
from tapster.core.errors import PluginError, UnknownPluginError
from tapster.core.service import _InterfaceMeta, _providedBy, implementer

if TYPE_CHECKING:
    import pluggy

    from tapster.core.hookspecs import FormatSpec, ReactorSpec
    from tapster.core.service import IService
    from tapster.core.usage import Options

__all__ = [
    "PLUGIN_GROUP",
    "HOOK_GROUP",
    "IPlugin",
    "IServiceMaker",
    "ServiceMaker",
    "LoadedPlugin",
    "PluginEntry",
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
_C = TypeVar("_C", bound=type)


# -- Twisted's plugin interfaces and ServiceMaker ----------------------------------


def _marker(cls: _C) -> _C:
    """Make an adapting interface that only declared classes provide (``@implementer``), by no structure."""
    cls._required = ()  # type: ignore[attr-defined]  # read by _InterfaceMeta: this is an interface
    cls.__subclasshook__ = classmethod(lambda _cls, _other: NotImplemented)  # type: ignore[assignment]
    return cls


@_marker
@runtime_checkable
class IPlugin(Protocol, metaclass=_InterfaceMeta):
    """Twisted's marker for plugin objects (``twisted.plugin.IPlugin``): provided only when declared.

    tapster finds plugins through entry points, not by scanning for providers,
    so the marker is accepted for porting (``@implementer(IServiceMaker, IPlugin)``)
    and answers ``IPlugin.providedBy(obj)``; nothing requires it.
    """


@_providedBy("tapname", "description", "options", "makeService")
@runtime_checkable
class IServiceMaker(Protocol, metaclass=_InterfaceMeta):
    """An object that builds a service from options: what a Twisted-style entry point names.

    ``tapname`` is the command name, ``description`` one line for listings,
    ``options`` an Options subclass and ``makeService(options)`` returns the
    service. Provided by classes that define all four at class level, or that
    declare it with ``@implementer(IServiceMaker)``.
    """

    tapname: str
    description: str

    @property
    def options(self) -> type[Options]: ...

    def makeService(self, options: Options) -> IService: ...


def _resolve(dotted: str) -> Any:
    """The module (or module attribute) ``dotted`` names, as Twisted's ``namedAny`` finds it."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as e:
        parent, _, attr = dotted.rpartition(".")
        if not parent or e.name != dotted:
            raise
        return getattr(_resolve(parent), attr)


@implementer(IServiceMaker, IPlugin)
class ServiceMaker:
    """Twisted's ``ServiceMaker(name, module, description, tapname)``: a plugin whose code lives elsewhere.

    ``module`` is the dotted name of a module defining ``Options`` and
    ``makeService(config)``; it is imported only when :attr:`options` or
    :attr:`makeService` is first used, so listing plugins never imports it.
    """

    def __init__(self, name: str, module: str, description: str, tapname: str) -> None:
        self.name = name
        self.module = module
        self.description = description
        self.tapname = tapname

    @property
    def options(self) -> type[Options]:
        """The module's ``Options`` class (importing the module)."""
        options: type[Options] = _resolve(self.module).Options
        return options

    @property
    def makeService(self) -> Callable[[Options], IService]:
        """The module's ``makeService`` function (importing the module)."""
        make: Callable[[Options], IService] = _resolve(self.module).makeService
        return make

    def __repr__(self) -> str:
        return f"<ServiceMaker {self.tapname!r} ({self.name}) from {self.module}>"


# -- loading ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedPlugin:
    """A loaded plugin, whatever shape its entry point has: what mktap and twistd need of it.

    ``options`` is the plugin's Options class, ``makeService(config)`` builds
    its service tree, ``description`` is one line for listings.
    """

    tapname: str
    description: str
    options: type[Options]
    makeService: Callable[[Options], IService]
    module: object = None  # the module (or object) the plugin's code lives in


def _has(obj: object, name: str) -> bool:
    """Whether ``obj`` has ``name``, without running a property (a ServiceMaker's would import its module)."""
    if isinstance(obj, types.ModuleType):
        return hasattr(obj, name)
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def _shape(obj: object) -> str | None:
    """``"maker"`` (IServiceMaker), ``"module"`` (Options, makeService), ``"ports"`` (Options, getPorts)."""
    if not isinstance(obj, type) and (isinstance(obj, IServiceMaker) or (_has(obj, "options")
                                                                         and _has(obj, "makeService"))):
        return "maker"
    if _has(obj, "Options") and _has(obj, "makeService"):
        return "module"
    if _has(obj, "Options") and _has(obj, "getPorts"):
        return "ports"
    return None


def _first_line(text: object) -> str:
    lines = text.strip().splitlines() if isinstance(text, str) else []
    return lines[0].strip() if lines else "(no description)"


def _describe(obj: object) -> str:
    """The one-line description of a plugin object, importing nothing more."""
    if _shape(obj) == "ports" and not getattr(obj, "description", None):
        return _first_line(getattr(obj, "usage_message", None) or getattr(obj, "__doc__", None))
    return _first_line(getattr(obj, "description", None) or getattr(obj, "__doc__", None))


def _ports_options(module: Any) -> type[Options]:
    """The tap module's Options, with its ``usage_message`` as the ``--help`` text when it has no longdesc."""
    options: type[Options] = module.Options
    message = getattr(module, "usage_message", None)
    if isinstance(message, str) and message.strip() and not getattr(options, "longdesc", None):
        options = type(options.__name__, (options,), {"longdesc": message, "__module__": options.__module__})
    return options


def _ports_service(name: str, getPorts: Callable[..., Any]) -> Callable[[Options], IService]:
    """``makeService`` for a 2002 tap module: one listening service per ``(port, factory)`` of ``getPorts``.

    ``getPorts(app, config)`` is given the MultiService that will hold the
    ports (a port is a number or an endpoint description).
    """

    def makeService(config: Options) -> IService:
        from tapster.core import endpoints
        from tapster.core.service import MultiService

        container = MultiService()
        pairs = getPorts(container, config)
        try:
            pairs = [(port, factory) for port, factory in pairs]
        except (TypeError, ValueError):
            raise PluginError(f"plugin {name!r}: getPorts(app, config) must return [(port, factory), ...], "
                              f"not {type(pairs).__name__}") from None
        for port, factory in pairs:
            if isinstance(port, bool) or not isinstance(port, (int, str)):
                raise PluginError(f"plugin {name!r}: getPorts gave {port!r} as a port: "
                                  "give a port number or an endpoint description")
            endpoints.service(port, factory).setServiceParent(container)
        return container

    return makeService


@dataclass(frozen=True)
class PluginEntry:
    """One entry point of the ``mktap.plugins`` group, not yet imported."""

    name: str
    value: str
    distribution: str
    version: str = ""
    others: tuple[str, ...] = field(default=())  # other distributions claiming the same name

    def _import(self) -> object:
        module_name, _, attr = self.value.partition(":")
        try:
            obj: object = importlib.import_module(module_name.strip())
            for part in filter(None, attr.strip().split(".")):
                obj = getattr(obj, part)
        except Exception as e:
            raise PluginError(
                f"plugin {self.name!r} (from {self.distribution}) failed to import: {type(e).__name__}: {e}"
            ) from e
        if _shape(obj) is None:
            raise PluginError(
                f"plugin {self.name!r} ({self.value}) has no Options and makeService: a plugin must be a module "
                "with Options and makeService(config), a service maker with tapname, description, options and "
                "makeService, or a tap module with Options and getPorts(app, config)"
            )
        return obj

    def describe(self) -> str:
        """The plugin's one-line description: imports the entry point, but not a ServiceMaker's module."""
        return _describe(self._import())

    def load(self) -> LoadedPlugin:
        """Import the plugin and check it has what a plugin must have."""
        obj: Any = self._import()
        description = _describe(obj)
        shape = _shape(obj)
        if shape == "module":
            return LoadedPlugin(getattr(obj, "tapname", self.name), description, obj.Options, obj.makeService, obj)
        if shape == "ports":
            return LoadedPlugin(self.name, description, _ports_options(obj), _ports_service(self.name, obj.getPorts),
                                obj)
        try:  # a service maker: its options and makeService may import the module it names
            options, make = obj.options, obj.makeService
            module = _resolve(obj.module) if isinstance(obj, ServiceMaker) else obj
        except Exception as e:
            raise PluginError(
                f"plugin {self.name!r} (from {self.distribution}) failed to import "
                f"{getattr(obj, 'module', self.value)}: {type(e).__name__}: {e}"
            ) from e
        return LoadedPlugin(getattr(obj, "tapname", None) or self.name, description, options, make, module)


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


def load_plugin(name: str) -> LoadedPlugin:
    """Find and import the plugin ``name``."""
    return find_plugin(name).load()


def plugin_rows(entries: dict[str, PluginEntry] | None = None) -> list[tuple[str, str]]:
    """(name, description) for each plugin, importing each entry point (not a ServiceMaker's module).

    A plugin that fails to load is listed as broken with the reason; two
    distributions claiming one name are flagged on that row.
    """
    rows = []
    for name, entry in (plugin_entries() if entries is None else entries).items():
        try:
            text = entry.describe()
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
