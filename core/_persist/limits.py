"""Bounded work for any input: the budget of what a safe file can build, and messages of bounded size.

A few kilobytes of XML or YAML can describe an enormous value without being
large themselves: shared references (``<ref>``, YAML aliases) let a tuple
hold the same tuple twice, thirty levels deep, and a constructor's argument
can be ``2**40``. Building such a value may be cheap (references are
pointers), but everything that later walks it as a tree is not: ``repr`` for
a log line or an error message, ``hash`` for a set member or a dict key,
``str`` of an option value.

The mechanism, shared by every safe loader:

* :class:`Weigher` gives each value its *weight*, the size of the value as a
  tree (one per container or object, plus one per 100 characters of text),
  with shared parts counted each time they are reached, computed in time
  linear in the number of distinct objects (each object's weight is
  remembered; an object reached again while it is being weighed, a cycle,
  counts one). A loader weighs what it is about to hash or pass to a
  constructor, and the whole application at the end, against
  :data:`MAX_WEIGHT`.
* :func:`brief` is the only way a loader puts a value from the file into a
  message: a ``repr`` cut to a few hundred characters, with terminal control
  characters escaped.
"""

from __future__ import annotations

import reprlib
from typing import Any

from tapster.core.errors import ValueTooLarge as TooHeavy

__all__ = ["MAX_WEIGHT", "MAX_MESSAGE", "Weigher", "TooHeavy", "brief", "cap"]  # TooHeavy: errors.ValueTooLarge

#: The most a safe file may build, in weight units (about one per object): far above any real
#: application (thousands), far below what makes repr or hash take seconds.
MAX_WEIGHT = 1_000_000
#: Messages about a file's content are cut to this many characters.
MAX_MESSAGE = 400
_TEXT_UNIT = 100

_brief = reprlib.Repr()
_brief.maxstring = 80
_brief.maxother = 80
_brief.maxlist = _brief.maxtuple = _brief.maxset = _brief.maxfrozenset = _brief.maxdict = 6
_brief.maxlevel = 3
_brief.maxlong = 60


def brief(value: Any) -> str:
    """A short, printable ``repr`` of ``value``: never more than a few hundred characters, however big."""
    try:
        text = _brief.repr(value)
    except Exception:  # noqa: BLE001 - a hostile object's __repr__ must not break an error message
        text = f"<{type(value).__name__}>"
    return cap(text, 200)


def cap(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with control characters escaped and cut to ``limit`` characters (the commands' one-line rule)."""
    from tapster.core.terminal import one_line

    return one_line(text, limit)


class Weigher:
    """Weighs values as trees, remembering what it has weighed (see the module's docstring)."""

    def __init__(self, limit: int = MAX_WEIGHT) -> None:
        self.limit = limit
        self._known: dict[int, int] = {}
        self._keep: list[Any] = []  # keeps weighed objects alive so that their ids stay theirs

    def weigh(self, value: Any) -> int:
        """The weight of ``value``; :class:`TooHeavy` as soon as it passes the limit."""
        known = self._known
        if id(value) in known:
            return known[id(value)]
        # Iterative post-order walk: no recursion limit for a deeply nested value.
        stack: list[tuple[Any, list[Any] | None]] = [(value, None)]
        active: set[int] = set()
        while stack:
            obj, children = stack[-1]
            key = id(obj)
            if children is None:
                if key in known:
                    stack.pop()
                    continue
                kids = _children(obj)
                if not kids:
                    known[key] = _own_weight(obj)
                    self._keep.append(obj)
                    stack.pop()
                    continue
                active.add(key)
                stack[-1] = (obj, kids)
                for kid in kids:
                    if id(kid) not in known and id(kid) not in active:
                        stack.append((kid, None))
                continue
            total = _own_weight(obj)
            for kid in children:
                total += known.get(id(kid), 1)  # 1: a cycle back to an object still being weighed
                if total > self.limit:
                    raise TooHeavy(
                        f"it describes a value of more than {self.limit} parts once shared references are "
                        "expanded; a safe file may build at most that much"
                    )
            known[key] = total
            self._keep.append(obj)
            active.discard(key)
            stack.pop()
        return known[id(value)]


def _own_weight(obj: Any) -> int:
    if isinstance(obj, (str, bytes, bytearray)):
        return 1 + len(obj) // _TEXT_UNIT
    return 1


def _children(obj: Any) -> list[Any]:
    """What ``repr`` and ``hash`` of ``obj`` would walk into."""
    if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool)) or obj is None:
        return []
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return [*state.values()]
    return []
