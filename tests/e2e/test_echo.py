"""mktap echo → twistd -n -o -f echo.tap: what a client sends comes back."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e._e2e import free_port, nc, run, wait_for_port


def test_echo_round_trip_with_nc(tmp_path: Path, twistd) -> None:
    port = free_port()
    made = run("mktap", "echo", "--port", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-o", "-f", "echo.tap")
    wait_for_port(port, server.proc)
    assert nc(port, b"hello, echo\n") == b"hello, echo\n"
    assert server.stop() == 0
    assert not (tmp_path / "echo-shutdown.tap").exists()


def test_echo_large_payload_comes_back_whole(tmp_path: Path, twistd) -> None:
    port = free_port()
    run("mktap", "echo", "--port", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    server = twistd("-n", "-o", "-f", "echo.tap")
    wait_for_port(port, server.proc)
    payload = bytes(range(256)) * 8192  # 2 MiB: more than any socket buffer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        received = bytearray()
        sent = 0
        s.setblocking(True)
        # Interleave sending and receiving so neither side's buffers fill up for good.
        while sent < len(payload) or len(received) < len(payload):
            if sent < len(payload):
                sent += s.send(payload[sent:sent + 65536])
            chunk = s.recv(1 << 20) if len(received) < sent else b""
            received += chunk
    assert bytes(received) == payload
    assert server.stop() == 0
