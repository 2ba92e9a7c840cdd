"""The console's interpreter: prompts, output, tracebacks, the end of a session, the namespace."""

from __future__ import annotations

import sys

import pytest

from tapster.core.service import Application
from tapster.plugins._console.shell import PS1, PS2, Shell, namespace, one_line


class Client:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.ran: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.out)


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def shell(client: Client) -> Shell:
    return Shell({"__name__": "__console__"}, client.out.append, client.ran.append)


def test_expression_value_is_shown_and_kept_as_underscore(shell: Shell, client: Client) -> None:
    assert shell.push("6 * 7") is False
    assert client.text == "42\n"
    assert shell.locals["_"] == 42
    shell.push("None")
    assert client.text == "42\n"  # None is not displayed


def test_print_goes_to_the_client_not_to_stdout(shell: Shell, client: Client, capsys: pytest.CaptureFixture) -> None:
    real = sys.stdout
    shell.push("print('hello'); import sys; print('err', file=sys.stderr)")
    assert client.text == "hello\nerr\n"
    assert capsys.readouterr().out == ""
    assert sys.stdout is real  # restored after the statement


def test_displayhook_is_restored(shell: Shell) -> None:
    hook = sys.displayhook
    shell.push("1")
    assert sys.displayhook is hook


def test_multi_line_statement_asks_for_more_with_the_continuation_prompt(shell: Shell, client: Client) -> None:
    assert shell.prompt == PS1
    assert shell.push("def f(x):") is True
    assert shell.prompt == PS2
    assert shell.push("    return x + 1") is True
    assert shell.push("") is False
    assert shell.prompt == PS1
    shell.push("f(1)")
    assert client.text == "2\n"


def test_open_bracket_continues(shell: Shell, client: Client) -> None:
    assert shell.push("x = [1,") is True
    assert shell.push(" 2]") is False
    shell.push("x")
    assert client.text == "[1, 2]\n"


def test_exception_shows_a_traceback_without_the_shells_own_frame(shell: Shell, client: Client) -> None:
    shell.push("1/0")
    assert "ZeroDivisionError: division by zero" in client.text
    assert 'File "<console>", line 1' in client.text
    assert "shell.py" not in client.text
    assert not shell.finished


def test_syntax_error_is_shown(shell: Shell, client: Client) -> None:
    assert shell.push("1 +* 2") is False
    assert "SyntaxError" in client.text and "<console>" in client.text
    assert shell.prompt == PS1


def test_keyboard_interrupt_raised_by_code_is_shown_not_propagated(shell: Shell, client: Client) -> None:
    shell.push("raise KeyboardInterrupt")
    assert "KeyboardInterrupt" in client.text
    assert not shell.finished


def test_excepthook_replacement_does_not_steal_the_traceback(shell: Shell, client: Client,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", lambda *a: None)
    shell.push("undefined_name")
    assert "NameError" in client.text


@pytest.mark.parametrize(
    "line", ["exit()", "quit()", "raise SystemExit(3)", "import sys; sys.exit()", "exit", " quit "]
)
def test_leaving_ends_the_session_only(shell: Shell, line: str) -> None:
    shell.locals.update(namespace(None))
    shell.push(line)
    assert shell.finished
    assert shell.push("1") is False  # nothing runs after the end


def test_bare_exit_inside_a_statement_is_just_a_name(shell: Shell) -> None:
    shell.push("if True:")
    shell.push("    exit_code = 1")
    assert not shell.finished


def test_interrupt_drops_the_unfinished_statement(shell: Shell, client: Client) -> None:
    shell.push("def g():")
    shell.interrupt()
    assert shell.prompt == PS1
    assert "KeyboardInterrupt" in client.text
    shell.push("g")
    assert "NameError" in client.text


def test_every_statement_run_is_reported_once(shell: Shell, client: Client) -> None:
    shell.push("x = 1")
    shell.push("for i in range(2):")
    shell.push("    x += i")
    shell.push("")
    shell.push("")  # an empty line alone runs nothing
    shell.push("1 +* 2")  # does not compile: not run
    assert client.ran == ["x = 1", "for i in range(2):\n    x += i\n"]


def test_namespace_holds_application_and_core_modules() -> None:
    app = Application("demo")
    names = namespace(app)
    assert names["application"] is app
    import tapster.core.internet
    import tapster.core.service

    assert names["internet"] is tapster.core.internet and names["service"] is tapster.core.service
    for name in ("protocol", "basic", "endpoints", "log", "persist", "reactor", "task"):
        assert names[name].__name__ == f"tapster.core.{name}"
    assert "exit()" in repr(names["exit"])


def test_sessions_sharing_a_namespace_see_each_others_names(client: Client) -> None:
    shared: dict = {}
    Shell(shared, client.out.append).push("answer = 42")
    other = Shell(shared, client.out.append)
    other.push("answer")
    assert client.text == "42\n"


def test_one_line_keeps_a_statement_on_one_log_line() -> None:
    assert one_line("def f():\n    return '\\n'\n") == "def f():\\n    return '\\\\n'"
