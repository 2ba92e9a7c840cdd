"""The ``xml`` application format (``.tax``): readable, and safe to load from a stranger.

Writing: :func:`tapster.core._persist.walker.walk` describes the application, and each node
becomes one element, indented, under a root ``<tapster-application
format="1">``. A shared object carries ``id="N"`` where it first appears and
is ``<ref id="N"/>`` everywhere else; an instance's attributes are
``<attr name="...">`` children, so a file reads like the objects it holds::

    <instance id="1" module="tapster.core.service" class="Application">
      <attr name="services">
        <list>
          <instance id="2" module="tapster.core.internet" class="TCPServer">
            ...
            <attr name="parent"><ref id="1" /></attr>

Loading runs no code of the file's choosing:

* The text must be UTF-8. A DOCTYPE or an entity declaration is refused
  before parsing (tapster never writes one; they are how "billion laughs"
  expansion and external-entity reads work), and the expat parser is set up
  to refuse them again (doctype, entity, notation and external-entity
  handlers raise; parameter entities are never parsed).
* Classes, functions and bound methods are resolved only if their owner
  declared them safe (:mod:`tapster.core._persist.safety`: tapster's own
  classes, each installed plugin's ``safeNames``, hook packages), plus a few
  plain standard types (:data:`SAFE_GLOBALS`). The declaration is checked
  before the module is imported. A name is walked attribute by attribute; it
  may not pass through a module or a dunder name, and what it finds is
  checked again by its own path (a plugin module that imports ``os`` does not
  make ``os.system`` reachable). A path an older tapster wrote is read
  through the alias table (:mod:`tapster.core._persist.aliases`) first.
* An instance is made with ``cls.__new__`` and its state restored with its
  own ``__setstate__`` or into its ``__dict__``; ``__init__`` is not called.
  Calling something with arguments (pickle's REDUCE) is allowed only for
  the standard types in :data:`SAFE_CALLS`, enums, and allowed classes that
  define their own ``__reduce__``; functions are never called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tapster.core._persist.limits import TooHeavy, Weigher, brief, cap
from tapster.core.errors import PersistError

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from tapster.core._persist import walker as _graph
    from tapster.core._persist.safety import SafeNames

__all__ = ["dump", "load", "sniff", "FORMAT_VERSION", "ROOT_TAG", "SAFE_GLOBALS", "SAFE_CALLS"]

FORMAT_VERSION = "1"
ROOT_TAG = "tapster-application"

_BUILTIN_TYPES = ("bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "tuple", "dict",
                  "set", "frozenset", "range", "slice")

#: Plain standard types (and ``re``'s pattern compiler) that rebuild by being called with their arguments.
SAFE_CALLS: frozenset[str] = frozenset(
    {f"builtins.{name}" for name in _BUILTIN_TYPES}
    | {
        "collections.OrderedDict", "collections.deque", "collections.defaultdict",
        "datetime.date", "datetime.time", "datetime.datetime", "datetime.timedelta", "datetime.timezone",
        "decimal.Decimal", "fractions.Fraction", "functools.partial",
        "ipaddress.IPv4Address", "ipaddress.IPv6Address", "ipaddress.IPv4Network", "ipaddress.IPv6Network",
        "ipaddress.IPv4Interface", "ipaddress.IPv6Interface",
        "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "pathlib.Path", "pathlib.PosixPath",
        "re._compile",
    }
)

#: Names outside core and the plugins that a file may use at all.
SAFE_GLOBALS: frozenset[str] = SAFE_CALLS | {"uuid.UUID", "builtins.object"}

_INVALID_XML_TEXT = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INVALID_ATTR = re.compile("[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*\Z")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


#: Constructors whose integer argument is a size to allocate, or whose argument is iterated.
_SIZED = {bytes, bytearray, list, tuple, set, frozenset, dict, str}
#: Constructors that parse a number from text, where an exponent is work (``Fraction("1e20000000")``).
_EXPONENT = re.compile(r"[eE]\s*[+-]?\s*0*(\d{5,})")


def _costly_arguments(func: Any, args: list[Any], limit: int) -> str | None:
    """Why calling ``func(*args)`` from a file would cost too much, or None.

    Plain types rebuild from their arguments; a stranger's arguments must not
    make them allocate or compute without bound: a size (``bytearray(2**40)``),
    a long range to iterate (``list(range(10**8))``), a number with a huge
    exponent (``Fraction("1e20000000")``).
    """
    import collections
    import decimal
    import fractions

    for arg in args:
        if isinstance(arg, range) and len(arg) > limit:
            return f"it would iterate over {len(arg)} items (at most {limit})"
        if isinstance(arg, int) and not isinstance(arg, bool) and (func in _SIZED or func is collections.deque) \
                and abs(arg) > limit:
            return f"it would allocate {arg} items (at most {limit})"
        if isinstance(arg, str) and func in (fractions.Fraction, decimal.Decimal, float, complex, int) \
                and _EXPONENT.search(arg):
            return "the number's exponent is too large to compute with"
    return None


class _Refused(Exception):
    """Raised inside expat handlers: the document declares something tapster never accepts."""


# -- writing ----------------------------------------------------------------------


def dump(app: Any) -> bytes:
    """The application as indented UTF-8 XML; PersistError if part of it cannot be saved."""
    import xml.etree.ElementTree as ET

    from tapster.core._persist import walker as _graph

    graph = _graph.walk(app)
    writer = _Writer(ET, _Resolver(allowed_names()))
    root = ET.Element(ROOT_TAG, {"format": FORMAT_VERSION})
    root.append(ET.Comment(
        " A tapster application: run it with twistd -n -f FILE. Loading it runs no code;\n"
        "       it may name only classes that tapster and the installed plugins declare safe. "
    ))
    root.append(writer.element(graph.root))
    _indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _indent(element: ET.Element, level: int = 0) -> None:
    """Indent by two spaces per level; an element whose only child is a leaf keeps it on its line.

    Only whitespace between elements is added: no element of the format has
    both text and children, so no value changes.
    """
    children = list(element)
    if not children:
        return
    if len(children) == 1 and len(children[0]) == 0:
        children[0].tail = None
        return
    pad = "\n" + "  " * (level + 1)
    element.text = pad
    for child in children:
        _indent(child, level + 1)
        child.tail = pad
    children[-1].tail = "\n" + "  " * level


class _Writer:
    """Turns graph nodes into elements, checking each name against the loader's allow-list.

    A file that its own loader would refuse is refused when saving instead,
    so that ``mktap -t xml`` fails, not a later ``twistd -f``.
    """

    def __init__(self, et: Any, resolver: _Resolver) -> None:
        self.ET = et
        self.resolver = resolver

    def check(self, node: _graph.Global, call: bool = False) -> None:
        try:
            if call:
                self.resolver.callable_(node.module, node.qualname)
            else:
                self.resolver.resolve(node.module, node.qualname)
        except _NotAllowed as e:
            raise PersistError(
                f"cannot save this application as XML: {e}; save it as pickle or source instead"
            ) from None

    def new(self, tag: str, node: Any = None, **attrs: str) -> ET.Element:
        element = self.ET.Element(tag)
        if node is not None and getattr(node, "id", None) is not None:
            element.set("id", str(node.id))
        for key, value in attrs.items():
            element.set(key.rstrip("_"), value)
        return element

    def element(self, node: _graph.Node) -> ET.Element:
        from tapster.core._persist import walker as _graph

        if isinstance(node, _graph.Atom):
            return self.atom(node.value)
        if isinstance(node, _graph.Ref):
            return self.new("ref", id=str(node.target.id))  # type: ignore[union-attr]  # a Ref targets a shared node, which has an id
        if isinstance(node, _graph.Global):
            self.check(node)
            return self.new("global", module=node.module, name=node.qualname)
        if isinstance(node, _graph.Seq):
            element = self.new(node.kind, node)
            element.extend([self.element(item) for item in node.items])
            return element
        if isinstance(node, _graph.Mapping):
            element = self.new("dict", node)
            element.extend([self.item(k, v) for k, v in node.items])
            return element
        if isinstance(node, _graph.Instance):
            self.check(node.cls)
            element = self.new("instance", node, module=node.cls.module, class_=node.cls.qualname)
            if node.args:
                element.append(self.group("args", node.args))
            if node.kwargs:
                kwargs = self.new("kwargs")
                kwargs.extend([self.item(_graph.Atom(k), v) for k, v in node.kwargs])
                element.append(kwargs)
            self.extras(element, node)
            return element
        if isinstance(node, _graph.Call):
            self.check(node.func, call=True)
            element = self.new("call", node, module=node.func.module, name=node.func.qualname)
            element.append(self.group("args", node.args))
            self.extras(element, node)
            return element
        if isinstance(node, _graph.Method):
            if not node.func or not self.resolver.allows(node.func):
                what = node.func or f"the built-in method {node.name}"
                raise PersistError(f"cannot save this application as XML: {self.resolver.why(what)}; "
                                   "save it as pickle or source instead")
            element = self.new("method", node, name=node.name)
            element.append(self.element(node.obj))
            return element
        raise TypeError(f"unknown graph node {node!r}")  # pragma: no cover - the walker makes no others

    def group(self, tag: str, nodes: Iterable[_graph.Node]) -> ET.Element:
        element = self.new(tag)
        element.extend([self.element(n) for n in nodes])
        return element

    def extras(self, element: ET.Element, node: Any) -> None:
        """Items, then state (as ``<attr>`` children when it is a plain dict of names): the walker's order."""
        from tapster.core._persist import walker as _graph

        if node.listitems is not None:
            element.append(self.group("listitems", node.listitems))
        if node.dictitems is not None:
            items = self.new("dictitems")
            items.extend([self.item(k, v) for k, v in node.dictitems])
            element.append(items)
        state = node.state
        if (
            isinstance(state, _graph.Mapping)
            and state.id is None
            and state.items  # an empty state is still restored (__setstate__ runs): <state><dict /></state>
            and all(isinstance(k, _graph.Atom) and _attr_safe(k.value) for k, _ in state.items)
        ):
            for k, v in state.items:
                attr = self.new("attr", name=k.value)  # type: ignore[union-attr]  # every k is an Atom (checked above)
                attr.append(self.element(v))
                element.append(attr)
        elif state is not None:
            holder = self.new("state")
            holder.append(self.element(state))
            element.append(holder)

    def item(self, key: _graph.Node, value: _graph.Node) -> ET.Element:
        from tapster.core._persist import walker as _graph

        if isinstance(key, _graph.Atom) and _attr_safe(key.value):
            item = self.new("item", key=key.value)
            item.append(self.element(value))
        else:
            item = self.new("item")
            item.extend((self.element(key), self.element(value)))
        return item

    def atom(self, value: Any) -> ET.Element:
        if value is None:
            return self.new("none")
        if isinstance(value, bool):
            element = self.new("bool")
            element.text = str(value)
        elif isinstance(value, (int, float, complex)):
            element = self.new(type(value).__name__)
            element.text = repr(value) if not isinstance(value, int) else str(value)
        elif isinstance(value, str):
            element = self.new("str")
            if _INVALID_XML_TEXT.search(value):  # \r and control characters do not survive XML parsing
                import base64

                element.set("encoding", "base64")
                element.text = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
            else:
                element.text = value
        else:  # bytes
            element = self.new("bytes")
            if _PRINTABLE_ASCII.match(value):
                element.set("encoding", "ascii")
                element.text = value.decode("ascii")
            else:
                import base64

                element.set("encoding", "base64")
                element.text = base64.b64encode(value).decode("ascii")
        return element


def _attr_safe(value: Any) -> bool:
    """A string that reads well as an attribute value (no line breaks, tabs or control characters)."""
    return type(value) is str and _INVALID_ATTR.search(value) is None


# -- reading ----------------------------------------------------------------------


def sniff(head: bytes) -> bool:
    """XML whose root is ``<tapster-application`` (or with a DOCTYPE, so that it is refused by name)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<?xml"):
        return False
    return b"<" + ROOT_TAG.encode() in head or b"<!doctype" in head.lower()


def load(data: bytes, filename: str) -> Any:
    """Rebuild the application from XML ``data``; PersistError (naming file and line) on anything wrong."""
    root, lines = _parse(data, filename)
    if root.tag != ROOT_TAG:
        raise PersistError(
            f"{filename}: not a tapster application (its root element is <{root.tag}>, not <{ROOT_TAG}>)"
        )
    version = root.get("format")
    if version != FORMAT_VERSION:
        if version is None:
            raise PersistError(f"{filename}: <{ROOT_TAG}> has no format attribute; rebuild it with mktap -t xml")
        raise PersistError(
            f"{filename}: written in XML format {version!r}; "
            f"this tapster reads format {FORMAT_VERSION} (upgrade tapster)"
        )
    children = list(root)
    if len(children) != 1:
        raise PersistError(
            f"{filename}: <{ROOT_TAG}> must hold exactly one element (the application), not {len(children)}"
        )
    loader = _Loader(filename, lines, _Resolver(allowed_names()))
    try:
        app = loader.value(children[0])
        loader.weigh(children[0], app)  # what repr or a log line of it would have to walk
        return app
    except RecursionError:
        raise PersistError(f"{filename}: the application is nested too deeply to load") from None


def _parse(data: bytes, filename: str) -> tuple[ET.Element, dict[int, int]]:
    import xml.etree.ElementTree as ET
    from xml.parsers import expat

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PersistError(
            f"{filename}: not UTF-8 text (bad byte at offset {e.start}); XML applications are UTF-8"
        ) from None
    declared = re.match(r"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']", text)
    if declared and declared.group(1).lower().replace("-", "").replace("_", "") != "utf8":
        raise PersistError(f"{filename}: declares encoding {declared.group(1)!r}; XML applications are UTF-8")
    _refuse_declarations(text, filename)

    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate("UTF-8")

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = builder.start(tag, attrs)
        lines[id(element)] = parser.CurrentLineNumber

    def refuse(*_: Any) -> None:
        raise _Refused("a DOCTYPE, entity or notation declaration")

    def refuse_external(*_: Any) -> int:
        raise _Refused("an external entity reference")

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    try:
        parser.Parse(text.encode("utf-8"), True)
    except _Refused as e:
        raise PersistError(f"{filename}: refusing an XML application with {e} (tapster never writes them)") from None
    except expat.ExpatError as e:
        raise PersistError(
            f"{filename}: not well-formed XML at line {e.lineno}, column {e.offset + 1}: {expat.ErrorString(e.code)}"
        ) from None
    return builder.close(), lines


def _refuse_declarations(text: str, filename: str) -> None:
    """The first line of defence: no DOCTYPE or ENTITY anywhere, before a parser sees the text."""
    if re.search(r"<!\s*(doctype|entity)", text, re.IGNORECASE):
        raise PersistError(
            f"{filename}: refusing an XML application with a DOCTYPE or ENTITY declaration "
            "(entities can expand without bound or read other files; tapster never writes them)"
        )


def allowed_names() -> SafeNames:
    """What this file may name: the declarations of tapster and of the installed plugins (see safety)."""
    from tapster.core._persist.safety import safe_names

    return safe_names()


class _NotAllowed(Exception):
    pass


class _Resolver:
    """Finds classes and functions by name, only among the names their owners declared safe.

    A name is checked against the declarations *before* its module is
    imported, and what it finds is checked again by its own path (a name
    that is a re-export of something undeclared is refused).
    """

    def __init__(self, names: SafeNames) -> None:
        self.names = names

    def allows(self, path: str) -> bool:
        return path in SAFE_GLOBALS or self.names.allows(path)

    @staticmethod
    def why(path: str) -> str:
        return (
            f"{path} is not allowed in an XML application: it may name only the classes and functions "
            "that tapster and the installed plugins declare safe (a plugin lists them in its safeNames) "
            "and a few plain standard types"
        )

    def resolve(self, module: str, qualname: str) -> Any:
        import importlib
        import types

        from tapster.core._persist.aliases import current_path

        if not _DOTTED.match(module) or not _DOTTED.match(qualname):
            raise _NotAllowed(f"{module}.{qualname!r} is not a valid import path")
        module, qualname = current_path(module, qualname)  # a path an older tapster wrote
        path = f"{module}.{qualname}"
        if any(part.startswith("__") for part in qualname.split(".")):
            raise _NotAllowed(f"{path} names a special attribute, which an XML application may not do")
        if not self.allows(path):
            raise _NotAllowed(self.why(path))
        try:
            obj: Any = importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - a missing or broken plugin
            raise _NotAllowed(
                f"cannot import {module} for {path} ({type(e).__name__}: {e}); is its plugin installed?"
            ) from None
        for part in qualname.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise _NotAllowed(f"{path} does not exist (no {part!r} in {module}); was it renamed?") from None
            if isinstance(obj, types.ModuleType):
                raise _NotAllowed(f"{path} goes through the module {obj.__name__}, which an XML application may not do")
        if not isinstance(obj, type) and not isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            raise _NotAllowed(f"{path} is a {type(obj).__name__}, not a class or function")
        home = f"{getattr(obj, '__module__', None) or ''}.{getattr(obj, '__qualname__', qualname)}"
        if home != path and not self.allows(home):
            raise _NotAllowed(self.why(f"{home} (imported as {path})"))
        return obj

    def callable_(self, module: str, qualname: str) -> Any:
        """Something the file may *call* with arguments (pickle's REDUCE); stricter than :meth:`resolve`."""
        import enum

        obj = self.resolve(module, qualname)
        path = f"{module}.{qualname}"
        if path in SAFE_CALLS:
            return obj
        if isinstance(obj, type) and (
            isinstance(obj, enum.EnumMeta)
            or any("__reduce__" in vars(k) or "__reduce_ex__" in vars(k) for k in obj.__mro__ if k is not object)
        ):
            return obj
        raise _NotAllowed(
            f"{path} may not be called while loading: an XML application calls only plain standard types, "
            "enums and classes that define their own __reduce__ (instances are rebuilt without calling anything)"
        )


class _Loader:
    def __init__(self, filename: str, lines: dict[int, int], resolver: _Resolver) -> None:
        self.filename = filename
        self.lines = lines
        self.resolver = resolver
        self.objects: dict[str, Any] = {}
        self.weigher = Weigher()
        self.handlers = {
            "none": self.none, "bool": self.bool_, "int": self.int_, "float": self.float_, "complex": self.complex_,
            "str": self.str_, "bytes": self.bytes_, "list": self.list_, "tuple": self.tuple_, "set": self.set_,
            "frozenset": self.frozenset_, "dict": self.dict_, "ref": self.ref, "global": self.global_,
            "instance": self.instance, "call": self.call, "method": self.method,
        }

    def fail(self, element: ET.Element, message: str) -> PersistError:
        line = self.lines.get(id(element))
        where = f"{self.filename} line {line}" if line else self.filename
        return PersistError(f"{where}: {cap(message)}")

    def weigh(self, element: ET.Element, value: Any) -> None:
        """Refuse ``value`` (about to be hashed, passed to a constructor, or loaded) if it is too big expanded."""
        try:
            self.weigher.weigh(value)
        except TooHeavy as e:
            raise self.fail(element, str(e)) from None

    def value(self, element: ET.Element) -> Any:
        handler = self.handlers.get(element.tag)
        if handler is None:
            raise self.fail(element, f"unknown element <{element.tag}>")
        try:
            return handler(element)
        except (PersistError, RecursionError):
            raise
        except _NotAllowed as e:
            raise self.fail(element, f"{e}; refusing to load it") from None
        except Exception as e:  # noqa: BLE001 - a bad value or a class that refuses its state
            raise self.fail(
                element, f"cannot rebuild <{element.tag}>: {type(e).__name__}: {cap(str(e), 200)}"
            ) from None

    def register(self, element: ET.Element, obj: Any) -> Any:
        key = element.get("id")
        if key is not None:
            if key in self.objects:
                raise self.fail(element, f"id {key!r} is defined twice")
            self.objects[key] = obj
        return obj

    def values(self, element: ET.Element) -> list[Any]:
        return [self.value(child) for child in element]

    def text(self, element: ET.Element) -> str:
        return (element.text or "").strip()

    # -- plain values

    def none(self, element: ET.Element) -> None:
        return None

    def bool_(self, element: ET.Element) -> bool:
        text = self.text(element).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(f"{brief(text)} is not True or False")

    def int_(self, element: ET.Element) -> int:
        return int(self.text(element))

    def float_(self, element: ET.Element) -> float:
        return float(self.text(element))

    def complex_(self, element: ET.Element) -> complex:
        return complex(self.text(element))

    def str_(self, element: ET.Element) -> str:
        encoding = element.get("encoding", "text")
        if encoding == "text":
            return element.text or ""
        if encoding == "base64":
            import base64

            return base64.b64decode(self.text(element), validate=True).decode("utf-8", "surrogatepass")
        raise ValueError(f"unknown encoding {encoding!r} (text or base64)")

    def bytes_(self, element: ET.Element) -> bytes:
        encoding = element.get("encoding", "base64")
        if encoding == "ascii":
            return (element.text or "").encode("ascii")
        if encoding == "base64":
            import base64

            return base64.b64decode(self.text(element), validate=True)
        raise ValueError(f"unknown encoding {encoding!r} (ascii or base64)")

    # -- containers

    def list_(self, element: ET.Element) -> list[Any]:
        result: list[Any] = self.register(element, [])
        result.extend(self.values(element))
        return result

    def tuple_(self, element: ET.Element) -> tuple[Any, ...]:
        return self.register(element, tuple(self.values(element)))

    def hashable(self, element: ET.Element, values: list[Any]) -> list[Any]:
        """``values`` about to be hashed: hashing walks a shared tuple once per reference, so weigh first."""
        self.weigh(element, values)
        return values

    def set_(self, element: ET.Element) -> set[Any]:
        result: set[Any] = self.register(element, set())
        result.update(self.hashable(element, self.values(element)))
        return result

    def frozenset_(self, element: ET.Element) -> frozenset[Any]:
        return self.register(element, frozenset(self.hashable(element, self.values(element))))

    def dict_(self, element: ET.Element) -> dict[Any, Any]:
        result: dict[Any, Any] = self.register(element, {})
        pairs = self.items(element)
        self.hashable(element, [key for key, _ in pairs])
        for key, value in pairs:
            result[key] = value
        return result

    def items(self, element: ET.Element) -> list[tuple[Any, Any]]:
        pairs = []
        for item in element:
            if item.tag != "item":
                raise self.fail(item, f"<{element.tag}> holds <item> elements, not <{item.tag}>")
            children = list(item)
            key = item.get("key")
            if key is not None and len(children) == 1:
                pairs.append((key, self.value(children[0])))
            elif key is None and len(children) == 2:
                pairs.append((self.value(children[0]), self.value(children[1])))
            else:
                raise self.fail(item, "an <item> holds key=\"...\" and one value, or two elements (key, value)")
        return pairs

    # -- references, classes, instances

    def ref(self, element: ET.Element) -> Any:
        key = element.get("id")
        if key not in self.objects:
            raise self.fail(element, f"<ref id={key!r}/> refers to nothing defined before it")
        return self.objects[key]

    def global_(self, element: ET.Element) -> Any:
        return self.resolver.resolve(element.get("module", ""), element.get("name", ""))

    def parts(self, element: ET.Element, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The children of an <instance> or <call>, by role, in the order the writer puts them."""
        found: dict[str, Any] = {}
        attrs: list[ET.Element] = []
        for child in element:
            if child.tag == "attr":
                attrs.append(child)
            elif child.tag in allowed and child.tag not in found:
                found[child.tag] = child
            else:
                raise self.fail(child, f"unexpected <{child.tag}> in <{element.tag}>")
        if attrs and "state" in found:
            raise self.fail(element, f"<{element.tag}> has both <attr> and <state>")
        found["attr"] = attrs
        return found

    def finish(self, element: ET.Element, obj: Any, parts: dict[str, Any]) -> Any:
        from tapster.core._persist.walker import apply_state

        # The walker's order (items, then state), so that every <ref> follows its definition.
        listitems = self.values(parts["listitems"]) if "listitems" in parts else None
        dictitems = self.items(parts["dictitems"]) if "dictitems" in parts else None
        state: Any = None
        if parts["attr"]:
            state = {}
            for attr in parts["attr"]:
                name = attr.get("name")
                children = list(attr)
                if name is None or len(children) != 1:
                    raise self.fail(attr, "an <attr> has a name and holds exactly one value")
                state[name] = self.value(children[0])
        elif "state" in parts:
            children = list(parts["state"])
            if len(children) != 1:
                raise self.fail(parts["state"], "<state> holds exactly one value")
            state = self.value(children[0])
        try:
            return apply_state(obj, state, listitems, dictitems)
        except Exception as e:  # noqa: BLE001 - the class refused its state
            raise self.fail(element, f"cannot restore a {type(obj).__qualname__}: {type(e).__name__}: {e}") from None

    def instance(self, element: ET.Element) -> Any:
        cls = self.resolver.resolve(element.get("module", ""), element.get("class", ""))
        if not isinstance(cls, type):
            raise self.fail(element, f"{element.get('module')}.{element.get('class')} is not a class")
        parts = self.parts(element, ("args", "kwargs", "state", "listitems", "dictitems"))
        args = self.values(parts["args"]) if "args" in parts else []
        kwargs = dict(self.items(parts["kwargs"])) if "kwargs" in parts else {}
        self.weigh(element, [args, kwargs])
        obj = self.register(element, cls.__new__(cls, *args, **kwargs))
        return self.finish(element, obj, parts)

    def call(self, element: ET.Element) -> Any:
        func = self.resolver.callable_(element.get("module", ""), element.get("name", ""))
        parts = self.parts(element, ("args", "state", "listitems", "dictitems"))
        args = self.values(parts["args"]) if "args" in parts else []
        self.weigh(element, args)
        problem = _costly_arguments(func, args, self.weigher.limit)
        if problem is not None:
            raise self.fail(element, f"refusing to call {getattr(func, '__qualname__', func)}: {problem}")
        obj = self.register(element, func(*args))
        return self.finish(element, obj, parts)

    def method(self, element: ET.Element) -> Any:
        """A bound method, only of a function its owner declared safe; found without running any code.

        The attribute is looked up statically (no property, descriptor or
        ``__getattr__`` of the object runs), must be a function written in
        Python, and its own path (``module.Class.method``) must be declared:
        being a method of a declared class is not enough (``Application.save``
        writes files; a shell's ``runcode`` runs code). Methods implemented in
        C (``list.append``) are never named.
        """
        import inspect
        import types

        name = element.get("name", "")
        children = list(element)
        if len(children) != 1:
            raise self.fail(element, "<method> holds exactly one element (the object)")
        if not name.isidentifier() or (name.startswith("__") and name.endswith("__")):
            raise _NotAllowed(f"the method name {brief(name)} is not allowed")
        obj = self.value(children[0])
        try:
            raw = inspect.getattr_static(obj, name)
        except AttributeError:
            raise _NotAllowed(f"{type(obj).__qualname__} has no method {name}") from None
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if not isinstance(func, types.FunctionType):
            raise _NotAllowed(f"{type(obj).__qualname__}.{name} is not a method written in Python; "
                              "an XML application names only declared methods")
        home = f"{func.__module__}.{func.__qualname__}"
        if not self.resolver.allows(home):
            raise _NotAllowed(self.resolver.why(home))
        found = getattr(obj, name)
        return self.register(element, found)
