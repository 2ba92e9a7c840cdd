"""tapster.core._completion: zsh and bash completion scripts generated from Options classes.

The scripts are checked three ways: their text, their syntax (``zsh -n``,
``bash -n``) and their behaviour, by sourcing them in the real shell and asking
for completions (bash through COMP_WORDS, zsh through a pseudo-terminal with
zsh/zpty). Shell-based tests skip cleanly when the shell is not installed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tapster.core import usage
from tapster.core._completion import bash_completion, shell_code, zsh_completion
from tapster.core.usage import Completions, Options

ZSH = shutil.which("zsh")
BASH = shutil.which("bash")
needs_zsh = pytest.mark.skipif(ZSH is None, reason="zsh is not installed")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


class Serve(Options):
    optFlags = [["quiet", "q", "Be quiet."], ["loud", None, "Be loud."]]
    optParameters = [
        ["port", "p", 8007, "Port to listen on.", usage.portCoerce],
        ["file", "f", None, "A file [with] 'quotes': and colons."],
    ]
    compData = Completions(
        optActions={"file": usage.CompleteFiles("*.tap")},
        mutuallyExclusive=[("quiet", "loud")],
        extraActions=[usage.CompleteList(["alpha", "beta"]), usage.CompleteDirs(repeat=True)],
    )

    def parseArgs(self, *args: str) -> None:
        pass


def broken_loader() -> Options:
    raise ImportError("this plugin cannot be imported")


class Tool(Options):
    optFlags = [["verbose", "v", "Be verbose."]]
    optParameters = [
        ["user", "u", None, "Run as this user."],
        ["modes", "m", None, "Modes."],
        ["iface", None, None, "Interface."],
    ]
    compData = Completions(
        descriptions={"user": "user to run as"},
        multiUse=["verbose"],
        optActions={
            "user": usage.CompleteUsernames(),
            "modes": usage.CompleteMultiList(["read", "write", "exec"]),
            "iface": usage.CompleteNetInterfaces(),
        },
    )
    subCommands = [["serve", "s", Serve, "Serve things: fast."], ["broken", None, broken_loader, "Cannot load."]]


# User names beginning with "ro": root everywhere, possibly others on some systems.
ROOT = frozenset({"root"})


def assert_candidates(got: set[str], expected: frozenset[str] | set[str], line: object) -> None:
    if expected is ROOT:
        assert "root" in got and all(c.startswith("ro") for c in got), (line, got)
    else:
        assert got == expected, (line, got)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "app.tap").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "subdir").mkdir()
    return tmp_path


# --------------------------------------------------------------------- zsh


def test_zsh_script_declares_options_descriptions_and_actions():
    script = zsh_completion(Tool, "tool")
    assert script.startswith("#compdef tool\n")
    for expected in [
        "'*-v[Be verbose.]'",
        "'*--verbose[Be verbose.]'",  # multiUse: repeatable, excludes nothing
        "'(-u --user)-u+[user to run as]:user:_users'",  # description override
        "'(-u --user)--user=[user to run as]:user:_users'",
        "'(--iface)--iface=[Interface.]:iface:_net_interfaces'",  # the option name, as Twisted
        "_values -s , '\\''modes'\\'' read write exec",
        "'1:command:->command'",
        "'serve:Serve things: fast.'",  # only the name part escapes colons
        "('serve'|'s') _tool_serve",
        "_tool_serve() {",
        "'(-f --file)--file=[A file \\[with\\] '\\''quotes'\\'': and colons.]:file (*.tap):_files -g \"*.tap\"'",
        "'(-q --quiet --loud)-q[Be quiet.]'",  # mutually exclusive with --loud
        "'(--loud -q --quiet)--loud[Be loud.]'",
        "'(-p --port)--port=[Port to listen on.]:port: '",
        "':argument:(alpha beta)'",
        "'*:argument:_directories'",
        "compdef _tool 'tool'",
    ]:
        assert expected in script, expected


def test_broken_sub_command_is_still_offered_by_name():
    script = zsh_completion(Tool, "tool")
    assert "'broken:Cannot load.'" in script
    assert "_tool_broken() {\n  _message 'no completions available'" in script
    assert "'broken'" in bash_completion(Tool, "tool")


def test_generators_accept_a_class_a_factory_or_an_instance():
    assert zsh_completion(Tool, "tool") == zsh_completion(lambda: Tool(), "tool") == zsh_completion(Tool(), "tool")


@needs_zsh
@pytest.mark.parametrize("name", ["tool", "my-tool.py"])
def test_zsh_script_passes_zsh_n(tmp_path, name):
    script = tmp_path / "_tool"
    script.write_text(zsh_completion(Tool, name))
    result = subprocess.run([ZSH, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@needs_zsh
def test_zsh_specs_reach_arguments_unmangled(tmp_path):
    """Source the script with _arguments stubbed: the specs must arrive exactly as intended."""
    script = tmp_path / "_tool"
    script.write_text(zsh_completion(Tool, "tool"))
    driver = f"""
        compdef() {{ print -r -- "COMPDEF $*" }}
        _arguments() {{ print -rl -- "$@" }}
        source {shlex.quote(str(script))}
        _tool_serve
    """
    result = subprocess.run([ZSH, "-f", "-c", driver], capture_output=True, text=True, timeout=30)
    lines = result.stdout.splitlines()
    assert lines[0] == "COMPDEF _tool tool"
    assert "(-f --file)-f+[A file \\[with\\] 'quotes': and colons.]:file (*.tap):_files -g \"*.tap\"" in lines
    assert "*:argument:_directories" in lines
    assert "(-p --port)-p+[Port to listen on.]:port: " in lines


ZPTY_DRIVER = r"""
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT='' RPROMPT=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() { local -a __hits; builtin compadd -O __hits "$@"; print -rl -- "CAND:"${^__hits[@]}; builtin compadd "$@" }'
zpty -w z '__cap() { zle complete-word; print -r -- CAP""DONE }; zle -N __cap; bindkey "^I" __cap'
zpty -w z 'print CAP""READY'
zpty -r -m z out '*CAPREADY*' || exit 4
shift
local line
for line in "$@"; do
  zpty -w -n z "$line"$'\t'
  zpty -r -m z out '*CAPDONE*' || exit 5
  print -r -- "LINE:$line"
  print -r -- "${out//$'\r'/}" | grep -ao 'CAND:[^[:cntrl:]]*' | sort -u
  zpty -w -n z $'\x15'
done
zpty -d z
"""  # noqa: E501 - a zsh script, kept line for line


def run_zsh_completions(workdir: Path, lines: list[str]) -> dict[str, set[str]]:
    fpath = workdir / "fpath"
    fpath.mkdir()
    (fpath / "_tool").write_text(zsh_completion(Tool, "tool"))
    driver = workdir / "driver.zsh"
    driver.write_text(ZPTY_DRIVER)
    result = subprocess.run(
        [ZSH, "-f", str(driver), str(fpath), *lines], capture_output=True, text=True, timeout=60, cwd=workdir
    )
    if result.returncode in (3, 4):
        pytest.skip(f"zsh/zpty not usable here (status {result.returncode})")
    assert result.returncode == 0, result.stderr
    found: dict[str, set[str]] = {}
    current = ""
    for out in result.stdout.splitlines():
        if out.startswith("LINE:"):
            current = out[5:]
            found[current] = set()
        elif out.startswith("CAND:"):
            found[current].add(out[5:])
    return found


@needs_zsh
def test_zsh_completes_options_commands_and_values(workdir):
    cases = {
        "tool --": {"--verbose", "--user", "--modes", "--iface", "--help", "--version"},
        "tool ": {"serve", "broken"},
        "tool --user ro": ROOT,
        "tool -u ro": ROOT,
        "tool --modes read,": {"write", "exec"},
        "tool -v --": {"--verbose", "--user", "--modes", "--iface", "--help", "--version"},
        "tool serve --": {"--quiet", "--loud", "--port", "--file", "--help", "--version"},
        "tool s -q --": {"--port", "--file", "--help", "--version"},
        "tool serve -f": {"app.tap", "subdir", "fpath"},
        "tool serve ": {"alpha", "beta"},
        "tool serve x ": {"subdir", "fpath"},
    }
    found = run_zsh_completions(workdir, list(cases))
    for line, expected in cases.items():
        assert_candidates(found.get(line, set()), expected, line)


# -------------------------------------------------------------------- bash


def test_bash_script_registers_the_function():
    script = bash_completion(Tool, "tool")
    assert "complete -F _tool 'tool'" in script
    assert "__tool_serve_complete()" in script
    assert "compgen -f -X '!*.tap'" in script
    assert "'--user'|'--modes'|'--iface') expect=\"$w\"" in script


@needs_bash
@pytest.mark.parametrize("name", ["tool", "my-tool.py"])
def test_bash_script_passes_bash_n(tmp_path, name):
    script = tmp_path / "tool.bash"
    script.write_text(bash_completion(Tool, name))
    result = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def run_bash_completions(workdir: Path, cases: list[list[str]], wordbreaks: str | None = None) -> list[list[str]]:
    script = workdir / "tool.bash"
    script.write_text(bash_completion(Tool, "tool"))
    driver = [f"source {shlex.quote(str(script))}"]
    if wordbreaks is not None:
        driver.append(f"COMP_WORDBREAKS={shlex.quote(wordbreaks)}")
    driver.append(
        't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _tool; '
        "printf 'RESULT'; printf ' %s' \"${COMPREPLY[@]}\"; echo; }"
    )
    driver += ["t " + " ".join(shlex.quote(w) for w in words) for words in cases]
    result = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", "\n".join(driver)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    return [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("RESULT")]


@needs_bash
def test_bash_completes_options_commands_and_values(workdir):
    cases = [
        (["tool", "--"], {"--verbose", "--user", "--modes", "--iface", "--help", "--version"}),
        (["tool", "--v"], {"--verbose", "--version"}),
        (["tool", ""], {"serve", "broken"}),
        (["tool", "se"], {"serve"}),
        (["tool", "--user", "ro"], ROOT),
        (["tool", "-vu", "ro"], ROOT),
        (["tool", "--user", "=", "ro"], ROOT),  # bash splits --user=ro at '='
        (["tool", "--modes", "=", "read,"], {"read,read", "read,write", "read,exec"}),
        (["tool", "serve", "--f"], {"--file"}),
        (["tool", "serve", "--file", ""], {"app.tap", "subdir"}),
        (["tool", "s", "-f", ""], {"app.tap", "subdir"}),
        (["tool", "-v", "serve", "-q", "--file", "=", "a"], {"app.tap"}),
        (["tool", "serve", ""], {"alpha", "beta"}),
        (["tool", "serve", "x", ""], {"subdir"}),
        (["tool", "serve", "x", "y", ""], {"subdir"}),
        (["tool", "serve", "--", "--p"], set()),  # after --, no option names
        (["tool", "serve", "--port", ""], set()),  # a port has no completions
        (["tool", "broken", "--"], set()),
    ]
    results = run_bash_completions(workdir, [words for words, _ in cases])
    assert len(results) == len(cases)
    for (words, expected), got in zip(cases, results, strict=True):
        assert_candidates(set(got), expected, words)


@needs_bash
def test_bash_value_keeps_the_option_prefix_when_equals_does_not_break_words(workdir):
    results = run_bash_completions(workdir, [["tool", "--modes=read,w"]], wordbreaks=" \t\n")
    assert results == [["--modes=read,write"]]


# ------------------------------------------------------------ completer code


def test_shell_code_for_each_completer():
    # The fragments Twisted's Completer._shellCode emits (its test_usage.py pins them).
    assert shell_code(usage.Completer(), "port", "zsh") == ":port:"
    assert usage.Completer()._shellCode("port", usage._ZSH) == ":port:"
    assert shell_code(usage.CompleteFiles("*.tap"), "file", "zsh") == ':file (*.tap):_files -g "*.tap"'
    assert shell_code(usage.CompleteFiles(), "file", "zsh") == ':file (*):_files -g "*"'
    assert shell_code(usage.CompleteDirs(descr="dir", repeat=True), "x", "zsh") == "*:dir:_directories"
    assert shell_code(usage.CompleteList(["a b", "c"]), "x", "zsh") == ":x:(a\\ b c)"
    assert shell_code(usage.CompleteUsernames(), "u", "zsh") == ":u:_users"
    assert shell_code(usage.CompleteGroups(), "g", "zsh") == ":group:_groups"
    assert shell_code(usage.CompleteHostnames(), "h", "zsh") == ":h:_hosts"
    assert shell_code(usage.CompleteUserAtHost(), "h", "zsh") == ":host | user@host:_user_at_host"
    assert shell_code(usage.CompleteNetInterfaces(), "i", "zsh") == ":i:_net_interfaces"
    assert shell_code(usage.CompleteList(None), "x", "zsh") == ":x:()"
    empty = shell_code(usage.CompleteMultiList([]), "x", "bash")
    assert shell_code(usage.CompleteMultiList(None), "x", "bash") == empty
    assert shell_code(usage.Completer(descr="a:b"), "x", "zsh") == ":a\\:b:"
    assert shell_code(usage.CompleteDirs(), "d", "bash") == 'compgen -d -- "$cur"'
    assert shell_code(usage.CompleteList(["a$b"]), "x", "bash") == "compgen -W 'a\\$b' -- \"$cur\""
    assert usage.CompleteFiles("*.tap")._shellCode("file", "zsh") == ':file (*.tap):_files -g "*.tap"'
    with pytest.raises(NotImplementedError, match="fish"):
        shell_code(usage.Completer(), "x", "fish")


def test_custom_completer_subclass_supplies_its_own_code():
    class Colours(usage.Completer):
        def _zshAction(self, optName: str) -> str:
            return "(red green)"

        def _bashGenerator(self) -> str:
            return 'compgen -W "red green" -- "$cur"'

    class Paint(Options):
        optParameters = [["colour", "c", None, "Colour."]]
        compData = Completions(optActions={"colour": Colours()})

    assert "--colour=[Colour.]:colour:(red green)" in zsh_completion(Paint, "paint")
    assert 'compgen -W "red green" -- "$cur"' in bash_completion(Paint, "paint")


def test_compData_is_merged_from_base_classes():
    class More(Serve):
        optParameters = [["log", "l", None, "Log file."]]
        compData = Completions(optActions={"log": usage.CompleteFiles("*.log")})

    script = zsh_completion(More, "more")
    assert '_files -g "*.log"' in script
    assert '_files -g "*.tap"' in script  # from Serve's compData
    assert "(-q --quiet --loud)-q" in script


def test_unknown_names_in_compData_are_ignored():
    class Typo(Options):
        optFlags = [["fast", "f", "Fast."]]
        compData = Completions(descriptions={"fsat": "typo"}, multiUse=["nope"], mutuallyExclusive=[("fast", "x")])

    assert "'(-f --fast)--fast[Fast.]'" in zsh_completion(Typo, "typo")
