"""The object-graph walker shared by the XML and Python-source formats.

:func:`walk` turns an application into a neutral description made of the
node classes below, which a renderer writes out as text. The semantics are
pickle's, so that an application saves the same way in every format:

* Plain data (``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``,
  ``bytes``) becomes an :class:`Atom`; exact lists, tuples, sets, frozensets
  and dicts become :class:`Seq` and :class:`Mapping`.
* Classes and functions become a :class:`Global` naming their import path,
  checked now (a lambda or a class defined inside a function has none and is
  refused here rather than at load time).
* Any other object is reduced with ``copyreg``'s dispatch table or
  ``__reduce_ex__(4)``, exactly as pickle does, so ``__getstate__`` decides
  what is saved (services drop ``running`` and their port, a factory its
  ``numPorts``). The common result, "make an instance without calling
  ``__init__``, then restore its state", is an :class:`Instance`; anything
  else (an enum member, an ``OrderedDict``, a ``datetime``) is a :class:`Call`
  of the class with arguments. Bound methods are a :class:`Method`.
* Identity is kept: the first time a mutable object or an instance is seen it
  is remembered, and every later sighting is a :class:`Ref` to it, so shared
  objects stay shared and cycles (a service's ``parent`` pointing back at its
  collection) survive. Only nodes that something refers to get an ``id``,
  numbered from 1 in walk order.
* Objects that belong to a running process (sockets, open files, event
  loops, futures, tasks, threads, locks, generators, modules, the reactor,
  listening ports, transports) are refused with a :class:`PersistError` that
  names where the object sits (``application.services[0].args[1].sock``)
  and what to do about it; nothing is half written.

Renderers rebuild in walk order: an instance is created (and registered
under its id) before its state is rebuilt, so its state may refer back to it;
a tuple or a :class:`Call` needs its items or arguments first, so one that
contains itself cannot be rebuilt and is refused when walking.
"""

from __future__ import annotations

import copyreg
import importlib
import keyword
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from tapster.core.errors import PersistError

__all__ = [
    "Atom",
    "Global",
    "Ref",
    "Seq",
    "Mapping",
    "Instance",
    "Call",
    "Method",
    "Node",
    "Graph",
    "walk",
    "ATOM_TYPES",
    "apply_state",
    "is_identifier",
]

#: Types saved as plain values (never shared: they are immutable).
ATOM_TYPES: tuple[type, ...] = (type(None), bool, int, float, complex, str, bytes)


@dataclass(eq=False)
class Atom:
    """A plain immutable value."""

    value: Any


@dataclass(eq=False)
class Global:
    """A class or function, named by the module that defines it and its qualified name."""

    module: str
    qualname: str

    @property
    def path(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass(eq=False)
class Ref:
    """A second (or later) sighting of the object described by ``target``."""

    target: Node


@dataclass(eq=False)
class Seq:
    """An exact ``list``, ``tuple``, ``set`` or ``frozenset`` (``kind``)."""

    kind: str
    items: list[Node] = field(default_factory=list)
    id: int | None = None


@dataclass(eq=False)
class Mapping:
    """An exact ``dict``: (key, value) pairs in insertion order."""

    items: list[tuple[Node, Node]] = field(default_factory=list)
    id: int | None = None


@dataclass(eq=False)
class Instance:
    """``cls.__new__(cls, *args, **kwargs)``, then items added, then ``state`` restored (pickle's order).

    ``state`` is what ``__getstate__`` returned (``None``: nothing to restore);
    it is restored with ``__setstate__`` when the class has one, else into
    ``__dict__`` (and slots), never by calling ``__init__``.
    """

    cls: Global
    args: list[Node] = field(default_factory=list)
    kwargs: list[tuple[str, Node]] = field(default_factory=list)
    state: Node | None = None
    listitems: list[Node] | None = None
    dictitems: list[tuple[Node, Node]] | None = None
    id: int | None = None


@dataclass(eq=False)
class Call:
    """``func(*args)``, then items and ``state`` as for :class:`Instance` (pickle's REDUCE)."""

    func: Global
    args: list[Node] = field(default_factory=list)
    state: Node | None = None
    listitems: list[Node] | None = None
    dictitems: list[tuple[Node, Node]] | None = None
    id: int | None = None


@dataclass(eq=False)
class Method:
    """``getattr(obj, name)``: a bound method (of an instance, or a classmethod of a class)."""

    obj: Node
    name: str
    id: int | None = None
    #: ``module.qualname`` of the function behind the method ("" for a method implemented in C):
    #: what a safe format checks against the declarations.
    func: str = ""


Node = Atom | Global | Ref | Seq | Mapping | Instance | Call | Method


@dataclass(eq=False)
class Graph:
    """The result of :func:`walk`: the root node and the nodes something refers to, by id."""

    root: Node
    shared: list[Node]


def walk(obj: Any, name: str = "application") -> Graph:
    """Describe ``obj`` and everything it reaches; ``name`` starts the paths in error messages.

    Raises :class:`PersistError` naming the path of the first object that
    cannot be saved.
    """
    walker = _Walker()
    try:
        root = walker.node(obj, name, None)
    except RecursionError:
        raise PersistError(
            f"{name}: the application is nested too deeply to save in this format (use pickle)"
        ) from None
    shared = [n for n in walker.order if id(n) in walker.referenced]
    for number, node in enumerate(shared, start=1):
        node.id = number  # type: ignore[union-attr]  # shared nodes are the kinds with an id
    return Graph(root, shared)


# -- refusing what belongs to a process ------------------------------------------

# (module, qualname) of classes whose instances only make sense in the process that made them.
_PROCESS_CLASSES: dict[tuple[str, str], str] = {
    ("_socket", "socket"): "a socket.socket",
    ("socket", "socket"): "a socket.socket",
    ("_io", "_IOBase"): "an open file",
    ("io", "IOBase"): "an open file",
    ("threading", "Thread"): "a threading.Thread",
    ("_thread", "lock"): "a thread lock",
    ("_thread", "RLock"): "a thread lock",
    ("threading", "Condition"): "a threading.Condition",
    ("threading", "Event"): "a threading.Event",
    ("selectors", "BaseSelector"): "a selector",
    ("subprocess", "Popen"): "a subprocess.Popen",
    ("ssl", "SSLContext"): "an ssl.SSLContext (save a context factory from tapster.core.ssl instead)",
    ("ssl", "SSLObject"): "an ssl.SSLObject",
    ("mmap", "mmap"): "an mmap",
    ("builtins", "memoryview"): "a memoryview",
    ("builtins", "generator"): "a generator",
    ("builtins", "coroutine"): "a coroutine",
    ("builtins", "async_generator"): "an async generator",
    ("builtins", "frame"): "a frame",
    ("builtins", "traceback"): "a traceback",
    ("builtins", "code"): "a code object",
    ("weakref", "ReferenceType"): "a weak reference",
    ("tapster.core._reactor.loop", "AsyncioReactor"): "the reactor",
    ("tapster.core._reactor.ports", "ListeningPort"): "a listening port",
    ("tapster.core._reactor.ports", "DatagramPort"): "a listening datagram port",
    ("tapster.core._reactor.ports", "Connector"): "a connector",
    ("tapster.core._reactor.ports", "DatagramTransport"): "a datagram transport",
    ("tapster.core._reactor.transport", "Transport"): "a connection's transport",
    ("tapster.core._reactor.delayedcall", "DelayedCall"): "a scheduled call (DelayedCall)",
}

_PROCESS_MODULES = ("asyncio", "_asyncio", "uvloop", "concurrent.futures", "multiprocessing")


def _process_specific(obj: Any) -> str | None:
    """A description of ``obj`` if it belongs to the running process, else None."""
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    for klass in type(obj).__mro__:
        module = getattr(klass, "__module__", "") or ""
        qualname = getattr(klass, "__qualname__", klass.__name__)
        found = _PROCESS_CLASSES.get((module, qualname))
        if found is not None:
            return f"{found} ({_type_name(obj)})" if found == "an open file" else found
        top = module.split(".")[0]
        if module in _PROCESS_MODULES or top in _PROCESS_MODULES or any(
            module.startswith(m + ".") for m in _PROCESS_MODULES
        ):
            pretty = "asyncio" if top in ("asyncio", "_asyncio") else top
            return _article(f"{pretty}.{type(obj).__qualname__}")
    return None


def _article(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _type_name(obj: Any) -> str:
    t = type(obj)
    module = t.__module__.lstrip("_") if t.__module__ not in ("builtins", None) else ""
    return f"{module}.{t.__qualname__}" if module else t.__qualname__


def _advice(owner: str | None) -> str:
    if owner is None:
        return "leave it out of the application"
    return f"drop it in {owner}.__getstate__ and recreate it when the service starts"


# -- the walker -------------------------------------------------------------------


class _Walker:
    def __init__(self) -> None:
        # id(obj) -> (obj, node); the object is kept alive so that its id is not reused.
        self.memo: dict[int, tuple[Any, Node]] = {}
        self.order: list[Node] = []  # memoized nodes, in the order they were first seen
        self.referenced: set[int] = set()  # id(node) of nodes that a Ref points at
        self.building: dict[int, str] = {}  # id(obj) -> path, for objects that need their parts first

    def remember(self, obj: Any, node: Node) -> None:
        self.memo[id(obj)] = (obj, node)
        self.order.append(node)

    def node(self, obj: Any, path: str, owner: str | None) -> Node:
        t = type(obj)
        if t in ATOM_TYPES:
            return Atom(obj)
        hit = self.memo.get(id(obj))
        if hit is not None:
            self.referenced.add(id(hit[1]))
            return Ref(hit[1])
        if id(obj) in self.building:
            raise PersistError(
                f"{path}: this {_type_name(obj)} contains itself through {self.building[id(obj)]}, which must "
                "be rebuilt before it (a tuple, or the arguments of its class); pickle can save it, this format cannot"
            )
        if t is list:
            seq = Seq("list")
            self.remember(obj, seq)
            seq.items = [self.node(x, f"{path}[{i}]", owner) for i, x in enumerate(obj)]
            return seq
        if t is dict:
            mapping = Mapping()
            self.remember(obj, mapping)
            mapping.items = self.pairs(obj.items(), path, owner)
            return mapping
        if t is set:
            seq = Seq("set")
            self.remember(obj, seq)
            seq.items = [self.node(x, f"{path}{{{i}}}", owner) for i, x in enumerate(_stable(obj))]
            return seq
        if t is tuple or t is frozenset:
            self.building[id(obj)] = path
            try:
                items = obj if t is tuple else _stable(obj)
                fmt = "{}[{}]" if t is tuple else "{}{{{}}}"
                seq = Seq(t.__name__, [self.node(x, fmt.format(path, i), owner) for i, x in enumerate(items)])
            finally:
                del self.building[id(obj)]
            self.remember(obj, seq)
            return seq
        if isinstance(obj, type) or t is types.FunctionType:
            return self.global_(obj, path)
        if t is types.BuiltinFunctionType:
            self_ = getattr(obj, "__self__", None)
            if self_ is None or isinstance(self_, types.ModuleType):
                return self.global_(obj, path)
            return self.method(obj, self_, obj.__name__, path, owner)
        if t is types.MethodType:
            return self.method(obj, obj.__self__, obj.__func__.__name__, path, owner)
        what = _process_specific(obj)
        if what is not None:
            raise PersistError(f"{path}: {what} cannot be saved; {_advice(owner)}")
        return self.reduce(obj, path, owner)

    def pairs(self, items: Any, path: str, owner: str | None) -> list[tuple[Node, Node]]:
        result = []
        for key, value in items:
            label = repr(key) if type(key) in ATOM_TYPES else f"<{_type_name(key)} key>"
            result.append(
                (self.node(key, f"{path}[{label}] (the key)", owner), self.node(value, f"{path}[{label}]", owner))
            )
        return result

    def method(self, obj: Any, self_: Any, name: str, path: str, owner: str | None) -> Node:
        if not name.isidentifier() or getattr(self_, name, None) != obj:
            raise PersistError(f"{path}: the method {obj!r} cannot be found again by its name; {_advice(owner)}")
        node = Method(Atom(None), name)
        function = getattr(obj, "__func__", None)
        if function is not None:
            node.func = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
        self.building[id(obj)] = path
        try:
            node.obj = self.node(self_, f"{path}.__self__", owner)
        finally:
            del self.building[id(obj)]
        self.remember(obj, node)
        return node

    def global_(self, obj: Any, path: str) -> Global:
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        module = getattr(obj, "__module__", None)
        if module is None and isinstance(getattr(obj, "__self__", None), types.ModuleType):
            module = obj.__self__.__name__
        kind = "class" if isinstance(obj, type) else "function"
        if not name or not module:
            raise PersistError(f"{path}: the {kind} {obj!r} has no import path; define it at module level")
        if name == "<lambda>" or "<lambda>" in name:
            raise PersistError(
                f"{path}: a lambda ({module}) cannot be saved (it has no import path); "
                "use a function defined at module level"
            )
        if "<locals>" in name:
            raise PersistError(
                f"{path}: the {kind} {name} is defined inside a function and cannot be saved; define it at module level"
            )
        if module == "__main__":
            raise PersistError(
                f"{path}: the {kind} {name} is defined in the __main__ script, which a loader cannot import; "
                "move it to an importable module"
            )
        try:
            found: Any = sys.modules.get(module) or importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part)
        except Exception:  # noqa: BLE001 - any failure means: not reachable by its name
            found = None
        if found is not obj:
            raise PersistError(
                f"{path}: the {kind} {module}.{name} cannot be found again by its import path; "
                "define it at module level under that name"
            )
        return Global(module, name)

    def reduce(self, obj: Any, path: str, owner: str | None) -> Node:
        reducer = copyreg.dispatch_table.get(type(obj))
        try:
            rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
        except Exception as e:  # noqa: BLE001 - pickle's own refusal ("cannot pickle 'X' object")
            raise PersistError(f"{path}: {_article(_type_name(obj))} cannot be saved ({e}); {_advice(owner)}") from None
        if isinstance(rv, str):  # a module-level singleton, named
            module = getattr(obj, "__module__", None) or type(obj).__module__
            return self.global_(obj, path) if hasattr(obj, "__qualname__") else Global(module, rv)
        if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
            raise PersistError(f"{path}: {_type_name(obj)}.__reduce__ returned {rv!r}, which is not a valid reduction")
        func, args, state, listitems, dictitems = (tuple(rv) + (None,) * 5)[:5]
        if len(rv) == 6 and rv[5] is not None:
            raise PersistError(
                f"{path}: {_type_name(obj)} uses a state setter in __reduce__, which cannot be saved here"
            )
        here = type(obj).__qualname__
        self.building[id(obj)] = f"the arguments that rebuild {path}"
        try:
            # copyreg.__newobj__/__newobj_ex__ are pickle's NEWOBJ helpers; typeshed does not list them.
            if func is copyreg.__newobj__ and args and isinstance(args[0], type):  # type: ignore[attr-defined]
                node: Instance | Call = Instance(
                    self.global_(args[0], path),
                    [self.node(a, f"{path}<arg {i}>", here) for i, a in enumerate(args[1:])],
                )
            elif func is copyreg.__newobj_ex__ and len(args) == 3 and isinstance(args[0], type):  # type: ignore[attr-defined]
                cls, pos, kw = args
                node = Instance(
                    self.global_(cls, path),
                    [self.node(a, f"{path}<arg {i}>", here) for i, a in enumerate(pos)],
                    [(k, self.node(v, f"{path}<arg {k}>", here)) for k, v in kw.items()],
                )
            else:
                if not callable(func):
                    raise PersistError(f"{path}: {_type_name(obj)}.__reduce__ returned a non-callable {func!r}")
                node = Call(
                    self.global_(func, f"{path} (how it is rebuilt)"),
                    [self.node(a, f"{path}<arg {i}>", here) for i, a in enumerate(args or ())],
                )
        finally:
            del self.building[id(obj)]
        self.remember(obj, node)
        # pickle's order: items first, then the state (so __setstate__ sees the items).
        if listitems is not None:
            node.listitems = [self.node(x, f"{path}[{i}]", here) for i, x in enumerate(listitems)]
        if dictitems is not None:
            node.dictitems = self.pairs(dictitems, path, here)
        if state is not None:
            node.state = self.state(state, path, here)
        return node

    def state(self, state: Any, path: str, owner: str) -> Node:
        """The state of an instance: attribute names extend the path as ``.name``."""
        if type(state) is dict and id(state) not in self.memo:
            mapping = Mapping()
            self.remember(state, mapping)
            mapping.items = [
                (
                    self.node(k, path, owner),
                    self.node(v, f"{path}.{k}" if isinstance(k, str) else f"{path}[{k!r}]", owner),
                )
                for k, v in state.items()
            ]
            return mapping
        if (
            type(state) is tuple
            and len(state) == 2
            and (state[0] is None or type(state[0]) is dict)
            and type(state[1]) is dict
        ):  # (__dict__, slots), as object.__getstate__ gives for classes with __slots__
            self.building[id(state)] = path
            try:
                parts = [self.state(s, path, owner) if s is not None else Atom(None) for s in state]
            finally:
                del self.building[id(state)]
            seq = Seq("tuple", parts)
            self.remember(state, seq)
            return seq
        return self.node(state, f"{path}<state>", owner)


def _stable(items: Any) -> list[Any]:
    """Set members in a stable order (sorted when they can be), so saved files diff cleanly."""
    values = list(items)
    try:
        return sorted(values)
    except TypeError:
        return values


# -- restoring (shared by the loaders) ------------------------------------------


def apply_state(obj: Any, state: Any, listitems: list[Any] | None = None,
                dictitems: list[tuple[Any, Any]] | None = None) -> Any:
    """Add items to ``obj``, then restore ``state`` as pickle's BUILD does; returns ``obj``.

    Items come first, as in pickle. The state goes to ``__setstate__`` when
    the object has one; otherwise a dict goes into ``__dict__`` and a
    ``(dict, slots)`` pair also sets the slots. Slot and attribute names must
    be strings and never dunder names.
    """
    if listitems:
        extend = getattr(obj, "extend", None)
        if extend is not None:
            extend(listitems)
        else:
            for item in listitems:
                obj.append(item)
    if dictitems:
        for k, v in dictitems:
            obj[k] = v
    if state is not None:
        setstate = getattr(obj, "__setstate__", None)
        if setstate is not None:
            setstate(state)
        else:
            slots = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slots = state
            if state:
                if not isinstance(state, dict):
                    raise TypeError(
                        f"the state of a {type(obj).__qualname__} must be a dict, not {type(state).__name__}"
                    )
                _check_names(state, type(obj))
                obj.__dict__.update({sys.intern(k): v for k, v in state.items()})
            if slots:
                if not isinstance(slots, dict):
                    raise TypeError(
                        f"the slots of a {type(obj).__qualname__} must be a dict, not {type(slots).__name__}"
                    )
                _check_names(slots, type(obj))
                for k, v in slots.items():
                    setattr(obj, k, v)
    return obj


def _check_names(state: dict[Any, Any], cls: type) -> None:
    for key in state:
        if not isinstance(key, str):
            raise TypeError(f"attribute names of a {cls.__qualname__} must be strings, not {key!r}")
        if key.startswith("__") and key.endswith("__"):
            raise TypeError(f"refusing to set the special attribute {key!r} of a {cls.__qualname__}")


def is_identifier(name: str) -> bool:
    """A plain Python name (not a keyword)."""
    return name.isidentifier() and not keyword.iskeyword(name)
