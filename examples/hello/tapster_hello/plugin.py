"""The ``hello`` plugin: greets each client by name, then closes the connection.

What tapster needs of a plugin module, all at module level:

* ``description``: one line, shown by ``mktap --help``;
* ``Options``: a ``tapster.core.usage.Options`` subclass, the plugin's command line;
* ``makeService(config)``: the service tree for parsed options.

And one that is optional but makes ``mktap -t xml hello`` work:

* ``safeNames``: the classes of this module that a saved application holds,
  declared safe for the XML format (which loads files from strangers and
  refuses every class that nobody declared).

``mktap --help`` imports this module to read ``description``, so it imports
only light modules at the top; whatever is heavy (here, the endpoint
machinery) is imported inside ``makeService``.
"""

from __future__ import annotations

from tapster.core import usage
from tapster.core.protocol import Factory, Protocol

__all__ = ["description", "Options", "makeService", "safeNames", "Greeter", "GreeterFactory"]

description = "Greets whoever connects by name, then hangs up."


class Greeter(Protocol):
    """Writes ``Hello, <name>!`` and closes: the whole protocol."""

    def connectionMade(self) -> None:
        self.transport.write(f"Hello, {self.factory.name}!\r\n".encode())
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


#: What an XML application file may name of this plugin: the parts makeService puts in the
#: saved tree. Rebuilding them from a file runs no code of the file's choosing; nothing here
#: runs code, writes files or starts processes. Paths saved in files are public: keep these
#: classes importable from tapster_hello.plugin.
safeNames = (GreeterFactory, Greeter)
