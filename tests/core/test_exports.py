"""The public surface: every module's ``__all__`` resolves, and Twisted's names are where authors look."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = [
    "tapster.core.address",
    "tapster.core.basic",
    "tapster.core.defer",
    "tapster.core.endpoints",
    "tapster.core.errors",
    "tapster.core.failure",
    "tapster.core.hookspecs",
    "tapster.core.internet",
    "tapster.core.log",
    "tapster.core.persist",
    "tapster.core.plugin",
    "tapster.core.protocol",
    "tapster.core.reactor",
    "tapster.core.service",
    "tapster.core.ssl",
    "tapster.core.strports",
    "tapster.core.task",
    "tapster.core.testing",
    "tapster.core.usage",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists missing names: {missing}"


TWISTED_NAMES = {
    "tapster.core.service:Service": [
        "startService",
        "stopService",
        "privilegedStartService",
        "setServiceParent",
        "disownServiceParent",
        "setName",
        "running",
        "name",
        "parent",
    ],
    "tapster.core.service:MultiService": [
        "getServiceNamed",
        "namedServices",
        "addService",
        "removeService",
        "__iter__",
    ],
    "tapster.core.protocol:Protocol": ["makeConnection", "connectionMade", "dataReceived", "connectionLost", "factory"],
    "tapster.core.protocol:Factory": [
        "buildProtocol",
        "doStart",
        "doStop",
        "startFactory",
        "stopFactory",
        "protocol",
        "forProtocol",
    ],
    "tapster.core.protocol:ClientFactory": ["startedConnecting", "clientConnectionFailed", "clientConnectionLost"],
    "tapster.core.basic:LineReceiver": [
        "lineReceived",
        "sendLine",
        "setRawMode",
        "setLineMode",
        "rawDataReceived",
        "lineLengthExceeded",
        "delimiter",
        "MAX_LENGTH",
    ],
    "tapster.core.usage:Options": [
        "parseOptions",
        "postOptions",
        "parseArgs",
        "getSynopsis",
        "getUsage",
        "opt_help",
        "opt_version",
    ],
}


@pytest.mark.parametrize("where", sorted(TWISTED_NAMES))
def test_twisted_names(where: str) -> None:
    module, cls = where.split(":")
    klass = getattr(importlib.import_module(module), cls)
    missing = [n for n in TWISTED_NAMES[where] if not hasattr(klass, n) and n not in ("namedServices",)]
    assert not missing


@pytest.mark.parametrize(
    "module",
    [
        "tapster.core.usage",
        "tapster.core.protocol",
        "tapster.core.basic",
    "tapster.core.defer",
        "tapster.core.service",
        "tapster.core.reactor",
        "tapster.core.endpoints",
        "tapster.core.internet",
        "tapster.plugins.qotd",
        "tapster.mktap.options",
    ],
)
def test_light_modules_do_not_import_asyncio(module: str) -> None:
    """What ``mktap --help`` and plugin listing load must not pay for asyncio (~70 ms here)."""
    code = f"import sys, {module}; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"importing {module} imports asyncio"
