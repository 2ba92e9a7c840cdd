"""Endpoint descriptions a stranger (or a typo) can write: each is one EndpointError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapster.core import endpoints
from tapster.core.errors import CannotListenError, EndpointError


@pytest.mark.parametrize("description, why", [
    ("unix:/tmp/a\x00b", "NUL byte"),
    ("tcp:0:interface=\x00", "NUL byte"),
    ("tcp:" + "9" * 5000, "out of range"),
    ("tcp:" + "0" * 4000 + "80", None),  # leading zeros: still port 80
    ("tcp:8007:backlog=" + "9" * 5000, "backlog"),
    ("unix:/x:mode=" + "7" * 5000, "mode"),
    (b"tcp:\xff\xfe", "not valid UTF-8"),
    ("tcp:\udcff", "not valid UTF-8"),  # how a non-UTF-8 command line reaches Python
    ("tcp:80:interface=\x1b[2J", "control characters"),
    ("tcp:80:timeout=inf", None),  # a server description has no timeout: refused as unknown
])
def test_hostile_descriptions(description: str | bytes, why: str | None) -> None:
    if why is None and "0000" in str(description):
        assert endpoints.parse(description)[1] == (80,)
        return
    with pytest.raises(EndpointError) as info:
        endpoints.parse(description)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and "\x1b" not in message
    if why:
        assert why in message


def test_a_client_timeout_must_be_finite() -> None:
    with pytest.raises(EndpointError, match="timeout"):
        endpoints.clientFromString(None, "tcp:host=127.0.0.1:port=80:timeout=inf")


def test_a_unix_socket_in_a_missing_directory_is_a_listen_error(tmp_path: Path) -> None:
    from tapster.core.testing import freshReactor

    with freshReactor("asyncio") as reactor:
        with pytest.raises(CannotListenError, match="No such file or directory"):
            reactor.listenUNIX(str(tmp_path / "missing" / "x.sock"), object(), wantPID=True)
