"""Services: the tree of long-running things an application is made of.

Semantics follow Twisted's ``twisted.application.service``:

* A :class:`Service` has a ``name``, a ``parent`` and a ``running`` flag;
  ``setServiceParent(collection)`` adds it to a collection (leaving any
  previous parent), ``disownServiceParent()`` removes it.
* Start-up is two-phase: ``privilegedStartService()`` runs while the process
  may still be root (bind ports below 1024 here), then ``startService()``.
* A :class:`MultiService` starts its children in order and stops them in
  reverse order. ``stopService()`` returns ``None`` when every child stopped
  synchronously, else an awaitable that completes when all have.
* Adding a child to a running collection starts it at once; removing one from
  a running collection stops it. Two children may not share a name
  (``RuntimeError``).
* :func:`Application` is the root: a MultiService that also carries the
  process information (``processName``, ``uid``, ``gid``) twistd applies, and
  knows how to save itself.

Everything in a tree pickles: subclasses that hold sockets, tasks or handles
drop them in ``__getstate__`` and recreate them on start.

The interfaces (:class:`IService`, :class:`IServiceCollection`,
:class:`IProcess`) are ``typing.Protocol`` classes: a type checker matches them
by structure, and at run time they can be *called* the way Twisted code adapts
objects: ``IService(application)`` returns the application itself when it
provides the interface and raises ``TypeError`` otherwise;
``IService(obj, default)`` returns ``default`` instead of raising. (A type
checker does not let a Protocol be called: typed code spells
``IService(obj, None)`` as ``obj if isinstance(obj, IService) else None``.)
"""

from __future__ import annotations

import inspect
import logging
from abc import ABCMeta
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "IService",
    "IServiceCollection",
    "IProcess",
    "implementer",
    "Service",
    "MultiService",
    "Process",
    "Application",
    "Componentized",
    "loadApplication",
    "IServiceMaker",
    "ServiceMaker",
]

if TYPE_CHECKING:
    from tapster.core.plugin import IServiceMaker as IServiceMaker
    from tapster.core.plugin import ServiceMaker as ServiceMaker
else:
    def __getattr__(name: str) -> object:
        # Twisted keeps IServiceMaker and ServiceMaker in twisted.application.service; tapster defines
        # them once, in tapster.core.plugin (which imports this module, and pluggy: importing it here
        # at module level would be a cycle, and make every import of service pay for plugin discovery).
        if name in ("IServiceMaker", "ServiceMaker"):
            from tapster.core import plugin

            return getattr(plugin, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_NO_DEFAULT = object()
_log = logging.getLogger("tapster.service")
_I = TypeVar("_I", bound=type)

if TYPE_CHECKING:
    _ProtocolMeta = ABCMeta
else:
    _ProtocolMeta = type(Protocol)  # typing's metaclass of Protocol classes, an ABCMeta


class _InterfaceMeta(_ProtocolMeta):
    """Protocol classes that adapt like zope interfaces: ``IService(obj)`` → ``obj`` or TypeError.

    ``isinstance``/``issubclass`` are ABCMeta's, answered by :func:`_provides`
    (the class defines every name the interface requires), so they mean the
    same on every Python version: typing's own runtime protocol check has
    changed from version to version, and it looks at instance attributes.
    """

    # Any: an interface returns the object adapted (or the default), a concrete class an instance.
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_required" not in vars(cls):  # a concrete class deriving from an interface
            return super().__call__(*args, **kwargs)
        return cls._adapt(*args, **kwargs)

    def _adapt(cls, obj: object, default: object = _NO_DEFAULT) -> object:
        # As zope.interface does: the object's own ``__conform__`` first (a componentized
        # object answers with the component registered for the interface), then the object
        # itself when it provides the interface. Looked up on the class, not the instance,
        # so that an object with a catch-all ``__getattr__`` is not asked.
        conform = getattr(type(obj), "__conform__", None)
        if conform is not None:
            adapted = conform(obj, cls)
            if adapted is not None:
                return adapted
        if isinstance(obj, cls):
            return obj
        if default is not _NO_DEFAULT:
            return default
        raise TypeError(f"Could not adapt {obj!r} to {cls.__name__}")

    __instancecheck__ = ABCMeta.__instancecheck__
    __subclasscheck__ = ABCMeta.__subclasscheck__

    def providedBy(cls, obj: object) -> bool:
        """zope.interface's spelling of ``isinstance(obj, cls)``: ported code calls ``IService.providedBy(x)``."""
        return isinstance(obj, cls)

    def implementedBy(cls, klass: type) -> bool:
        """zope.interface's spelling of ``issubclass(klass, cls)`` (instances of ``klass`` provide ``cls``)."""
        if not isinstance(klass, type):
            raise TypeError(f"implementedBy() takes a class, not {type(klass).__name__}")
        return issubclass(klass, cls)


def implementer(*interfaces: type) -> Callable[[_I], _I]:
    """Declare that a class provides ``interfaces``: what a porter writes instead of zope's ``@implementer``.

    ``@implementer(IService) class MyService: ...`` makes
    ``IService.providedBy(MyService())`` (and ``isinstance``, and adaptation
    ``IService(obj)``) true even for a class that does not derive from
    tapster's bases, as a declaration does with zope.interface. The class
    records what it declared in ``__implemented__``. No zope.interface is
    needed: tapster's interfaces are ABCs, and this registers the class with each.
    """
    for interface in interfaces:
        if not isinstance(interface, ABCMeta):
            raise TypeError(f"implementer() takes interfaces, not {interface!r}")

    def decorate(cls: _I) -> _I:
        for interface in interfaces:
            interface.register(cls)  # type: ignore[attr-defined]  # ABCMeta.register, checked above
        declared = tuple(getattr(cls, "__implemented__", ()))
        cls.__implemented__ = declared + tuple(i for i in interfaces if i not in declared)  # type: ignore[attr-defined]
        return cls

    return decorate


def _provides(cls: type, other: type) -> object:
    """The structural check: ``other`` defines, at class level, every name ``cls`` requires.

    Returns True or NotImplemented, never False: NotImplemented leaves explicit
    subclasses and ``register()`` to ABCMeta's usual rules.
    """
    required: tuple[str, ...] = vars(cls)["_required"]
    if all(any(name in vars(base) for base in other.__mro__) for name in required):
        return True
    return NotImplemented


#: Every adapting interface made by :func:`_providedBy` (here and in other modules of core), in
#: creation order: what :meth:`Componentized.addComponent` asks whether a component provides.
_INTERFACES: list[type] = []


def _providedBy(*required: str) -> Callable[[_I], _I]:
    """Make a Protocol class an adapting interface checked by the names in ``required``.

    Set after the class body (not in it) so that ``_required`` is no member of
    the Protocol for a type checker; the hook must be a classmethod *on the
    class*, where ABCMeta looks for it (typing sets its own on each Protocol).
    """

    def decorate(cls: _I) -> _I:
        cls._required = required  # type: ignore[attr-defined]  # read by _InterfaceMeta and _provides
        cls.__subclasshook__ = classmethod(_provides)  # type: ignore[assignment]  # replaces typing's hook
        _INTERFACES.append(cls)
        return cls

    return decorate


@_providedBy("setName", "setServiceParent", "disownServiceParent", "privilegedStartService", "startService",
             "stopService")
@runtime_checkable
class IService(Protocol, metaclass=_InterfaceMeta):
    """A long-running thing that can be started and stopped, with a name and a parent.

    At run time an object provides it when its class defines the six methods;
    ``name``, ``parent`` and ``running`` are what a type checker also expects.
    """

    @property
    def name(self) -> str | None: ...

    @property
    def parent(self) -> IServiceCollection | None: ...

    @property
    def running(self) -> int: ...

    def setName(self, name: str) -> None: ...

    def setServiceParent(self, parent: IServiceCollection) -> None: ...

    def disownServiceParent(self) -> Awaitable[object] | None: ...

    def privilegedStartService(self) -> None: ...

    def startService(self) -> None: ...

    def stopService(self) -> Awaitable[object] | None: ...


@_providedBy("getServiceNamed", "addService", "removeService", "__iter__")
@runtime_checkable
class IServiceCollection(Protocol, metaclass=_InterfaceMeta):
    """A service that holds other services."""

    def getServiceNamed(self, name: str) -> IService: ...

    def __iter__(self) -> Iterator[IService]: ...

    def addService(self, service: IService) -> None: ...

    def removeService(self, service: IService) -> Awaitable[object] | None: ...


@_providedBy("processName", "uid", "gid")
@runtime_checkable
class IProcess(Protocol, metaclass=_InterfaceMeta):
    """Process-wide settings twistd applies: ``processName``, ``uid``, ``gid`` (names or numbers)."""

    processName: str | None
    uid: int | str | None
    gid: int | str | None


@_providedBy("setStyle", "save")
@runtime_checkable
class _IPersistable(Protocol, metaclass=_InterfaceMeta):
    """An object that saves itself to a file in one of several formats (Twisted's ``sob.IPersistable``).

    Public as :class:`tapster.core.persist.IPersistable`; defined here, where the
    interface machinery lives, so that importing :mod:`tapster.core.persist` stays light.
    """

    def setStyle(self, style: str) -> None: ...

    def save(self, tag: str | None = None, filename: str | None = None,
             passphrase: str | bytes | None = None) -> object: ...


_IPersistable.__module__ = "tapster.core.persist"
_IPersistable.__name__ = _IPersistable.__qualname__ = "IPersistable"

#: Where a componentized object keeps its saved components: ``{"module.Interface": component}``.
COMPONENTS_ATTRIBUTE = "_adapterCache"
#: Where it keeps its transient ones (``_v_``: left out of every saved file).
TRANSIENT_COMPONENTS_ATTRIBUTE = "_v_adapterCache"


def _qual(interface: object) -> str:
    """The key a component is registered under: the interface's dotted path, as Twisted's ``reflect.qual``."""
    module = getattr(interface, "__module__", None)
    qualname = getattr(interface, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"components are registered for interfaces (classes), not {interface!r}")
    return f"{module}.{qualname}"


def _transient(interface: object, component: object) -> bool:
    """Whether a component must stay out of saved files: it, or the interface, says ``transientComponent``."""
    return bool(getattr(interface, "transientComponent", False) or getattr(component, "transientComponent", False))


def _declared(obj: object) -> list[type]:
    """The interfaces ``obj`` provides: declared with :func:`implementer` (along its MRO), then core's, by structure."""
    found: list[type] = []
    for klass in type(obj).__mro__:
        for interface in vars(klass).get("__implemented__", ()):
            if interface not in found:
                found.append(interface)
    for interface in _INTERFACES:
        if interface not in found and isinstance(obj, interface):
            found.append(interface)
    return found


class Componentized:
    """Twisted's ``Componentized``: an object that keeps one component per interface, and adapts to them.

    ``setComponent(IFoo, foo)`` makes ``obj.getComponent(IFoo)`` and the
    adaptation ``IFoo(obj)`` return ``foo``. Components are keyed by the
    interface's dotted path (plain text), so they are saved with the object in
    every format that saves objects (pickle, source and, for classes declared
    safe, XML). A component is *transient* (kept in memory, never saved) when
    its class or the interface has a true ``transientComponent`` attribute:
    what holds an open file or a socket, such as a log observer, is rebuilt by
    the code that set it, not loaded from a file. A YAML recipe saves none.

    Twisted's adapter registry has no counterpart: ``getComponent`` falls back
    to the object itself when it provides the interface, then to ``default``.
    """

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop(TRANSIENT_COMPONENTS_ATTRIBUTE, None)
        return state

    def _components(self, transient: bool = False) -> dict[str, object]:
        """The dict of saved (or transient) components, made on first use (older files have none)."""
        attribute = TRANSIENT_COMPONENTS_ATTRIBUTE if transient else COMPONENTS_ATTRIBUTE
        found = self.__dict__.get(attribute)
        if not isinstance(found, dict):
            found = {}
            setattr(self, attribute, found)
        return found

    def _stored(self, key: str) -> tuple[bool, object]:
        for transient in (True, False):
            cache = self.__dict__.get(TRANSIENT_COMPONENTS_ATTRIBUTE if transient else COMPONENTS_ATTRIBUTE)
            if isinstance(cache, dict) and key in cache:
                return True, cache[key]
        return False, None

    def setComponent(self, interfaceClass: object, component: object) -> None:
        """Register ``component`` as this object's provider of ``interfaceClass`` (replacing any other)."""
        key = _qual(interfaceClass)
        transient = _transient(interfaceClass, component)
        self._components(not transient).pop(key, None)
        self._components(transient)[key] = component

    def addComponent(self, component: object, ignoreClass: object = 0) -> None:
        """Register ``component`` for every interface it provides.

        The interfaces are those its class declares with :func:`implementer`
        and core's interfaces it provides by structure (a MultiService provides
        IService and IServiceCollection). Twisted's ``ignoreClass`` is accepted
        and changes nothing: without an adapter registry, every interface the
        component provides is appropriate.
        """
        for interface in _declared(component):
            self.setComponent(interface, component)

    def setAdapter(self, interfaceClass: object, adapterClass: Callable[[Any], object]) -> None:
        """Register ``adapterClass(self)`` for ``interfaceClass``."""
        self.setComponent(interfaceClass, adapterClass(self))

    def addAdapter(self, adapterClass: Callable[[Any], object], ignoreClass: object = 0) -> object:
        """``addComponent(adapterClass(self))``; returns the adapter made."""
        adapter = adapterClass(self)
        self.addComponent(adapter, ignoreClass)
        return adapter

    def unsetComponent(self, interfaceClass: object) -> None:
        """Forget the component registered for ``interfaceClass`` (KeyError if there is none)."""
        key = _qual(interfaceClass)
        for transient in (True, False):
            cache = self.__dict__.get(TRANSIENT_COMPONENTS_ATTRIBUTE if transient else COMPONENTS_ATTRIBUTE)
            if isinstance(cache, dict) and key in cache:
                del cache[key]
                return
        raise KeyError(key)

    def removeComponent(self, component: object) -> list[object]:
        """Forget ``component`` for every interface it is registered for; returns those interfaces.

        An interface whose module is not imported is returned as its dotted
        path: a loaded file never makes this import anything.
        """
        removed: list[object] = []
        for transient in (True, False):
            cache = self.__dict__.get(TRANSIENT_COMPONENTS_ATTRIBUTE if transient else COMPONENTS_ATTRIBUTE)
            if not isinstance(cache, dict):
                continue
            for key in [k for k, v in cache.items() if v is component]:
                del cache[key]
                removed.append(_named(key))
        return removed

    def getComponent(self, interface: object, default: object = None) -> object:
        """The component registered for ``interface``; else this object if it provides it; else ``default``."""
        found, component = self._stored(_qual(interface))
        if found:
            return component
        if isinstance(interface, type):
            try:
                if isinstance(self, interface):
                    return self
            except TypeError:  # a Protocol class that is not runtime-checkable
                pass
        return default

    def __conform__(self, interface: object) -> object:
        """What ``IFoo(obj)`` asks first: the component registered for ``IFoo``, or None."""
        return self._stored(_qual(interface))[1]


def _named(key: str) -> object:
    """The object ``module.name`` if its module is already imported, else ``key`` itself."""
    import sys

    for cut in range(key.count("."), 0, -1):
        parts = key.split(".")
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: object = module
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return key
        return obj
    return key


def _gather(results: list[Awaitable[object] | None], errors: list[Exception]) -> Awaitable[object] | None:
    """Combine the awaitables among ``results`` into one, or return None if there are none.

    ``errors`` are the exceptions children raised synchronously. Every child
    is stopped whatever the others do (as with Twisted's DeferredList); the
    first error is then raised, here when nothing is pending, else by the
    combined awaitable once all children have finished, and any further
    errors are logged. With a running event loop the children's stops are
    scheduled at once (so they progress even if the caller never awaits, as
    Deferreds would); without one, the caller gets a coroutine to drive.
    """
    pending = [r for r in results if inspect.isawaitable(r)]
    if not pending:
        _raise_first(errors)
        return None
    import asyncio

    async def wait_all() -> list[object]:
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        _raise_first(errors + [o for o in outcomes if isinstance(o, Exception)])
        return outcomes

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return wait_all()
    return loop.create_task(wait_all())


def _raise_first(errors: list[Exception]) -> None:
    for extra in errors[1:]:
        _log.error("error stopping a service: %r", extra, exc_info=extra)
    if errors:
        raise errors[0]


class Service:
    """The base service: override ``startService``/``stopService``, call up to the base."""

    name: str | None = None
    parent: IServiceCollection | None = None
    running = 0

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<{type(self).__name__}{label} {'running' if self.running else 'stopped'}>"

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("running", None)  # a loaded application is not running yet
        return state

    def setName(self, name: str) -> None:
        """Name the service; not allowed while it has a parent (the parent indexes it by name)."""
        if self.parent is not None:
            raise RuntimeError("cannot change name when parent exists")
        self.name = name

    def setServiceParent(self, parent: IServiceCollection) -> None:
        """Add this service to ``parent`` (leaving any previous parent first)."""
        if self.parent is not None:
            self.disownServiceParent()
        self.parent = parent
        try:
            return parent.addService(self)
        except BaseException:
            self.parent = None  # not added (a duplicate name): do not point at a parent that lacks us
            raise

    def disownServiceParent(self) -> Awaitable[object] | None:
        """Leave the parent; returns what its ``removeService`` returned (maybe an awaitable)."""
        if self.parent is None:
            raise RuntimeError(f"{self!r} has no parent to leave")
        result = self.parent.removeService(self)
        self.parent = None
        return result

    def privilegedStartService(self) -> None:
        """First start-up phase, possibly as root: acquire privileged resources only."""

    def startService(self) -> None:
        self.running = 1

    def stopService(self) -> Awaitable[object] | None:
        """Stop; may return an awaitable when stopping takes time."""
        self.running = 0
        return None


class MultiService(Service):
    """A service that starts, stops and names a list of child services."""

    def __init__(self) -> None:
        self.services: list[IService] = []
        self.namedServices: dict[str, IService] = {}
        self.parent = None

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        for service in self:
            service.privilegedStartService()

    def startService(self) -> None:
        Service.startService(self)
        for service in self:
            service.startService()

    def stopService(self) -> Awaitable[object] | None:
        """Stop the children in reverse order; an awaitable if any child's stop is asynchronous.

        A child whose stop fails does not keep the others running (as with
        Twisted's maybeDeferred/DeferredList): one broken service must not leave
        the rest of the application's ports open at shutdown. The first failure
        is raised once every child has been stopped (by the awaitable, if any).
        """
        Service.stopService(self)
        results: list[Awaitable[object] | None] = []
        errors: list[Exception] = []
        for service in reversed(list(self)):
            try:
                results.append(service.stopService())
            except Exception as e:
                errors.append(e)
        return _gather(results, errors)

    def getServiceNamed(self, name: str) -> IService:
        """The child called ``name`` (KeyError if there is none)."""
        return self.namedServices[name]

    def __iter__(self) -> Iterator[IService]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    def addService(self, service: IService) -> None:
        """Add a child; it is started at once if this collection is running."""
        if service.name is not None:
            if service.name in self.namedServices:
                raise RuntimeError(f"cannot have two services with same name {service.name!r}")
            self.namedServices[service.name] = service
        self.services.append(service)
        if self.running:
            # A collection that is already running has passed its privileged phase;
            # the child gets both phases now.
            service.privilegedStartService()
            service.startService()

    def removeService(self, service: IService) -> Awaitable[object] | None:
        """Remove a child; it is stopped if this collection is running."""
        if service.name:
            del self.namedServices[service.name]
        self.services.remove(service)
        if self.running:
            return service.stopService()
        return None


class Process:
    """Process settings: the name shown in ``ps`` and the user and group to run as."""

    processName: str | None = None
    uid: int | str | None = None
    gid: int | str | None = None

    def __init__(self, uid: int | str | None = None, gid: int | str | None = None) -> None:
        self.uid = uid
        self.gid = gid


class Application(MultiService, Process, Componentized):
    """The root of a saved application: a named MultiService with process settings.

    ``uid``/``gid`` may be numbers or names; twistd resolves names on the
    machine where it runs. ``persistStyle`` is the format the application was
    last saved or loaded in, so that :meth:`save` and twistd's shutdown save
    write it back the same way.

    As Twisted's, the application is componentized (:class:`Componentized`):
    ``setComponent``/``getComponent``/``addComponent``/``unsetComponent``, and
    ``IFoo(application)`` returns the component set for ``IFoo``. Without one,
    ``IService(app)``, ``IServiceCollection(app)`` and ``IProcess(app)``
    return the application itself, and ``IPersistable(app)`` a
    :class:`tapster.core.persist.Persistent` bound to it, as Twisted's does
    (``app.setStyle``/``app.save`` do the same directly).
    """

    persistStyle = "pickle"

    def __init__(self, name: str, uid: int | str | None = None, gid: int | str | None = None) -> None:
        MultiService.__init__(self)
        Process.__init__(self, uid, gid)
        self.name = name
        self.processName = name

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        for transient in [k for k in state if k.startswith("_v_")]:  # volatile attributes, ZODB-style
            del state[transient]
        return state

    def __conform__(self, interface: object) -> object:
        """``IPersistable(app)`` is a :class:`tapster.core.persist.Persistent` of the app, as in Twisted.

        A component set for an interface wins, as for any componentized object.
        """
        found = Componentized.__conform__(self, interface)
        if found is None and interface is _IPersistable:
            from tapster.core.persist import Persistent

            return Persistent(self, self.name or "application")
        return found

    def setStyle(self, style: str) -> None:
        """Choose the format of the next :meth:`save` (and of twistd's shutdown save).

        Twisted's styles map onto tapster's formats by name: ``"pickle"``
        (``.tap``), ``"source"`` (``.tas``), ``"xml"`` (``.tax``); tapster's
        ``"yaml"`` and any format a plugin adds are accepted too. An unknown
        style is a :class:`tapster.core.errors.PersistError` at once (Twisted
        would silently save a pickle).
        """
        from tapster.core import persist

        self.persistStyle = persist.format_for(style).name

    def save(self, tag: str | None = None, filename: str | None = None,
             passphrase: str | bytes | None = None) -> str:
        """Save atomically as ``<name>-<tag>.<ext>``, ``<name>.<ext>`` or ``filename``, in this application's format.

        Returns the path written. Safe to call while the application runs:
        what is process-specific is left out of the file. ``passphrase``
        encrypts the file (``<name>-<tag>.e<ext>``); without one, an
        application loaded encrypted is saved encrypted again.
        """
        from tapster.core import persist

        return persist.saveApplication(self, tag=tag, filename=filename, passphrase=passphrase)

    # -- the 2002 application API (seed 004: typed into the console of a running server) -----

    @property
    def ports(self) -> list[IService]:
        """The listening services of the tree, in order: ``application.ports[1].factory`` is the second's factory."""
        from tapster.core import internet

        found: list[IService] = []
        stack: list[object] = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, (internet._AbstractServer, internet.StreamServerEndpointService)):
                found.append(node)
            children = getattr(node, "services", None)
            if isinstance(children, list):
                stack.extend(reversed(children))
        return found

    def _add(self, kind: str, *args: object, **kwargs: object) -> IService:
        """A ``kind`` service (``TCPServer``...) made from the arguments, added (and started, if running)."""
        from tapster.core import internet

        service: IService = getattr(internet, kind)(*args, **kwargs)
        service.setServiceParent(self)
        return service

    def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> IService:
        """Add a :class:`~tapster.core.internet.TCPServer`, as Twisted's old ``app.listenTCP`` did."""
        return self._add("TCPServer", port, factory, backlog=backlog, interface=interface)

    def listenUNIX(self, filename: str, factory: object, backlog: int = 50, mode: int = 0o666) -> IService:
        return self._add("UNIXServer", filename, factory, backlog=backlog, mode=mode)

    def listenSSL(self, port: int, factory: object, ctxFactory: object, backlog: int = 50,
                  interface: str = "") -> IService:
        return self._add("SSLServer", port, factory, ctxFactory, backlog=backlog, interface=interface)

    def listenUDP(self, port: int, proto: object, interface: str = "", maxPacketSize: int = 8192) -> IService:
        return self._add("UDPServer", port, proto, interface=interface, maxPacketSize=maxPacketSize)

    def connectTCP(self, host: str, port: int, factory: object, timeout: float = 30,
                   bindAddress: object = None) -> IService:
        """Add a :class:`~tapster.core.internet.TCPClient` (it connects when the application runs)."""
        return self._add("TCPClient", host, port, factory, timeout=timeout, bindAddress=bindAddress)

    def connectUNIX(self, address: str, factory: object, timeout: float = 30) -> IService:
        return self._add("UNIXClient", address, factory, timeout=timeout)

    def connectSSL(self, host: str, port: int, factory: object, ctxFactory: object, timeout: float = 30,
                   bindAddress: object = None) -> IService:
        return self._add("SSLClient", host, port, factory, ctxFactory, timeout=timeout, bindAddress=bindAddress)


#: Twisted's kinds of application file, with tapster's names for them (``"python"`` is a .tac).
_KINDS = {"pickle": "pickle", "source": "source", "xml": "xml", "python": "python", "tap": "pickle",
          "tas": "source", "tax": "xml", "tac": "python", "py": "python"}


def loadApplication(filename: str, kind: str | None = None, passphrase: str | bytes | None = None) -> IService:
    """Load the application in ``filename``: Twisted's ``loadApplication(filename, kind, passphrase=None)``.

    ``kind`` is one of Twisted's: ``"pickle"`` (a ``.tap``), ``"source"``
    (``.tas``), ``"xml"`` (``.tax``, tapster's safe XML), ``"python"`` (a
    ``.tac``: the file runs and its ``application`` is returned); any other
    format tapster knows by name (``"yaml"``, one a plugin adds) works too,
    and None recognises the format from the file (never running a safe-named
    file as code). ``passphrase`` opens an encrypted file. Errors are
    :class:`tapster.core.errors.TapsterError` naming the file.
    """
    from tapster.core import persist
    from tapster.core.errors import TapsterError

    wanted = _KINDS.get(kind, kind) if kind is not None else None
    if wanted == "python":
        application = persist.loadValueFromFile(filename, "application", passphrase)
        if not isinstance(application, IService):
            raise TapsterError(f"{filename}: `application` is a {type(application).__name__}, not an application "
                               "(use tapster.core.service.Application(name))")
        return application
    return persist.load(filename, kind=wanted, passphrase=passphrase)
