"""Server-side line editing for a client in character mode: text in, echo and events out.

A telnet client that agreed to ``WILL ECHO`` and ``WILL SGA`` sends each key
as it is pressed and shows only what the server echoes, so the server edits
the line: printable characters are echoed, Backspace/DEL erases, ^U erases
the line, ^W the last word, Up/Down walk the history, ^C interrupts, ^D on an
empty line ends the session, Enter completes the line. Other control keys
and escape sequences (arrows left and right, function keys) are swallowed
rather than inserted.

With ``echo`` off (a client that echoes itself, such as ``nc``, or any
client while a password is typed) nothing is echoed but the line is edited
the same way. ``secret`` hides the characters but still moves to a new line
on Enter when the server is the one echoing.

:meth:`LineEditor.feed` returns ``(echo, events)``; the caller sends the
echo (``\\n`` for a new line) and acts on the events in order.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LineEditor", "Line", "Interrupt", "EndOfFile", "EditorEvent"]

_ERASE = "\b \b"
_TAB = "    "


@dataclass(frozen=True)
class Line:
    """A completed line, without its line end."""

    text: str


@dataclass(frozen=True)
class Interrupt:
    """^C (or telnet's IP): abandon what is being typed."""


@dataclass(frozen=True)
class EndOfFile:
    """^D on an empty line: the user is done."""


EditorEvent = Line | Interrupt | EndOfFile

# Escape-sequence states.
_TEXT, _ESC, _CSI = range(3)


class LineEditor:
    """One input line being edited, plus a bounded history of the lines entered."""

    def __init__(self, echo: bool = False, history_size: int = 200, max_length: int = 16384) -> None:
        self.echo = echo
        self.secret = False
        self.history_size = history_size
        self.max_length = max_length
        self.history: list[str] = []
        self._line: list[str] = []
        self._browse = 0  # index into history while walking it with Up/Down
        self._escape = _TEXT
        self._sequence = ""

    @property
    def line(self) -> str:
        """What has been typed on the current line so far."""
        return "".join(self._line)

    def reset(self) -> None:
        """Forget the current line (the history stays)."""
        self._line.clear()
        self._escape = _TEXT
        self._browse = len(self.history)

    def feed(self, text: str) -> tuple[str, list[EditorEvent]]:
        out: list[str] = []
        events: list[EditorEvent] = []
        for ch in text:
            if self._escape != _TEXT:
                self._escape_char(ch, out)
                continue
            if ch == "\n":
                line = self.line
                self._line.clear()
                if self.echo:
                    out.append("\n")
                if line.strip() and not self.secret:
                    if not self.history or self.history[-1] != line:
                        self.history.append(line)
                        del self.history[: -self.history_size]
                self._browse = len(self.history)
                events.append(Line(line))
            elif ch in ("\x7f", "\b"):
                if self._line:
                    self._line.pop()
                    self._show(_ERASE, out)
            elif ch == "\x15":  # ^U
                self._erase(len(self._line), out)
            elif ch == "\x17":  # ^W
                self._erase(self._word_length(), out)
            elif ch == "\x03":  # ^C
                if self.echo:
                    out.append("^C\n")
                self.reset()
                events.append(Interrupt())
            elif ch == "\x04":  # ^D
                if not self._line:
                    events.append(EndOfFile())
            elif ch == "\x1b":
                self._escape = _ESC
            elif ch == "\t":
                self._insert(_TAB if self.echo else ch, out)
            elif ch < " ":
                continue  # other control characters: not part of a Python line
            else:
                self._insert(ch, out)
        return "".join(out), events

    def erase_line(self) -> str:
        """Telnet's ``IAC EL``: the echo that erases the current line."""
        out: list[str] = []
        self._erase(len(self._line), out)
        return "".join(out)

    def erase_char(self) -> str:
        """Telnet's ``IAC EC``."""
        return self.feed("\x7f")[0]

    # -- helpers ---------------------------------------------------------------

    def _show(self, text: str, out: list[str]) -> None:
        if self.echo and not self.secret:
            out.append(text)

    def _insert(self, text: str, out: list[str]) -> None:
        if len(self._line) + len(text) > self.max_length:
            return
        self._line.extend(text)
        self._show(text, out)

    def _erase(self, count: int, out: list[str]) -> None:
        if count:
            del self._line[-count:]
            self._show(_ERASE * count, out)

    def _word_length(self) -> int:
        n = len(self._line)
        i = n
        while i and self._line[i - 1] == " ":
            i -= 1
        while i and self._line[i - 1] != " ":
            i -= 1
        return n - i

    def _escape_char(self, ch: str, out: list[str]) -> None:
        if self._escape == _ESC:
            if ch in "[O":
                self._escape = _CSI
                self._sequence = ""
            else:
                self._escape = _TEXT  # ESC + key (Alt-key): ignored
            return
        if "0" <= ch <= "9" or ch == ";":
            self._sequence += ch
            if len(self._sequence) > 16:
                self._escape = _TEXT
            return
        self._escape = _TEXT
        if ch == "A":
            self._recall(self._browse - 1, out)
        elif ch == "B":
            self._recall(self._browse + 1, out)

    def _recall(self, index: int, out: list[str]) -> None:
        if self.secret or not 0 <= index <= len(self.history):
            return
        self._browse = index
        self._erase(len(self._line), out)
        self._insert(self.history[index] if index < len(self.history) else "", out)
