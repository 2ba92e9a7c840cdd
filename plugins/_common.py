"""Option helpers shared by the built-in plugins (kept light: no asyncio, no sockets)."""

from __future__ import annotations


def endpoint(value: str) -> str:
    """Coerce for ``--port``: check the endpoint description now, keep the text as typed.

    The text is what gets saved, so the application file stays readable and a
    bad value is refused by mktap instead of at twistd start.
    """
    from tapster.core import endpoints

    endpoints.parse(value)
    return value


endpoint.coerceDoc = "A port number or an endpoint such as tcp:8007:interface=127.0.0.1 or unix:/run/x.sock."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows
