"""tapster core: the library plugin authors import (services, reactor, protocols, options, persistence)."""

__version__ = "0.1.0.dev0"
