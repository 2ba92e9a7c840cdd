"""Shell completion scripts generated from an :class:`tapster.core.usage.Options` class.

``zsh_completion(Options, "mktap")`` returns a zsh completion function built on
``_arguments``; ``bash_completion(Options, "mktap")`` returns a bash function
registered with ``complete -F``. Both walk ``subCommands`` recursively, so
``mktap qotd --po<TAB>`` completes the plugin's own options, and both honour
``compData`` (:class:`tapster.core.usage.Completions`): descriptions, repeatable and
mutually exclusive options, value completers and positional completers.

The scripts are static text: completing never runs Python, which keeps the
shell responsive (starting the interpreter alone takes tens of milliseconds).
Regenerate them when plugins change. A sub-command whose parser fails to load
is still offered by name, without options: one broken plugin must not break
completion for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tapster.core.usage import (
    CompleteDirs,
    CompleteFiles,
    CompleteGroups,
    CompleteHostnames,
    CompleteList,
    CompleteMultiList,
    CompleteNetInterfaces,
    Completer,
    CompleteUserAtHost,
    CompleteUsernames,
    Completions,
    Options,
)

__all__ = ["zsh_completion", "bash_completion", "shell_code"]


def _sq(text: str) -> str:
    """Quote for sh, bash and zsh as one single-quoted word."""
    return "'" + text.replace("'", "'\\''") + "'"


def _escaped(items: list[str], special: str) -> str:
    return " ".join("".join("\\" + c if c in special else c for c in item) for item in items)


# ---------------------------------------------------------- completer actions
# What each completer offers, per shell. A table rather than methods on the
# completers keeps shell knowledge here and tapster.core.usage small and quick to import.

_ZSH_WORD_SPECIAL = " \t\\'\"$`()[]{}:;&|<>*?~#"
# compgen -W expands its word list again, so shell characters need a backslash.
_BASH_WORD_SPECIAL = " \t\\'\"$`!*?[](){}<>|&;#~="


def _zshFiles(c: Any, optName: str) -> str:
    glob = c._globPattern  # always with -g, "*" included, as Twisted emits it
    return '_files -g "' + glob.replace("\\", "\\\\").replace('"', '\\"') + '"'


_ZSH: dict[type, Any] = {
    CompleteFiles: _zshFiles,
    CompleteDirs: lambda c, n: "_directories",
    CompleteList: lambda c, n: f"({_escaped(c._items, _ZSH_WORD_SPECIAL)})",
    CompleteMultiList: lambda c, n: (
        f"_values -s , {_sq(c._description(n))} {_escaped(c._items, _ZSH_WORD_SPECIAL)}"
    ),
    CompleteUsernames: lambda c, n: "_users",
    CompleteGroups: lambda c, n: "_groups",
    CompleteHostnames: lambda c, n: "_hosts",
    CompleteUserAtHost: lambda c, n: "_user_at_host",
    CompleteNetInterfaces: lambda c, n: "_net_interfaces",
}


def _bashFiles(c: Any) -> str:
    if c._globPattern == "*":
        return 'compgen -f -- "$cur"'
    return f'compgen -f -X {_sq("!" + c._globPattern)} -- "$cur"; compgen -d -- "$cur"'


# completer type -> (code printing candidates for the prefix $cur, compopt options)
_BASH: dict[type, tuple[Any, tuple[str, ...]]] = {
    CompleteFiles: (_bashFiles, ("filenames",)),
    CompleteDirs: (lambda c: 'compgen -d -- "$cur"', ("filenames",)),
    CompleteList: (lambda c: f'compgen -W {_sq(_escaped(c._items, _BASH_WORD_SPECIAL))} -- "$cur"', ()),
    CompleteMultiList: (
        lambda c: (
            'p=""; [[ $cur == *,* ]] && p="${cur%,*},"; '
            f'compgen -P "$p" -W {_sq(_escaped(c._items, _BASH_WORD_SPECIAL))} -- "${{cur##*,}}"'
        ),
        ("nospace",),
    ),
    CompleteUsernames: (lambda c: 'compgen -u -- "$cur"', ()),
    CompleteGroups: (lambda c: 'compgen -g -- "$cur"', ()),
    CompleteHostnames: (lambda c: 'compgen -A hostname -- "$cur"', ()),
    CompleteUserAtHost: (
        lambda c: (
            'if [[ $cur == *@* ]]; then compgen -P "${cur%%@*}@" -A hostname -- "${cur#*@}"; '
            'else compgen -u -S @ -- "$cur"; compgen -A hostname -- "$cur"; fi'
        ),
        ("nospace",),
    ),
    CompleteNetInterfaces: (
        lambda c: 'compgen -W "$(command ls /sys/class/net 2>/dev/null || ifconfig -l 2>/dev/null)" -- "$cur"',
        (),
    ),
}


def _lookup(table: dict[type, Any], completer: Completer) -> Any:
    for klass in type(completer).__mro__:
        if klass in table:
            return table[klass]
    return None


def _zshAction(completer: Completer, optName: str) -> str:
    custom = getattr(completer, "_zshAction", None)
    if custom is not None:
        return str(custom(optName))
    handler = _lookup(_ZSH, completer)
    return handler(completer, optName) if handler else ""  # Twisted's fragment: message only, no candidates


def _bashAction(completer: Completer) -> tuple[str, tuple[str, ...]]:
    custom = getattr(completer, "_bashGenerator", None)
    if custom is not None:
        return str(custom()), tuple(getattr(completer, "_bashCompopt", ()))
    entry = _lookup(_BASH, completer)
    if entry is None:
        return ":", ()  # no candidates
    generator, compopt = entry
    return generator(completer), compopt


def _zshScriptSpec(completer: Completer, optName: str) -> str:
    """``shell_code`` for the generated script: an empty action becomes a space.

    Both offer nothing; the space also makes ``_arguments`` show the message.
    """
    code = shell_code(completer, optName, "zsh")
    return code + " " if code.endswith(":") else code


def shell_code(completer: Completer, optName: str, shellType: str) -> str:
    """The zsh ``[*]:message:action`` fragment for ``completer`` as Twisted emits it, or its bash generator code."""
    if shellType == "zsh":
        message = _zshMessage(completer._description(optName))
        return f"{completer._repeatFlag}:{message}:{_zshAction(completer, optName)}"
    if shellType == "bash":
        return _bashAction(completer)[0]
    raise NotImplementedError(f"unknown shell type {shellType!r}: use 'zsh' or 'bash'")


@dataclass
class _OptionView:
    """One option as both generators need it."""

    short: str | None
    long: str | None
    aliases: list[str]
    takesArg: bool
    description: str
    action: Completer
    multiUse: bool
    excludes: list[str] = field(default_factory=list)  # other options' spellings

    @property
    def spellings(self) -> list[str]:
        out = [f"-{self.short}"] if self.short else []
        if self.long:
            out.append(f"--{self.long}")
        out.extend(f"--{a}" for a in self.aliases)
        return out


@dataclass
class _Command:
    """One level of the command line: its options, and either sub-commands or positionals."""

    path: list[str]
    options: list[_OptionView]
    extraActions: list[Completer]
    subCommands: list[tuple[str, str | None, str, _Command]]


def _instantiate(factory: Any) -> Options | None:
    if isinstance(factory, Options):
        return factory
    try:
        return factory()
    except Exception:  # a plugin that cannot load: offer its name only
        return None


def _mergedCompData(options: Options) -> Completions:
    """compData from every class in the hierarchy, base first; subclasses refine or override."""
    merged = Completions()
    sources = [klass.__dict__.get("compData") for klass in reversed(type(options).__mro__)]
    sources.append(vars(options).get("compData"))
    for data in sources:
        if not isinstance(data, Completions):
            continue
        merged.descriptions.update(data.descriptions)
        merged.multiUse.extend(data.multiUse)
        merged.mutuallyExclusive.extend(data.mutuallyExclusive)
        merged.optActions.update(data.optActions)
        if data.extraActions:
            merged.extraActions = list(data.extraActions)
    return merged


def _describe(options: Options | None, path: list[str]) -> _Command:
    if options is None:
        return _Command(path, [], [], [])
    data = _mergedCompData(options)
    specs = options.optionSpecs()

    def resolve(names: Any) -> list[Any]:
        found = [options.findOption(str(n)) for n in names]
        return [s for s in found if s is not None]  # unknown names are ignored, not fatal

    descriptions = {id(s): d for n, d in data.descriptions.items() for s in resolve([n])}
    actions = {id(s): a for n, a in data.optActions.items() for s in resolve([n])}
    multi = {id(s) for s in resolve(data.multiUse)}
    views: dict[int, _OptionView] = {}
    for spec in specs:
        views[id(spec)] = _OptionView(
            short=spec.short,
            long=spec.long,
            aliases=list(spec.aliases),
            takesArg=spec.takesArg,
            description=descriptions.get(id(spec)) or spec.doc or spec.name,
            action=actions.get(id(spec)) or Completer(),
            multiUse=id(spec) in multi,
        )
    for group in data.mutuallyExclusive:
        members = resolve(group)
        for spec in members:
            for other in members:
                if other is not spec:
                    views[id(spec)].excludes.extend(views[id(other)].spellings)

    subCommands = []
    for entry in getattr(options, "subCommands", None) or ():
        name, short, parser, doc = (list(entry) + [None] * 4)[:4]
        child = _describe(_instantiate(parser), [*path, str(name)])
        subCommands.append((str(name), short, " ".join(str(doc or "").split()), child))
    return _Command(path, list(views.values()), data.extraActions, subCommands)


def _ident(parts: list[str]) -> str:
    """A shell function name fragment from a command path."""
    return "_".join("".join(c if c.isalnum() else "_" for c in part) for part in parts)


# --------------------------------------------------------------------- zsh


def _zshExplanation(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _zshMessage(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _zshOptionSpecs(option: _OptionView) -> list[str]:
    """One ``_arguments`` spec per spelling, each listing what it excludes."""
    excludes = list(option.excludes)
    if not option.multiUse:
        excludes = option.spellings + excludes
    prefix = f"({' '.join(excludes)})" if excludes else ""
    star = "*" if option.multiUse else ""
    explanation = f"[{_zshExplanation(option.description)}]"
    value = ""
    if option.takesArg:
        name = option.long or option.short or "value"
        value = _zshScriptSpec(option.action, name)
    specs = []
    for spelled in option.spellings:
        form = spelled
        if option.takesArg:
            form += "=" if spelled.startswith("--") else "+"
        specs.append(f"{prefix}{star}{form}{explanation}{value}")
    return specs


def _zshFunction(command: _Command, base: str, out: list[str]) -> None:
    function = "_" + _ident([base, *command.path])
    specs = [spec for option in command.options for spec in _zshOptionSpecs(option)]
    if command.subCommands:
        specs += ["1:command:->command", "*::argument:->argument"]
    else:
        for action in command.extraActions:
            specs.append(_zshScriptSpec(action, "argument"))
    out.append(f"{function}() {{")
    if not specs:  # a sub-command whose options could not be loaded
        out.append("  _message 'no completions available'")
        out.append("  return 1")
        out.append("}")
        out.append("")
        return
    out.append('  local curcontext="$curcontext" state state_descr line ret=1')
    out.append("  typeset -A opt_args")
    out.append("  _arguments -C -s -S : \\")
    for spec in specs:
        out.append(f"    {_sq(spec)} \\")
    out.append("    && ret=0")
    if command.subCommands:
        label = " ".join([base, *command.path])
        out.append("  case $state in")
        out.append("    command)")
        out.append("      local -a commands")
        out.append("      commands=(")
        for name, _, doc, _ in command.subCommands:
            entry = _zshMessage(name) + (":" + doc if doc else "")
            out.append(f"        {_sq(entry)}")
        out.append("      )")
        out.append(f"      _describe -t commands {_sq(label + ' command')} commands && ret=0")
        out.append("      ;;")
        out.append("    argument)")
        out.append("      case $words[1] in")
        for name, short, _, child in command.subCommands:
            pattern = "|".join(_sq(n) for n in (name, short) if n)
            out.append(f"        ({pattern}) {'_' + _ident([base, *child.path])} && ret=0 ;;")
        out.append("      esac")
        out.append("      ;;")
        out.append("  esac")
    out.append("  return ret")
    out.append("}")
    out.append("")
    for _, _, _, child in command.subCommands:
        _zshFunction(child, base, out)


def zsh_completion(options_class: Any, command_name: str) -> str:
    """A zsh completion script for ``command_name`` whose options are ``options_class``.

    Install it as ``_<command>`` in a directory on ``$fpath``, or ``source`` it
    from ``.zshrc`` after ``compinit``.
    """
    command = _describe(_instantiate(options_class), [])
    function = "_" + _ident([command_name])
    out = [
        f"#compdef {command_name}",
        f"# zsh completion for {command_name}, generated by tapster (tapster.core._completion); do not edit.",
        "",
    ]
    _zshFunction(command, command_name, out)
    out += [
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then",
        f'  {function} "$@"',
        "else",
        f"  compdef {function} {_sq(command_name)}",
        "fi",
        "",
    ]
    return "\n".join(out)


# -------------------------------------------------------------------- bash


def _bashCase(patterns: list[str]) -> str:
    return "|".join(_sq(p) for p in patterns)


def _bashFunctions(command: _Command, base: str, out: list[str]) -> None:
    function = "__" + _ident([base, *command.path]) + "_complete"
    reply = "__" + _ident([base]) + "_reply"
    valueLong = [s for o in command.options if o.takesArg for s in o.spellings if s.startswith("--")]
    valueShort = "".join(o.short for o in command.options if o.takesArg and o.short)
    allSpellings = [s for o in command.options for s in o.spellings]

    # Values of options: one case per option that takes one.
    out.append(f"{function}_value() {{")
    out.append('    local opt="$1" cur="$2" prefix="$3"')
    out.append('    [[ $COMP_WORDBREAKS == *=* ]] && prefix=""')
    out.append('    case "$opt" in')
    for option in command.options:
        if option.takesArg:
            out.append(f"        {_bashCase(option.spellings)})")
            generator, compopt = _bashAction(option.action)
            out.append(f'            {reply} "$prefix" < <({generator})')
            for flag in compopt:
                out.append(f"            compopt -o {flag} 2>/dev/null")
            out.append("            ;;")
    out.append("    esac")
    out.append("    return 0")
    out.append("}")
    out.append("")

    out.append(f"{function}() {{")
    out.append('    local i=$1 w expect="" npos=0 dashdash=0 k c')
    out.append("    while (( i < cword )); do")
    out.append('        w="${words[i]}"')
    out.append("        if [[ -n $expect ]]; then")
    out.append('            expect=""')
    out.append("        elif (( dashdash )) || [[ $w != -?* ]]; then")
    if command.subCommands:
        out.append('            case "$w" in')
        for name, short, _, child in command.subCommands:
            patterns = [n for n in (name, short) if n]
            childFunction = "__" + _ident([base, *child.path]) + "_complete"
            out.append(f"                {_bashCase(patterns)}) {childFunction} $((i + 1)); return ;;")
        out.append("            esac")
    out.append("            npos=$((npos + 1))")
    out.append("        elif [[ $w == -- ]]; then")
    out.append("            dashdash=1")
    out.append("        else")
    out.append('            case "$w" in')
    out.append("                --*=*) ;;")
    if valueLong:
        out.append(f'                {_bashCase(valueLong)}) expect="$w" ;;')
    out.append("                --*) ;;")
    if valueShort:
        out.append("                *)")
        out.append("                    for ((k = 1; k < ${#w}; k++)); do")
        out.append('                        c="${w:k:1}"')
        out.append(f"                        if [[ {_sq(valueShort)} == *\"$c\"* ]]; then")
        out.append('                            (( k == ${#w} - 1 )) && expect="-$c"')
        out.append("                            break")
        out.append("                        fi")
        out.append("                    done ;;")
    out.append("            esac")
    out.append("        fi")
    out.append("        i=$((i + 1))")
    out.append("    done")
    out.append("    if [[ -n $expect ]]; then")
    out.append(f'        {function}_value "$expect" "$cur" ""')
    out.append("        return 0")
    out.append("    fi")
    out.append("    if (( ! dashdash )); then")
    out.append('        case "$cur" in')
    out.append(f'            --*=*) {function}_value "${{cur%%=*}}" "${{cur#*=}}" "${{cur%%=*}}="; return 0 ;;')
    words = " ".join(allSpellings)
    out.append(f'            -*) {reply} "" < <(compgen -W {_sq(words)} -- "$cur"); return 0 ;;')
    out.append("        esac")
    out.append("    fi")
    if command.subCommands:
        names = " ".join(name for name, _, _, _ in command.subCommands)
        out.append(f'    {reply} "" < <(compgen -W {_sq(names)} -- "$cur")')
    elif command.extraActions:
        out.append("    case $npos in")
        for index, action in enumerate(command.extraActions):
            pattern = "*" if action._repeat else str(index)
            generator, compopt = _bashAction(action)
            out.append(f'        {pattern}) {reply} "" < <({generator})')
            for flag in compopt:
                out.append(f"            compopt -o {flag} 2>/dev/null")
            out.append("            ;;")
        out.append("    esac")
    out.append("    return 0")
    out.append("}")
    out.append("")
    for _, _, _, child in command.subCommands:
        _bashFunctions(child, base, out)


def bash_completion(options_class: Any, command_name: str) -> str:
    """A bash completion script for ``command_name`` whose options are ``options_class``.

    ``source`` it from ``.bashrc`` or install it in
    ``/usr/share/bash-completion/completions/<command>``.
    """
    command = _describe(_instantiate(options_class), [])
    base = _ident([command_name])
    out = [
        f"# bash completion for {command_name}, generated by tapster (tapster.core._completion); do not edit.",
        "",
        f"__{base}_reply() {{",
        "    # Read candidates, one per line, into COMPREPLY with a prefix (file names may hold spaces).",
        '    local prefix="$1" line',
        "    COMPREPLY=()",
        "    while IFS= read -r line; do",
        '        [[ -n $line ]] && COMPREPLY+=("$prefix$line")',
        "    done",
        "    return 0",
        "}",
        "",
    ]
    _bashFunctions(command, command_name, out)
    out += [
        f"_{base}() {{",
        "    # Re-join '--opt' '=' 'value', which bash splits at '=' (COMP_WORDBREAKS).",
        "    local -a words=()",
        "    local i w n glue=0",
        "    for ((i = 0; i <= COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        "        n=${#words[@]}",
        "        if (( glue )); then",
        '            words[n - 1]+="$w"',
        "            glue=0",
        "        elif [[ $w == = ]] && (( n > 0 )) && [[ ${words[n - 1]} == --* && ${words[n - 1]} != *=* ]]; then",
        '            words[n - 1]+="="',
        "            glue=1",
        "        else",
        '            words+=("$w")',
        "        fi",
        "    done",
        "    local cword=$(( ${#words[@]} - 1 ))",
        '    local cur="${words[cword]}"',
        "    COMPREPLY=()",
        f"    __{base}_complete 1",
        "}",
        "",
        f"complete -F _{base} {_sq(command_name)}",
        "",
    ]
    return "\n".join(out)
