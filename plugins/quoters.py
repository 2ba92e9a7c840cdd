"""Where quotes come from: the business logic of the QOTD plugin, with no networking in it.

A quoter is any object with ``getQuote() -> str``. Quoters are saved inside
applications, so they hold file names and settings, never open files.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

__all__ = ["StaticQuoter", "FortuneQuoter", "parse_fortunes", "DEFAULT_QUOTE"]

DEFAULT_QUOTE = "An apple a day keeps the doctor away."


class StaticQuoter:
    """Always the same quote; change it at run time by assigning ``quote``."""

    def __init__(self, quote: str = DEFAULT_QUOTE) -> None:
        self.quote = quote

    def getQuote(self) -> str:
        return self.quote

    def __repr__(self) -> str:
        return f"StaticQuoter({self.quote!r})"


def parse_fortunes(text: str) -> list[str]:
    """Split a fortune file: quotes separated by lines holding only ``%``; blank entries dropped."""
    quotes: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == "%":
            quotes.append("\n".join(current).strip("\n"))
            current = []
        else:
            current.append(line.rstrip())
    quotes.append("\n".join(current).strip("\n"))
    return [q for q in quotes if q.strip()]


class FortuneQuoter:
    """A random quote from one or more fortune files (``%``-separated).

    The files are read by :meth:`load` (the factory calls it when it starts),
    so editing them takes effect at the next start, and a missing file is
    reported at start-up rather than at the first connection.
    """

    def __init__(self, filenames: Iterable[str]) -> None:
        self.filenames = list(filenames)
        self._quotes: list[str] | None = None

    def load(self) -> None:
        """Read every file now; OSError or ValueError (no quotes) names the file."""
        quotes: list[str] = []
        for name in self.filenames:
            with open(name, encoding="utf-8", errors="replace") as f:
                found = parse_fortunes(f.read())
            if not found:
                raise ValueError(f"fortune file {name} holds no quotes (quotes are separated by lines with a single %)")
            quotes.extend(found)
        self._quotes = quotes

    def getQuote(self) -> str:
        if self._quotes is None:
            self.load()
        return random.choice(self._quotes)  # type: ignore[arg-type]  # load() has set it

    def __getstate__(self) -> dict[str, object]:
        return {"filenames": self.filenames}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.filenames = list(state["filenames"])  # type: ignore[call-overload]  # the list __getstate__ saved
        self._quotes = None

    def __repr__(self) -> str:
        return f"FortuneQuoter({self.filenames!r})"
