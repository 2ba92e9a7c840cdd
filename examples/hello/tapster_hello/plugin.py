"""The ``hello`` plugin: greets each client by name, then closes the connection.

What tapster needs of a plugin module, all at module level:

* ``description``: one line, shown by ``mktap --help``;
* ``Options``: a ``tapster.core.usage.Options`` subclass, the plugin's command line;
* ``makeService(config)``: the service tree for parsed options.

``mktap --help`` imports this module to read ``description``, so it imports
only light modules at the top; whatever is heavy (here, the endpoint
machinery) is imported inside ``makeService``.
"""

from __future__ import annotations

from tapster.core import usage
from tapster.core.protocol import Factory, Protocol

__all__ = ["description", "Options", "makeService", "Greeter", "GreeterFactory"]

description = "Greets whoever connects by name, then hangs up."


class Greeter(Protocol):
    """Writes ``Hello, <name>!`` and closes: the whole protocol."""

    def connectionMade(self) -> None:
        self.transport.write(f"Hello, {self.factory.name}!\r\n".encode("utf-8"))
        self.transport.loseConnection()


class GreeterFactory(Factory):
    protocol = Greeter

    def __init__(self, name: str) -> None:
        self.name = name


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


_name.coerceDoc = "Any non-empty text."


class Options(usage.Options):
    synopsis = "[-p PORT] [-n NAME]"
    longdesc = "Greets every client that connects with 'Hello, NAME!' and closes the connection."
    optParameters = [
        ["port", "p", "8123", "Port number or endpoint to listen on."],
        ["name", "n", "world", "Whom to greet.", _name],
    ]


def makeService(config: Options):
    from tapster.core import endpoints  # heavier: imported only when a service is built

    return endpoints.service(config["port"], GreeterFactory(config["name"]))
