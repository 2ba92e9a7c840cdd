"""Command-line options: tapster's ``usage.Options``, with Twisted's semantics.

Plugin authors subclass :class:`Options` exactly as they would
``twisted.python.usage.Options``::

    class Options(usage.Options):
        optFlags = [["verbose", "v", "Log every connection."]]
        optParameters = [["port", "p", 8007, "Port to listen on.", usage.portCoerce]]

        def opt_define(self, symbol):
            '''Define a symbol (repeatable).'''
            self.setdefault("symbols", []).append(symbol)
        opt_D = opt_define

The parsed values live in the options object itself, which is a ``dict``
(``config["port"]``); ``self.opts`` is the same dict, as in Twisted.

Parsing follows ``getopt``: options come first and parsing stops at the first
argument that is not an option (or after ``--``), so that ``mktap --append
x.tap qotd --port 8007`` hands ``qotd --port 8007`` to the sub-command. Long
options may be abbreviated to any unique prefix. Every mistake a user can make
raises :class:`UsageError` with a message naming the option and the fix.

Why this module is written the way it is:

* ``mktap --help`` must start fast, so nothing here imports asyncio, ``typing``,
  ``re`` or ``textwrap`` at module level; suggestions (``difflib``) are
  imported only on the error path.
* An ``Options`` instance often ends up inside a saved application (plugins
  keep ``config`` on their services), so it must pickle. The parse tables are
  derived from the class and rebuilt on unpickling; they never go into the
  pickle, so coerce functions may be lambdas.
"""

from __future__ import annotations

import os
import sys

from tapster.core.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~10 ms at start-up
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn, Protocol, TypedDict, Unpack

    class _ParentCommand(Protocol):
        """What a sub-command's Options asks of its ``parent``: an Options, or mktap's stand-in."""

        @property
        def subCommand(self) -> str | None: ...

        def getSynopsis(self) -> str: ...

        def _commandName(self) -> str: ...

    class _CompleterKeywords(TypedDict, total=False):
        descr: str | None
        repeat: bool

    # The values are the options', of as many types as there are options: Any, as in Twisted.
    _OptionsBase = dict[str, Any]
else:
    _OptionsBase = dict

__all__ = [
    "UsageError",
    "Options",
    "OptionSpec",
    "CoerceParameter",
    "portCoerce",
    "flagFunction",
    "Completions",
    "Completer",
    "CompleteFiles",
    "CompleteDirs",
    "CompleteList",
    "CompleteMultiList",
    "CompleteUsernames",
    "CompleteGroups",
    "CompleteHostnames",
    "CompleteUserAtHost",
    "CompleteNetInterfaces",
]


error = UsageError  # Twisted's old alias, kept for ported code

# The shell types Completer._shellCode accepts, under Twisted's names (its own tests use them).
_ZSH = "zsh"
_BASH = "bash"


def _spell(name: str) -> str:
    """How a user types an option: ``-p`` for one letter, ``--port`` otherwise."""
    return f"-{name}" if len(name) == 1 else f"--{name}"


def _norm(name: str) -> str:
    """Long names match with dashes and underscores interchangeable (``opt_foo_bar`` is ``--foo-bar``)."""
    return name.replace("_", "-")


def _collapse(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def portCoerce(value: str) -> int:
    """Coerce a string to a TCP/UDP port number (0 to 65535), raising ``ValueError`` otherwise."""
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a port number. {_PORT_RULE}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range. {_PORT_RULE}")
    return port


_PORT_RULE = "Must be an int between 0 and 65535."
portCoerce.coerceDoc = _PORT_RULE  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def _coerceFailure(name: str, value: object, coerce: object, exc: Exception) -> UsageError:
    """Build the message for a value a coerce function refused: option, bad value, and the rule."""
    flag = _spell(name)
    if coerce is int:
        reason = f"{value!r} is not an integer"
    elif coerce is float:
        reason = f"{value!r} is not a number"
    elif not getattr(coerce, "coerceDoc", ""):
        # A plugin's own coerce function: Twisted's message, which ported code and tests expect.
        return UsageError(f"Parameter type enforcement failed: {exc}")
    else:
        reason = str(exc) or type(exc).__name__
        if str(value) not in reason:
            reason = f"{value!r}: {reason}"
    doc = getattr(coerce, "coerceDoc", "")
    if doc and doc not in reason:
        reason = f"{reason}. {doc}"
    return UsageError(f"invalid value for {flag}: {reason}")


class CoerceParameter:
    """Stores a parameter's value in an :class:`Options` after passing it through ``coerce``.

    ``coerce`` raising ``ValueError`` becomes a :class:`UsageError` naming the
    option and the bad value; its ``coerceDoc`` attribute, if any, is the rule
    shown in ``--help``.
    """

    def __init__(self, options: Options, coerce: Callable[[str], object]) -> None:
        self.options = options
        self.coerce = coerce
        self.doc: str = getattr(coerce, "coerceDoc", "")

    def dispatch(self, parameterName: str, value: str | None) -> None:
        if value is None:
            raise UsageError(f"option {_spell(parameterName)} requires a value")
        try:
            coerced = self.coerce(value)
        except ValueError as exc:
            raise _coerceFailure(parameterName, value, self.coerce, exc) from exc
        self.options.opts[parameterName] = coerced


def _arity(func: object) -> tuple[int, int | None, tuple[str, ...]] | None:
    """(minimum, maximum or None, names) of positional arguments ``func`` accepts, self excluded.

    Read from the code object rather than ``inspect.signature``: importing
    ``inspect`` alone costs several milliseconds. None when it cannot be told.
    """
    target = getattr(func, "__func__", func)
    code = getattr(target, "__code__", None)
    if code is None:
        return None
    count = code.co_argcount
    names = code.co_varnames[:count]
    if hasattr(func, "__self__"):  # bound method: the instance fills the first slot
        count -= 1
        names = names[1:]
    required = count - len(getattr(target, "__defaults__", None) or ())
    varargs = bool(code.co_flags & 0x04)  # CO_VARARGS
    return max(required, 0), (None if varargs else count), names


def flagFunction(method: Callable[..., object], name: str | None = None) -> bool:
    """True if the ``opt_*`` method takes no value (a flag), False if it takes one (a parameter)."""
    arity = _arity(method)
    if arity is None:
        import inspect  # rare: a callable object or builtin used as an option handler

        count = len(inspect.signature(method).parameters)
    else:
        low, high, _ = arity
        count = max(low, 1) if high is None else high
    if count > 1:
        # Twisted's words, which ported tests pin; the rule: no argument (a flag) or one (the value)
        raise UsageError(f"Invalid Option function for {name or getattr(method, '__name__', repr(method))}")
    return count == 0


class OptionSpec:
    """One option as the parser sees it. Plain data, rebuilt from the class, never pickled.

    Public so that tools working from an Options class (YAML recipes, shell
    completion, documentation generators) read the same table the parser uses:
    see :meth:`Options.optionSpecs`, :meth:`Options.findOption`,
    :meth:`Options.lookupOption` and :meth:`Options.scanArguments`.
    """

    __slots__ = (
        "key",
        "long",
        "short",
        "takesArg",
        "kind",
        "doc",
        "default",
        "coerce",
        "method",
        "aliases",
        "declared",
    )

    def __init__(
        self,
        key: str,
        long: str | None,
        short: str | None,
        takesArg: bool,
        kind: str,
        doc: str | None = None,
        default: object = None,
        coerce: Callable[[str], object] | None = None,
        method: str | None = None,
    ) -> None:
        self.key = key  # the dict key for flags and parameters
        self.long = long  # display long name, None for a one-letter opt_ method
        self.short = short
        self.takesArg = takesArg
        self.kind = kind  # "flag" | "param" | "method"
        self.doc = doc
        self.default = default
        self.coerce = coerce
        self.method = method  # attribute suffix of the opt_ method
        self.aliases: list[str] = []  # further long names (opt_ aliases)
        self.declared = kind != "method"  # in optFlags/optParameters: the dict gets its default

    def spellings(self) -> list[str]:
        """Every way to type this option: ``-p``, ``--port`` and long aliases."""
        out = [f"-{self.short}"] if self.short else []
        if self.long:
            out.append(f"--{self.long}")
        out.extend(f"--{alias}" for alias in self.aliases)
        return out

    @property
    def name(self) -> str:
        """The name used in messages and as the key for completion data."""
        return self.long or self.short or self.key


def _entries(klass: type, attr: str, size: int) -> list[list[Any]]:  # Any: a row mixes names, docs, defaults
    """The ``optFlags``/``optParameters`` rows a class defines itself, padded to ``size`` with None."""
    rows = []
    for entry in klass.__dict__.get(attr) or ():
        row = list(entry)
        if len(row) > size:
            raise ValueError(f"{klass.__qualname__}.{attr}: {entry!r} has {len(row)} items, at most {size} allowed")
        row.extend([None] * (size - len(row)))
        if not row[0]:
            raise ValueError(f"{klass.__qualname__}.{attr}: {entry!r} has no long name")
        row[1] = row[1] or None  # "" is a common way to say "no short name"
        if row[1] is not None and (not isinstance(row[1], str) or len(row[1]) != 1):
            raise ValueError(f"{klass.__qualname__}.{attr}: short name {row[1]!r} must be one character or None")
        rows.append(row)
    return rows


class Options(_OptionsBase):
    """Parses a command line into itself, a dict of option values; subclass it to declare options.

    Declarations (all gathered from every class in the hierarchy, base first):

    * ``optFlags``: ``[long, short, doc]``; the value is False, True once seen.
    * ``optParameters``: ``[long, short, default, doc, coerce]``; ``coerce`` is
      optional and the default is stored as given (never coerced).
      ``optStrings``, the original name of ``optParameters``, is read too.
      A ``ValueError`` from a plugin's own ``coerce`` becomes Twisted's
      ``UsageError("Parameter type enforcement failed: ...")``; ``int``,
      ``float`` and coercers with a ``coerceDoc`` get a message naming the option.
    * ``opt_<name>`` methods: no argument makes a flag, one argument a
      parameter; called each time the option appears; the docstring is the help.
      ``opt_x = opt_xxx`` adds ``-x`` (or another long name) as an alias.
    * ``subCommands``: ``[name, shortcut, parserClass, doc]``; ``parserClass``
      is any zero-argument callable returning an Options, called only for the
      chosen command. ``defaultSubCommand`` names the command used when none
      is given.
    * ``synopsis``, ``longdesc``, ``docs`` (a dict overriding option help),
      ``compData`` (a :class:`Completions`), ``version``, ``programName``
      (tapster extension: the command name in the synopsis and ``--version``).

    After ``parseOptions``: ``subCommand`` and ``subOptions`` (whose ``parent``
    is this object) when a command was given; ``parseArgs(*args)`` got the
    remaining arguments otherwise; ``postOptions()`` ran last.
    """

    # Declarations a subclass may make (annotations only: nothing is set here, and the
    # parser reads each class's own). Rows mix names, docs, defaults and callables: Any.
    optFlags: Sequence[Sequence[Any]]
    optParameters: Sequence[Sequence[Any]]
    subCommands: Sequence[Sequence[Any]]
    synopsis: str
    longdesc: str
    docs: dict[str, str | None]  # a subclass's overrides; after __init__, every option's help
    version: str

    parent: _ParentCommand | None = None
    subCommand: str | None = None
    defaultSubCommand: str | None = None
    compData: Completions | None = None
    programName: str | None = None
    #: After parseOptions, when a sub-command was given: its parsed Options.
    subOptions: Options

    def __init__(self) -> None:
        super().__init__()
        self.opts = self
        self._buildTables()
        for spec in self._specs.values():
            if spec.declared:
                self[spec.key] = spec.default

    # Twisted makes Options hashable by identity so that a config can key a dict.
    __hash__ = object.__hash__  # type: ignore[assignment]  # dict declares __hash__ None, on purpose

    # ----------------------------------------------------------------- tables

    def _buildTables(self) -> None:
        """Derive the parse tables and Twisted's public attributes from the class."""
        cls = type(self)
        mro = list(reversed(cls.__mro__))
        specs: dict[str, OptionSpec] = {}
        for klass in mro:
            for long, short, doc in _entries(klass, "optFlags", 3):
                specs[_norm(long)] = OptionSpec(long, long, short, False, "flag", doc, False)
            # optStrings: the original name of optParameters, still read (before optParameters, as Twisted did)
            for attr in ("optStrings", "optParameters"):
                for long, short, default, doc, coerce in _entries(klass, attr, 5):
                    specs[_norm(long)] = OptionSpec(long, long, short, True, "param", doc, default, coerce)

        # opt_ methods, in definition order; the base class's own (help, version) last.
        names: list[str] = []
        for klass in [k for k in mro if k is not Options] + [Options]:
            for attr in klass.__dict__:
                if attr.startswith("opt_") and len(attr) > 4 and attr[4:] not in names:
                    names.append(attr[4:])
        groups: dict[object, list[str]] = {}  # the function behind each opt_ method → its names
        for name in names:
            method = getattr(self, "opt_" + name, None)
            if callable(method):  # ``opt_foo = None`` in a subclass removes --foo
                groups.setdefault(getattr(method, "__func__", method), []).append(name)
        for group in groups.values():
            longs = [n for n in group if len(n) > 1]
            shorts = [n for n in group if len(n) == 1]
            canonical = max(longs or group, key=len)
            method = getattr(self, "opt_" + canonical)
            takesArg = not flagFunction(method, "opt_" + canonical)
            long = _norm(canonical) if len(canonical) > 1 else None
            spec = OptionSpec(canonical, long, shorts[0] if shorts else None, takesArg, "method",
                        method.__doc__, None, None, canonical)
            spec.aliases = [_norm(n) for n in longs if n != canonical]
            previous = specs.get(_norm(canonical))
            if previous is not None:  # an opt_ method overrides a declared option, keeping its data
                spec.key = previous.key
                spec.long = previous.long
                spec.default = previous.default
                spec.declared = True
                spec.doc = spec.doc or previous.doc
                spec.short = spec.short or previous.short
            specs[_norm(canonical)] = spec

        overrides: dict[str, str] = {}
        for klass in mro:
            overrides.update({_norm(k): v for k, v in (klass.__dict__.get("docs") or {}).items()})

        longTable: dict[str, OptionSpec] = {}
        shortTable: dict[str, OptionSpec] = {}
        for spec in specs.values():
            if spec.long:
                longTable[_norm(spec.long)] = spec
            for alias in spec.aliases:
                longTable.setdefault(alias, spec)
            if spec.short:
                shortTable[spec.short] = spec
            for key in (spec.long, spec.key, spec.short):
                if key and _norm(key) in overrides:
                    spec.doc = overrides[_norm(key)]
                    break
            if spec.doc:
                spec.doc = _collapse(spec.doc)

        self._specs = specs
        self._long = longTable
        self._short = shortTable
        # Twisted's public attributes, for code that introspects them.
        self.defaults = {s.key: s.default for s in specs.values() if s.declared}
        self.docs = {s.name: s.doc for s in specs.values()}
        # As Twisted: every name (short, long, aliases) -> the option's name: a declared
        # option's long name as written, an opt_ method's longest name with dashes.
        self.synonyms = {}
        for s in specs.values():
            target = s.key if s.kind != "method" or s.declared else _norm(s.key)
            for spelled in s.spellings():
                self.synonyms[spelled.lstrip("-")] = target
            self.synonyms.setdefault(s.key, target)
        self.longOpt = [s.long + ("=" if s.takesArg else "") for s in specs.values() if s.long]
        self.shortOpt = "".join(s.short + (":" if s.takesArg else "") for s in specs.values() if s.short)

    def optionSpecs(self) -> list[OptionSpec]:
        """Every option this parser knows, in help order (completion and recipes read it)."""
        return list(self._specs.values())

    def findOption(self, name: str) -> OptionSpec | None:
        """The option called ``name`` (long, short or key, with or without dashes), or None."""
        bare = name.lstrip("-") if name.startswith("-") and len(name) > 1 else name
        if len(bare) == 1 and bare in self._short:
            return self._short[bare]
        return self._long.get(_norm(bare)) or self._specs.get(_norm(bare))

    # ---------------------------------------------------------------- pickling

    _DERIVED = ("_specs", "_long", "_short", "defaults", "docs", "synonyms", "longOpt", "shortOpt")

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        # Always the protocol-2 shape, even for protocols 0 and 1 (whose default
        # skips __setstate__ when the state is empty, leaving no parse tables).
        import copyreg

        newobj = copyreg.__newobj__  # type: ignore[attr-defined]  # pickle's NEWOBJ helper; typeshed omits it
        return newobj, (type(self),), self.__getstate__(), None, iter(self.items())

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        for name in self._DERIVED:
            state.pop(name, None)
        if state.get("opts") is self:
            del state["opts"]  # restored as self: a copy must not alias the original
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if "opts" not in state:
            self.opts = self
        self._buildTables()

    # ----------------------------------------------------------------- parsing

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """Parse ``options`` (default ``sys.argv[1:]``), then sub-command or ``parseArgs``, then ``postOptions``."""
        if options is None:
            options = sys.argv[1:]
        elif isinstance(options, str):
            raise TypeError("parseOptions() takes a list of arguments, not a string: use shlex.split() first")
        found, rest = self.scanArguments(list(options))
        for spec, value, spelled in found:
            self._dispatchOption(spec, value, spelled)

        subCommands = getattr(self, "subCommands", None)
        default = self.defaultSubCommand
        if subCommands and (rest or default is not None):
            if not rest and default is not None:
                rest = [default]
            sub, subArgs = rest[0], rest[1:]
            for entry in subCommands:
                name, short, parserClass = (list(entry) + [None] * 4)[:3]
                if sub == name or (short and sub == short):
                    self.subCommand = name
                    self.subOptions = parserClass()
                    self.subOptions.parent = self
                    self.subOptions.parseOptions(subArgs)
                    break
            else:
                raise UsageError(self._unknownCommand(sub, subCommands))
        else:
            self._callParseArgs(rest)
        self.postOptions()

    def scanArguments(self, argv: list[str]) -> tuple[list[tuple[OptionSpec, str | None, str]], list[str]]:
        """getopt-style scan: (option, value, as typed) triples and the arguments left over.

        Everything is checked before any handler runs, as with Twisted's getopt,
        so ``--help --bogus`` reports the bogus option instead of printing help.
        """
        found: list[tuple[OptionSpec, str | None, str]] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                i += 1
                break
            if not arg.startswith("-") or arg == "-":
                break
            if arg.startswith("--"):
                name, eq, value = arg[2:].partition("=")
                spec = self.lookupOption(name)
                # as typed when exact; an abbreviation is reported by its full name
                spelled = f"--{name}" if _norm(name) in self._long else f"--{spec.long}"
                if spec.takesArg:
                    if not eq:
                        if i + 1 >= len(argv):
                            raise UsageError(f"option {spelled} requires a value: {spelled}=VALUE")
                        i += 1
                        value = argv[i]
                    found.append((spec, value, spelled))
                elif eq:
                    raise UsageError(f"option {spelled} is a flag and takes no value: use {spelled} alone, not {arg}")
                else:
                    found.append((spec, None, spelled))
            else:
                for j in range(1, len(arg)):
                    letter = arg[j]
                    short = self._short.get(letter)
                    if short is None:
                        raise UsageError(f"option -{letter} not recognized")  # getopt's words, as Twisted
                    spec = short
                    if not spec.takesArg:
                        found.append((spec, None, f"-{letter}"))
                        continue
                    value = arg[j + 1 :]
                    if not value:
                        if i + 1 >= len(argv):
                            raise UsageError(f"option -{letter} requires a value: -{letter} VALUE")
                        i += 1
                        value = argv[i]
                    found.append((spec, value, f"-{letter}"))
                    break
            i += 1
        return found, argv[i:]

    def lookupOption(self, name: str) -> OptionSpec:
        """Find a long option by exact name or unique prefix (as getopt does), else a helpful error."""
        key = _norm(name)
        spec = self._long.get(key)
        if spec is not None:
            return spec
        if key:
            matches = {k: s for k, s in self._long.items() if k.startswith(key)}
            distinct = {id(s): s for s in matches.values()}
            if len(distinct) == 1:
                return next(iter(distinct.values()))
            if distinct:
                listed = ", ".join(f"--{k}" for k in sorted(matches))
                raise UsageError(f"option --{name} is ambiguous: it could be {listed} (type more of the name)")
        import difflib

        close = difflib.get_close_matches(key, list(self._long), n=1, cutoff=0.6)
        hint = f" (did you mean --{close[0]}?)" if close else " (run with --help to list the options)"
        raise UsageError(f"option --{name} not recognized{hint}")

    def _dispatchOption(self, spec: OptionSpec, value: str | None, spelled: str) -> None:
        if spec.kind == "flag":
            self.opts[spec.key] = True
        elif spec.kind == "param":
            CoerceParameter(self, spec.coerce or str).dispatch(spec.key, value)
        else:
            assert spec.method is not None  # every "method" spec names its opt_ method
            method = getattr(self, "opt_" + spec.method)
            if not spec.takesArg:
                method()
                return
            try:
                method(value)
            except ValueError as exc:  # an opt_ method rejecting its value is a usage error
                raise UsageError(f"invalid value for {spelled}: {value!r}: {exc}") from exc

    def _unknownCommand(self, sub: str, subCommands: Sequence[Sequence[Any]]) -> str:  # Any: rows as in _entries
        names = [entry[0] for entry in subCommands]
        import difflib

        everything = names + [entry[1] for entry in subCommands if len(entry) > 1 and entry[1]]
        close = difflib.get_close_matches(sub, everything, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"Unknown command: {sub}{hint}. Commands: {', '.join(names)}."

    def _callParseArgs(self, args: list[str]) -> None:
        """Call ``parseArgs`` after checking the count, so a TypeError inside it is not mistaken for one."""
        arity = _arity(self.parseArgs)
        if arity is None:
            try:
                self.parseArgs(*args)
            except TypeError as exc:
                raise UsageError("Wrong number of arguments.") from exc
            return
        low, high, names = arity
        if len(args) < low or (high is not None and len(args) > high):
            shown = " ".join(n.upper() if k < low else f"[{n.upper()}]" for k, n in enumerate(names))
            if high == 0:
                expected = "no arguments"
            elif high == low:
                expected = f"{low} argument{'s' if low != 1 else ''} ({shown})"
            elif high is None:
                expected = f"at least {low} argument{'s' if low != 1 else ''}"
            else:
                expected = f"{low} to {high} arguments ({shown})"
            got = f"got {len(args)}" + (": " + " ".join(repr(a) for a in args) if args else "")
            raise UsageError(f"Wrong number of arguments. Expected {expected}, {got}.")
        self.parseArgs(*args)

    def parseArgs(self) -> None:
        """Receive the arguments left after the options; override to accept some (the default takes none)."""

    def postOptions(self) -> None:
        """Called after everything is parsed; override to check or fix values (raise UsageError)."""

    # ------------------------------------------------------------- built-ins

    def opt_help(self) -> NoReturn:
        """Display this help and exit."""
        sys.stdout.write(str(self))
        sys.stdout.flush()
        raise SystemExit(0)

    def opt_version(self) -> NoReturn:
        """Display the version and exit."""
        version = getattr(self, "version", None)
        if version is None:
            from tapster.core import __version__ as version
        print(f"{self._commandName()} {version}")
        sys.stdout.flush()
        raise SystemExit(0)

    # ------------------------------------------------------------------ help

    def _commandName(self) -> str:
        """``mktap`` at the top, ``mktap qotd`` for a sub-command's options."""
        if self.parent is not None:
            return f"{self.parent._commandName()} {self.parent.subCommand}"
        if self.programName:
            return self.programName
        base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        if base == "__main__.py":  # ``python -m mktap``: name the package
            base = os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0])))
        return base or "tapster"

    def getSynopsis(self) -> str:
        """One line: ``Usage: mktap [options]``; a sub-command's includes its parent's."""
        synopsis = getattr(self, "synopsis", None)
        if self.parent is None:
            # Twisted shows a top-level synopsis verbatim ("Usage: twistd [options]");
            # plugin synopses ("[-p PORT]") get the usual prefix when parsed on their own.
            name = self._commandName()
            if synopsis is None:
                synopsis = "[options]"
            if synopsis.startswith(name + " "):
                synopsis = f"Usage: {synopsis}"
            elif not synopsis.startswith("Usage:"):
                synopsis = f"Usage: {name} {synopsis}"
            return synopsis.rstrip()
        if synopsis is None:
            synopsis = "[options]"
        return " ".join((self.parent.getSynopsis(), str(self.parent.subCommand), synopsis.rstrip())).rstrip()

    def getUsage(self, width: int | None = None) -> str:
        """The help text: every option with its doc, coerce rule and default, ``longdesc``, commands."""
        chosen: Options | None = getattr(self, "subOptions", None)
        if chosen is not None:  # as Twisted: once a command is chosen, its help is the relevant one
            return chosen.getUsage(width=width)
        if not width:
            try:
                width = int(os.environ.get("COLUMNS", "80"))
            except ValueError:
                width = 80
        width = max(width, 40)

        rows = []
        for spec in self._specs.values():
            eq = "=" if spec.takesArg else ""
            if spec.short and spec.long:
                left = f"  -{spec.short}, --{spec.long}{eq}"
            elif spec.long:
                left = f"      --{spec.long}{eq}"
            else:
                left = f"  -{spec.short}"
            parts = [spec.doc] if spec.doc else []
            rule = getattr(spec.coerce, "coerceDoc", "") if spec.coerce else ""
            if rule:
                parts.append(rule)
            if spec.takesArg and spec.default is not None:
                parts.append(f"[default: {spec.default}]")
            rows.append((left, " ".join(parts)))
        text = "Options:\n" + _table(rows, width) if rows else "Options: None\n"

        longdesc = getattr(self, "longdesc", None)
        if longdesc:
            paragraphs = [p.strip("\n") for p in longdesc.strip().split("\n\n") if p.strip()]
            # A paragraph with an indented line is a table or an example: kept as written.
            text += "\n" + "\n\n".join(
                p if any(line[:1].isspace() for line in p.splitlines()) else "\n".join(_wrap(p, width))
                for p in paragraphs
            ) + "\n"

        subCommands = getattr(self, "subCommands", None)
        if subCommands:
            cmdRows = []
            for entry in subCommands:
                name, short, _, doc = (list(entry) + [None] * 4)[:4]
                left = f"  {name}, {short}" if short else f"  {name}"
                doc = _collapse(doc)
                if name == self.defaultSubCommand:
                    doc = f"{doc} (default)".strip()
                cmdRows.append((left, doc))
            text += "\nCommands:\n" + _table(cmdRows, width)
        return text

    def __str__(self) -> str:
        return self.getSynopsis() + "\n" + self.getUsage(width=None)


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap; ``textwrap`` would pull in ``re`` on the ``--help`` path."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _table(rows: list[tuple[str, str]], width: int) -> str:
    """Two columns: option spellings on the left, wrapped help on the right."""
    column = min(max(len(left) for left, _ in rows) + 2, max(width // 3, 16))
    docWidth = max(width - column, 20)
    out = []
    for left, doc in rows:
        lines = _wrap(doc, docWidth) or [""]
        if len(left) + 2 > column:  # too wide: help starts on the next line
            out.append(left)
            out.extend(" " * column + line for line in lines if line)
        else:
            out.append((left.ljust(column) + lines[0]).rstrip())
            out.extend(" " * column + line for line in lines[1:])
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- completion


class Completions:
    """Extra information for shell completion, set as an Options subclass's ``compData``.

    * ``descriptions``: option name -> text shown instead of the option's help.
    * ``multiUse``: options that may be given more than once.
    * ``mutuallyExclusive``: groups (sequences of names) of options that exclude each other.
    * ``optActions``: option name -> :class:`Completer` for its value.
    * ``extraActions``: Completers for the positional arguments, in order; only
      the last may have ``repeat=True``.

    Names may be long names, short letters or ``opt_`` method names.
    """

    def __init__(
        self,
        descriptions: dict[str, str] | None = None,
        multiUse: Sequence[str] | None = None,
        mutuallyExclusive: Sequence[Sequence[str]] | None = None,
        optActions: dict[str, Completer] | None = None,
        extraActions: Sequence[Completer] | None = None,
    ) -> None:
        self.descriptions = dict(descriptions or {})
        self.multiUse = list(multiUse or [])
        self.mutuallyExclusive = [tuple(group) for group in mutuallyExclusive or []]
        self.optActions = dict(optActions or {})
        self.extraActions = list(extraActions or [])
        for action in self.extraActions[:-1]:
            if action._repeat:
                raise ValueError("a Completer with repeat=True must be the last item of extraActions")


class Completer:
    """Completes an option's value or a positional argument; this base class offers nothing.

    ``descr`` is the message the shell shows (default: the option name);
    ``repeat`` (positional arguments only) means "and any number more". The
    completers are plain data: :mod:`tapster.core._completion` turns them into zsh and
    bash code. A custom subclass may define ``_zshAction(optName)`` (a zsh
    ``_arguments`` action) and ``_bashGenerator()`` (bash code printing the
    candidates for the prefix ``$cur``, one per line).
    """

    _descr: str | None = None

    def __init__(self, descr: str | None = None, repeat: bool = False) -> None:
        if descr is not None:
            self._descr = descr
        self._repeat = repeat

    @property
    def _repeatFlag(self) -> str:
        return "*" if self._repeat else ""

    def _description(self, optName: str) -> str:
        return self._descr if self._descr is not None else optName

    def _shellCode(self, optName: str, shellType: str) -> str:
        """Twisted's hook: the zsh ``[*]:message:action`` fragment, or the bash generator code."""
        from tapster.core._completion import shell_code

        return shell_code(self, optName, shellType)


class CompleteFiles(Completer):
    """File names matching ``globPattern`` (directories are offered too, to walk into)."""

    def __init__(self, globPattern: str = "*", **kw: Unpack[_CompleterKeywords]) -> None:
        super().__init__(**kw)
        self._globPattern = globPattern

    def _description(self, optName: str) -> str:
        return f"{super()._description(optName)} ({self._globPattern})"  # as Twisted, "*" included


class CompleteDirs(Completer):
    """Directory names."""


class CompleteList(Completer):
    """One word from a fixed list."""

    def __init__(self, items: Sequence[str] | None, **kw: Unpack[_CompleterKeywords]) -> None:
        super().__init__(**kw)
        self._items = [str(item) for item in items or ()]  # None: no words (Twisted allows it)


class CompleteMultiList(Completer):
    """Several comma-separated words from a fixed list."""

    def __init__(self, items: Sequence[str] | None, **kw: Unpack[_CompleterKeywords]) -> None:
        super().__init__(**kw)
        self._items = [str(item) for item in items or ()]  # None: no words (Twisted allows it)


class CompleteUsernames(Completer):
    """Local user names (the message is the option name, as in Twisted)."""


class CompleteGroups(Completer):
    """Local group names."""

    _descr = "group"


class CompleteHostnames(Completer):
    """Host names the shell knows (``/etc/hosts``, ssh known hosts)."""


class CompleteUserAtHost(Completer):
    """``host`` or ``user@host``."""

    _descr = "host | user@host"


class CompleteNetInterfaces(Completer):
    """Network interface names (``eth0``, ``lo``)."""
