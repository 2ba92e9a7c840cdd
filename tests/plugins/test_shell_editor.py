"""Server-side line editing: what is echoed and which events come out, per key."""

from __future__ import annotations

from tapster.plugins._console.editor import EndOfFile, Interrupt, Line, LineEditor


def typed(editor: LineEditor, text: str) -> tuple[str, list]:
    echo, events = "", []
    for ch in text:
        out, evs = editor.feed(ch)
        echo += out
        events += evs
    return echo, events


def test_characters_are_echoed_and_enter_completes_the_line() -> None:
    editor = LineEditor(echo=True)
    echo, events = editor.feed("x = 1\n")
    assert echo == "x = 1\n"
    assert events == [Line("x = 1")]
    assert editor.line == ""


def test_without_echo_nothing_is_echoed_but_lines_still_complete() -> None:
    editor = LineEditor(echo=False)
    assert editor.feed("abc\ndef\n") == ("", [Line("abc"), Line("def")])


def test_backspace_and_delete_erase_the_last_character() -> None:
    editor = LineEditor(echo=True)
    echo, events = editor.feed("abx\x7fc\b\bd\n")
    assert events == [Line("ad")]
    assert echo == "abx\b \bc\b \b\b \bd\n"


def test_backspace_on_an_empty_line_does_nothing() -> None:
    editor = LineEditor(echo=True)
    assert editor.feed("\x7f") == ("", [])


def test_ctrl_u_erases_the_line_and_ctrl_w_the_last_word() -> None:
    editor = LineEditor(echo=False)
    assert editor.feed("one two  \x17three\n")[1] == [Line("one three")]
    assert editor.feed("gone\x15kept\n")[1] == [Line("kept")]


def test_secret_hides_characters_but_ends_the_line_visibly() -> None:
    editor = LineEditor(echo=True)
    editor.secret = True
    echo, events = editor.feed("hunter2\n")
    assert echo == "\n"
    assert events == [Line("hunter2")]


def test_secret_lines_stay_out_of_the_history() -> None:
    editor = LineEditor(echo=True)
    editor.secret = True
    editor.feed("hunter2\n")
    editor.secret = False
    editor.feed("print(1)\n")
    assert editor.history == ["print(1)"]
    assert editor.feed("\x1b[A\x1b[A")[0].count("hunter2") == 0


def test_ctrl_c_interrupts_and_forgets_the_line() -> None:
    editor = LineEditor(echo=True)
    echo, events = editor.feed("abc\x03")
    assert events == [Interrupt()]
    assert echo.endswith("^C\n")
    assert editor.line == ""


def test_ctrl_d_ends_only_on_an_empty_line() -> None:
    editor = LineEditor(echo=True)
    assert editor.feed("a\x04")[1] == []
    assert editor.feed("\x7f\x04")[1] == [EndOfFile()]


def test_up_and_down_walk_the_history() -> None:
    editor = LineEditor(echo=True)
    editor.feed("first\nsecond\n")
    _echo, _events = typed(editor, "\x1b[A\x1b[A")
    assert editor.line == "first"
    typed(editor, "\x1b[B")
    assert editor.line == "second"
    typed(editor, "\x1b[B")
    assert editor.line == ""
    typed(editor, "\x1bOA")  # application-mode cursor keys too
    assert editor.line == "second"
    assert editor.feed("\n")[1] == [Line("second")]


def test_other_escape_sequences_are_swallowed() -> None:
    editor = LineEditor(echo=True)
    echo, events = typed(editor, "a\x1b[D\x1b[3~\x1b[1;5Cb\n")
    assert events == [Line("ab")]
    assert "\x1b" not in echo


def test_tab_becomes_spaces_when_echoing_and_stays_a_tab_otherwise() -> None:
    assert LineEditor(echo=True).feed("\tx\n")[1] == [Line("    x")]
    assert LineEditor(echo=False).feed("\tx\n")[1] == [Line("\tx")]


def test_other_control_characters_are_dropped() -> None:
    assert LineEditor().feed("a\x07\x01b\n")[1] == [Line("ab")]


def test_history_is_bounded_and_skips_repeats_and_blank_lines() -> None:
    editor = LineEditor(history_size=3)
    editor.feed("a\na\n\n  \nb\nc\nd\n")
    assert editor.history == ["b", "c", "d"]


def test_overlong_lines_are_cut_at_max_length() -> None:
    editor = LineEditor(max_length=5)
    assert editor.feed("abcdefgh\n")[1] == [Line("abcde")]


def test_erase_line_and_erase_char_for_telnet_commands() -> None:
    editor = LineEditor(echo=True)
    editor.feed("abc")
    assert editor.erase_char() == "\b \b"
    assert editor.erase_line() == "\b \b\b \b"
    assert editor.line == ""
