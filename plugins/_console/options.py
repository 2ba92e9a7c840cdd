"""Command-line options shared by the ``telnet`` and ``manhole`` plugins (light: no asyncio, no asyncssh).

The password never outlives :meth:`ConsoleOptions.postOptions`: it is hashed
there (``config["password-hash"]``) and the clear text dropped. What the
service keeps as its recipe is scrubbed the same way (:func:`scrub_recipe`),
so no application format, YAML included, ever holds the password.
"""

from __future__ import annotations

import re
from typing import Any

from tapster.core import usage
from tapster.plugins._common import endpoint

__all__ = ["ConsoleOptions", "duration", "session_limit", "listen_description", "scrub_recipe", "SECRET_OPTIONS"]

#: Options whose values must never be saved (the recipe keeps ``password-hash`` instead).
SECRET_OPTIONS = ("password", "password-file")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$", re.IGNORECASE)


def duration(value: Any) -> float:
    """Seconds from ``900``, ``90s``, ``15m`` or ``1h``; 0 turns the timeout off."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(value)
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2).lower()]
    if seconds < 0:
        raise ValueError(value)
    return seconds


duration.coerceDoc = "Seconds, or a number with s, m or h (15m); 0 turns the timeout off."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def session_limit(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


session_limit.coerceDoc = "At least 1."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def listen_description(port: str, interface: str) -> str:
    """The endpoint to listen on: ``--port`` as given, bound to ``--interface`` unless it names one.

    ``4040`` with interface ``127.0.0.1`` is ``tcp:4040:interface=127.0.0.1``;
    a tcp description that sets its own ``interface=`` keeps it; unix and
    tcp6 descriptions are taken as they are.
    """
    from tapster.core import endpoints

    kind, args, kw = endpoints.parse(port)
    if kind != "tcp" or kw["interface"]:
        return port
    text = f"tcp:{args[0]}:interface={endpoints.quoteStringArgument(interface)}" if interface else f"tcp:{args[0]}"
    if kw["backlog"] != 50:
        text += f":backlog={kw['backlog']}"
    return text


def scrub_recipe(recipe: Any, passwordHash: str | None) -> Any:
    """``recipe`` with the password options replaced by the hash (a new dict; others are returned as is)."""
    if not isinstance(recipe, dict) or not isinstance(recipe.get("options"), dict):
        return recipe
    options = {k: v for k, v in recipe["options"].items() if k not in SECRET_OPTIONS}
    if passwordHash and any(k in recipe["options"] for k in (*SECRET_OPTIONS, "password-hash")):
        options["password-hash"] = passwordHash
    return {**recipe, "options": options}


class ConsoleOptions(usage.Options):
    """The options of a console: where it listens, who logs in, the limits."""

    defaultPort = "4040"
    #: Whether a password is required (the manhole can do with authorized keys alone).
    passwordRequired = True

    def __init__(self) -> None:
        super().__init__()

    @classmethod
    def consoleParameters(cls, port: str) -> list[list[Any]]:
        return [
            ["port", "p", port, "Port number or endpoint to listen on.", endpoint],
            ["interface", None, "127.0.0.1",
             "Interface a port number listens on. The default keeps the console on this machine; "
             "an endpoint with its own interface= overrides it."],
            ["username", "u", "admin", "The user name to log in with."],
            ["password", "w", None,
             "The password (visible in ps and shell history: prefer --password-file). Only a salted "
             "scrypt hash is stored in the application."],
            ["password-file", None, None, "Read the password from the first line of this file."],
            ["password-hash", None, None,
             "A hash saved by an earlier build (recipes keep this instead of the password).", _hash],
            ["idle-timeout", None, "15m", "Close a session after this long without input.", duration],
            ["max-sessions", None, "5", "How many sessions may be logged in at once (connections still logging in "
                                        "have their own limit).", session_limit],
        ]

    def postOptions(self) -> None:
        given = [name for name in ("password", "password-file", "password-hash") if self[name] is not None]
        if len(given) > 1:
            named = " and ".join("--" + g for g in given)
            raise usage.UsageError(f"give one of --password, --password-file, --password-hash, not {named}")
        if self["password"] is not None or self["password-file"] is not None:
            from tapster.plugins._console.auth import hash_password

            self["password-hash"] = hash_password(self._password())
            self["password"] = None
        if self.passwordRequired and self["password-hash"] is None:
            raise usage.UsageError(
                "no password given: there is no default password; use --password-file FILE (or --password)"
            )
        if not self["username"] or not self["username"].strip():
            raise usage.UsageError("--username must not be empty")
        self["idle-timeout"] = duration(self["idle-timeout"])
        self["max-sessions"] = session_limit(self["max-sessions"])
        self["endpoint"] = listen_description(self["port"], self["interface"])

    def _password(self) -> str:
        if self["password"] is not None:
            password = self["password"]
        else:
            name = self["password-file"]
            try:
                with open(name, encoding="utf-8") as f:
                    password = f.readline().rstrip("\r\n")
            except OSError as e:
                raise usage.UsageError(f"--password-file {name}: {e.strerror or e}") from None
            except UnicodeDecodeError:
                raise usage.UsageError(f"--password-file {name}: not UTF-8 text") from None
            if not password:
                raise usage.UsageError(f"--password-file {name}: the first line is empty")
        if not password:
            raise usage.UsageError("the password must not be empty")
        return password


def _hash(value: str) -> str:
    from tapster.plugins._console.auth import check_hash

    return check_hash(value)


_hash.coerceDoc = "As printed in a saved recipe (scrypt$...)."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows
