"""Quote of the Day server (RFC 865): each connection gets one quote, then is closed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapster.core import usage
from tapster.core.protocol import Protocol, ServerFactory
from tapster.plugins._common import endpoint
from tapster.plugins.quoters import DEFAULT_QUOTE, FortuneQuoter, StaticQuoter

if TYPE_CHECKING:
    from typing import Protocol as _TypingProtocol

    from tapster.core.service import Service

    class _Quoter(_TypingProtocol):
        """What QOTDFactory needs of a quoter (``load()``, if it has one, runs at start)."""

        def getQuote(self) -> str: ...

__all__ = ["Options", "makeService", "description", "safeNames", "QOTD", "QOTDFactory"]

description = "A Quote of the Day server (RFC 865): one quote per connection."

#: What an application file from a stranger (XML) may name of this plugin: its saved parts.
safeNames = (
    "tapster.plugins.qotd.QOTDFactory",
    "tapster.plugins.qotd.QOTD",
    "tapster.plugins.quoters.StaticQuoter",
    "tapster.plugins.quoters.FortuneQuoter",
    "tapster.plugins.qotd.Options",
)


class QOTD(Protocol):
    """Send one quote, CRLF-terminated (multi-line quotes use CRLF throughout), and close."""

    factory: QOTDFactory | None

    def connectionMade(self) -> None:
        factory, transport = self.factory, self.transport
        assert factory is not None and transport is not None  # set by buildProtocol and makeConnection
        quote = factory.quoter.getQuote()
        transport.write(quote.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n")
        transport.loseConnection()


class QOTDFactory(ServerFactory):
    """Holds the quoter; protocols ask it for a quote."""

    protocol = QOTD

    def __init__(self, quoter: _Quoter) -> None:
        self.quoter = quoter

    def startFactory(self) -> None:
        load = getattr(self.quoter, "load", None)
        if load is not None:
            load()  # read fortune files now: a missing file fails the start, not a connection


class Options(usage.Options):
    synopsis = "[-p PORT] [-s QUOTE | -f FILE ...]"
    longdesc = (
        "Serves the Quote of the Day protocol (RFC 865): a client that connects gets one quote "
        "and the connection is closed. Quotes come from --static or from fortune files "
        "(quotes separated by lines holding a single %)."
    )
    optParameters = [
        ["port", "p", "8007", "Port number or endpoint to listen on.", endpoint],
        ["static", "s", DEFAULT_QUOTE, "The quote to serve (ignored when --fortune is given)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["fortune"] = []

    def opt_fortune(self, filename: str) -> None:
        """A fortune file to pick quotes from at random (repeat for several files)."""
        self["fortune"].append(filename)

    opt_f = opt_fortune

    def postOptions(self) -> None:
        for name in self["fortune"]:
            quoter = FortuneQuoter([name])
            try:
                quoter.load()
            except (OSError, ValueError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                raise usage.UsageError(f"--fortune {name}: {reason}") from e


def makeService(config: usage.Options) -> Service:
    """A listening service on ``--port`` serving quotes from the configured quoter."""
    from tapster.core import endpoints

    quoter = FortuneQuoter(config["fortune"]) if config["fortune"] else StaticQuoter(config["static"])
    return endpoints.service(config["port"], QOTDFactory(quoter))
