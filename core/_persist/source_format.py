"""The ``source`` application format (``.tas``): Python that rebuilds the application when run.

The file is meant to be read, diffed and edited by a developer. It imports
the classes it uses at the top, gives each shared object (anything referred
to from two places, such as a service that its parent lists and names) one
variable, writes plain data as literals, and creates instances with the two
helpers below, which restore state the way pickle does (``__init__`` is not
called, so what the file says is exactly what the object holds)::

    # tapster application source, format 1
    from tapster.core.persist import instance, setstate
    from tapster.core.internet import TCPServer
    ...
    application = instance(Application)
    qotd = instance(TCPServer)
    setstate(qotd, {
        'args': (8007, instance(QOTDFactory, {'quoter': instance(StaticQuoter, {'quote': 'Hi'})})),
        ...
        'parent': application,
    })

Loading executes the file, so it is for trusted files only, like pickle; it
must leave the application in a module-level variable named ``application``
(hand-written files in Twisted's ``.tas`` style work too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tapster.core.errors import PersistError

if TYPE_CHECKING:
    from tapster.core._persist import walker as _graph

__all__ = ["dump", "load", "sniff", "HEADER", "FORMAT_VERSION"]

FORMAT_VERSION = 1
HEADER = f"# tapster application source, format {FORMAT_VERSION}"
_WIDTH = 100


# -- writing ----------------------------------------------------------------------


def dump(app: Any) -> bytes:
    """The application as Python source; PersistError if part of it cannot be saved."""
    from tapster.core._persist import walker as _graph

    graph = _graph.walk(app)
    return _Renderer().render(graph).encode("utf-8")


class _Renderer:
    def __init__(self) -> None:
        import builtins
        import keyword

        self.imports: dict[tuple[str, str], str] = {}  # (module, top-level name) -> local name
        self.taken: set[str] = set(dir(builtins)) | set(keyword.kwlist) | {"instance", "setstate", "application"}
        self.names: dict[int, str] = {}  # id(node) -> variable
        self.used: set[int] = set()  # id(node) of shared nodes referred to so far
        self.lines: list[str] = []

    def render(self, graph: _graph.Graph) -> str:
        from tapster.core._persist import walker as _graph

        root = graph.root
        if isinstance(root, (_graph.Instance, _graph.Call, _graph.Seq, _graph.Mapping, _graph.Method)) and root.id:
            self.names[id(root)] = "application"  # the root's own variable, claimed before anything is emitted
        expression = self.expr(root, 0)
        if expression != "application":
            self.lines.append(f"application = {expression}")
        helpers = sorted({name for name in ("instance", "setstate") if any(name + "(" in line for line in self.lines)})
        head = [
            HEADER,
            "# Written by tapster: Python that rebuilds the application when run. Edit freely;",
            "# run it with: twistd -n -f FILE. Loading runs this code, so load trusted files only.",
            "",
        ]
        imports = []
        if helpers:
            imports.append(f"from tapster.core.persist import {', '.join(helpers)}")
        by_module: dict[str, list[str]] = {}
        for (module, name), local in sorted(self.imports.items()):
            by_module.setdefault(module, []).append(name + (f" as {local}" if local != name else ""))
        for module, names in sorted(by_module.items()):
            line = f"from {module} import {', '.join(names)}"
            imports.append(line if len(line) <= _WIDTH else _layout(f"from {module} import (", names, ")", 0))
        return "\n".join(head + imports + ([""] if imports else []) + self.lines) + "\n"

    # -- names

    def global_name(self, node: _graph.Global) -> str:
        top, _, rest = node.qualname.partition(".")
        key = (node.module, top)
        local = self.imports.get(key)
        if local is None:
            local = self.fresh(top)
            self.imports[key] = local
        return f"{local}.{rest}" if rest else local

    def fresh(self, base: str) -> str:
        from tapster.core._persist.walker import is_identifier

        if not is_identifier(base):
            base = "obj"
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def variable_for(self, node: Any, hint: str | None = None) -> str:
        """A readable variable name: the service's name, else the key it was found under, else its class."""
        import re

        from tapster.core._persist import walker as _graph

        base = None
        state = getattr(node, "state", None)
        if isinstance(state, _graph.Mapping):
            for k, v in state.items:
                if (
                    isinstance(k, _graph.Atom)
                    and k.value == "name"
                    and isinstance(v, _graph.Atom)
                    and isinstance(v.value, str)
                ):
                    base = re.sub(r"\W+", "_", v.value).strip("_").lower()
                    if base and base[0].isdigit():
                        base = "service_" + base
                    break
        if not base and hint:
            base = hint
        if not base:
            if isinstance(node, _graph.Instance):
                raw = node.cls.qualname.rpartition(".")[2]
            elif isinstance(node, _graph.Call):
                raw = node.func.qualname.rpartition(".")[2]
            elif isinstance(node, _graph.Method):
                raw = node.name.lstrip("_")
            else:
                raw = {"list": "items", "tuple": "values", "set": "members", "frozenset": "members"}.get(
                    getattr(node, "kind", ""), "mapping")
            base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", raw).lower().strip("_") or "obj"
        name = self.fresh(base)
        self.names[id(node)] = name
        return name

    def name_of(self, node: Any, hint: str | None) -> str:
        return self.names.get(id(node)) or self.variable_for(node, hint)

    # -- expressions

    def expr(self, node: _graph.Node, indent: int, hint: str | None = None) -> str:
        """An expression for ``node``; statements it needs first are appended to ``self.lines``.

        A shared node becomes a variable. It is written in one statement
        (``qotd = instance(TCPServer, {...})``) unless something inside it
        refers back to it, in which case it is created empty first and
        filled once its parts exist (``application = instance(Application)``
        ... ``setstate(application, {...})``), as pickle rebuilds cycles.
        """
        from tapster.core._persist import walker as _graph

        if isinstance(node, _graph.Atom):
            return _literal(node.value)
        if isinstance(node, _graph.Ref):
            self.used.add(id(node.target))
            return self.names[id(node.target)]
        if isinstance(node, _graph.Global):
            return self.global_name(node)
        if getattr(node, "id", None) is None:
            return self.inline(node, indent)
        name = self.name_of(node, hint)
        if isinstance(node, _graph.Seq) and node.kind in ("tuple", "frozenset"):
            self.lines.append(f"{name} = {self.inline(node, 0)}")  # cannot contain itself (the walker refuses)
        elif isinstance(node, _graph.Method):
            self.lines.append(f"{name} = {self.inline(node, 0)}")
        elif isinstance(node, (_graph.Seq, _graph.Mapping)):
            mark = len(self.lines)
            text = self.inline(node, 0)
            if id(node) in self.used:
                empty = (
                    "[]" if getattr(node, "kind", "") == "list" else "set()" if isinstance(node, _graph.Seq) else "{}"
                )
                self.lines.insert(mark, f"{name} = {empty}")
                if text not in ("[]", "set()", "{}"):
                    method = "extend" if getattr(node, "kind", "") == "list" else "update"
                    self.lines.append(f"{name}.{method}({text})")
            else:
                self.lines.append(f"{name} = {text}")
        else:  # Instance or Call
            creation = self.creation(node, 0)
            mark = len(self.lines)
            state, keywords = self.extras(node, 0)
            if id(node) in self.used:
                self.lines.insert(mark, f"{name} = {self.call_text(*creation, 0)}")
                if state is not None or keywords:
                    self.lines.append(
                        self.call_text("setstate", [name] + ([state] if state is not None else []) + keywords, 0)
                    )
            else:
                self.lines.append(f"{name} = {self.finished(creation, state, keywords, 0)}")
        return name

    def inline(self, node: Any, indent: int) -> str:
        """``node`` written as one expression (its shared parts are variables defined before)."""
        from tapster.core._persist import walker as _graph

        if isinstance(node, _graph.Seq):
            return self.sequence_literal(node.kind, [self.expr(i, indent + 4) for i in node.items], indent)
        if isinstance(node, _graph.Mapping):
            return self.dict_literal(self.pairs(node.items, indent + 4), indent)
        if isinstance(node, _graph.Method):
            owner = self.expr(node.obj, indent)
            return f"{owner}.{node.name}" if owner.isidentifier() or owner.endswith(")") else f"({owner}).{node.name}"
        if isinstance(node, (_graph.Instance, _graph.Call)):
            creation = self.creation(node, indent)
            state, keywords = self.extras(node, indent)
            return self.finished(creation, state, keywords, indent)
        raise TypeError(f"unknown graph node {node!r}")  # pragma: no cover

    def pairs(self, items: list[tuple[_graph.Node, _graph.Node]], indent: int) -> list[tuple[str, str]]:
        from tapster.core._persist import walker as _graph
        from tapster.core._persist.walker import is_identifier

        result = []
        for k, v in items:
            hint = (
                k.value if isinstance(k, _graph.Atom) and isinstance(k.value, str) and is_identifier(k.value) else None
            )
            result.append((self.expr(k, indent), self.expr(v, indent, hint)))
        return result

    def creation(self, node: Any, indent: int) -> tuple[str, list[str]]:
        """How an Instance or Call comes into being, before its items and state: (callable, arguments)."""
        from tapster.core._persist import walker as _graph

        if isinstance(node, _graph.Call):
            return self.global_name(node.func), [self.expr(a, indent + 4) for a in node.args]
        arguments = [self.global_name(node.cls)]
        if node.args:
            arguments.append(
                "args=" + self.sequence_literal("tuple", [self.expr(a, indent + 4) for a in node.args], indent)
            )
        if node.kwargs:
            arguments.append(
                "kwargs=" + self.dict_literal([(repr(k), self.expr(v, indent + 4)) for k, v in node.kwargs], indent)
            )
        return "instance", arguments

    def finished(self, creation: tuple[str, list[str]], state: str | None, keywords: list[str], indent: int) -> str:
        """One expression that creates and restores: ``instance(Cls, {...})``, ``Color(1)``."""
        func, arguments = creation
        restored = ([state] if state is not None else []) + keywords
        if not restored:
            return self.call_text(func, arguments, indent)
        if func == "instance":  # the state right after the class
            return self.call_text("instance", arguments[:1] + restored[:1] + arguments[1:] + restored[1:], indent)
        return self.call_text("setstate", [self.call_text(func, arguments, indent)] + restored, indent)

    def extras(self, node: Any, indent: int) -> tuple[str | None, list[str]]:
        """(state expression, keyword arguments for listitems/dictitems) of an Instance or Call."""
        # Rendered in the walker's order (items, then state): a shared object is defined where first seen.
        keywords = []
        if node.listitems is not None:
            keywords.append(
                "listitems=" + self.sequence_literal("list", [self.expr(i, indent + 4) for i in node.listitems], indent)
            )
        if node.dictitems is not None:
            pairs = [
                self.sequence_literal("tuple", list(p), indent + 4) for p in self.pairs(node.dictitems, indent + 8)
            ]
            keywords.append("dictitems=" + self.sequence_literal("list", pairs, indent))
        state = self.expr(node.state, indent) if node.state is not None else None  # hugged: same indent
        return state, keywords

    # -- layout

    def call_text(self, func: str, arguments: list[str], indent: int) -> str:
        """``func(a, b, {...})``, hugging a last argument that spans lines (a state dict, usually)."""
        if not arguments:
            return f"{func}()"
        *first, last = arguments
        head = f"{func}(" + "".join(a + ", " for a in first)
        if (
            "\n" in last
            and not any("\n" in a for a in first)
            and indent + len(head) + len(last.split("\n")[0]) <= _WIDTH
        ):
            return head + last + ")"
        return _layout(f"{func}(", arguments, ")", indent)

    def sequence_literal(self, kind: str, items: list[str], indent: int) -> str:
        if kind == "tuple":
            if len(items) == 1:
                one = _layout("(", items, ")", indent)
                return one[:-1] + ",)" if "\n" not in one else one
            return _layout("(", items, ")", indent)
        if kind == "list":
            return _layout("[", items, "]", indent)
        if kind == "set":
            return _layout("{", items, "}", indent) if items else "set()"
        return "frozenset(" + _layout("[", items, "]", indent) + ")" if items else "frozenset()"

    def dict_literal(self, pairs: list[tuple[str, str]], indent: int) -> str:
        return _layout("{", [f"{k}: {v}" for k, v in pairs], "}", indent)


def _layout(opening: str, items: list[str], closing: str, indent: int) -> str:
    """One line when it fits, else one item per line (with a trailing comma), indented."""
    flat = opening + ", ".join(items) + closing
    if "\n" not in flat and indent + len(flat) <= _WIDTH:
        return flat
    pad = " " * (indent + 4)
    return opening + "\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + closing


def _literal(value: Any) -> str:
    """Python source for a plain value (``repr`` except for the floats repr cannot spell)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"float({repr(value)!r})"
    if isinstance(value, complex):
        return f"complex({repr(value)!r})"
    return repr(value)


# -- reading ----------------------------------------------------------------------


_HEADER_PREFIX = b"# tapster application source, format "


def sniff(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf").startswith(_HEADER_PREFIX)


def _check_version(data: bytes, filename: str) -> None:
    """A file whose header names a newer format is refused before a line of it runs."""
    first = data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if not first.startswith(_HEADER_PREFIX):
        return  # hand-written, Twisted-style: no header, no promise
    version = first[len(_HEADER_PREFIX):].strip()
    if version != str(FORMAT_VERSION).encode():
        shown = version.decode("ascii", "replace")[:20]
        raise PersistError(
            f"{filename}: written in source format {shown}; "
            f"this tapster reads format {FORMAT_VERSION} (upgrade tapster)"
        )


def load(data: bytes, filename: str) -> Any:
    """Run the source and return its ``application``; PersistError (with the line) if it fails."""
    import sys
    import traceback

    _check_version(data, filename)
    try:
        code = compile(data, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:  # ValueError: null bytes on older Pythons
        detail = (getattr(e, "msg", None) or str(e)).replace("\n", " ")
        lineno = getattr(e, "lineno", None)
        if lineno is None:  # not a mistake on a line: null bytes, a bad coding cookie
            raise PersistError(f"{filename}: not Python source ({detail})") from None
        raise PersistError(f"{filename} line {lineno}: {detail} (the file is not valid Python)") from None
    import builtins

    from tapster.core._persist.aliases import legacy_import

    # The file's imports go through the alias table: an old .tas says "from core.service import ...".
    file_builtins = dict(vars(builtins), __import__=legacy_import)
    namespace: dict[str, Any] = {"__name__": "__tapster_application__", "__file__": filename,
                                 "__builtins__": file_builtins}
    try:
        exec(code, namespace)  # noqa: S102 - the source format runs code by design (trusted files)
    except Exception as e:  # noqa: BLE001 - any failure of the file's code
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
        where = f"{filename} line {frames[-1].lineno}" if frames else filename
        message = str(e).replace("\n", " ")
        raise PersistError(f"{where}: running it failed: {type(e).__name__}: {message}") from e
    finally:
        sys.modules.pop("__tapster_application__", None)
    if "application" not in namespace:
        raise PersistError(f"{filename}: defines no 'application' (a .tas file must set application = ...)")
    return namespace["application"]
