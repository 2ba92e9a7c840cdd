"""Error messages read as one clean sentence that names the thing and the fix."""

from __future__ import annotations

from tapster.core.errors import CannotListenError, ConnectionRefusedError


def test_connect_error_has_no_stray_period() -> None:
    text = str(ConnectionRefusedError("Connect call failed", "127.0.0.1:1"))
    assert text == "Connection was refused by the other side: Connect call failed: 127.0.0.1:1"


def test_address_in_use_hint_fits_ports_and_paths() -> None:
    in_use = OSError(98, "Address already in use")
    assert str(CannotListenError("127.0.0.1", 80, in_use)).endswith("choose another port)")
    assert str(CannotListenError("/run/x.sock", None, in_use)).endswith("choose another path)")
    assert "127.0.0.1:80" in str(CannotListenError("127.0.0.1", 80, in_use))
    assert "[::1]:80" in str(CannotListenError("::1", 80, in_use))
