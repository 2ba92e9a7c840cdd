"""Large files from the real ``twistd -n web``: sendfile, slow readers with bounded memory, the send timeout.

The 500 MB file is sparse (``truncate``): it costs no disk, and the kernel
serves its pages of zeros from the page cache. The server logs at debug level
to a file (``-b -l``), which is how these tests see that sendfile was used and
that a stalled client was cut.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, wait_for_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")

BIG = 500 * 1024 * 1024
RSS_BOUND = 64 * 1024 * 1024


def ep(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def poll(predicate, deadline: float = 10.0, what: str = "condition"):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    subprocess.run(["truncate", "-s", str(BIG), str(root / "big.bin")], check=True)
    (root / "small.txt").write_text("small\n")
    with open(root / "medium.bin", "wb") as f:
        f.write(os.urandom(1 << 20) * 16)  # 16 MiB, shrunk by one test
    return root


def start(twistd, tmp_path: Path, *options: str):
    port = free_port()
    server = twistd("-n", "-o", "-b", "-l", "twistd.log", "web", "--path", "www", "--listen", ep(port), *options,
                    cwd=tmp_path)
    wait_for_port(port, server.proc)
    return server, port


def log(tmp_path: Path) -> str:
    path = tmp_path / "twistd.log"
    return path.read_text(errors="replace") if path.exists() else ""


def small_connection(port: int, rcvbuf: int = 4096) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: it sets the window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def get(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def quick_answer(port: int, deadline: float = 2.0) -> float:
    """GET /small.txt on a new connection; the time it took (it must come within ``deadline``)."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as sock:
        get(sock, "/small.txt")
        data = b""
        while not data.endswith(b"small\n"):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    return time.monotonic() - began


class SlowReader(threading.Thread):
    """Reads a few KB at a time, with pauses, until told to stop."""

    def __init__(self, port: int, path: str, chunk: int = 4096, pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.sock = small_connection(port)
        get(self.sock, path)
        self.chunk, self.pause = chunk, pause
        self.received = 0
        self.head = b""
        self.error: BaseException | None = None
        self.eof = False
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                data = self.sock.recv(self.chunk)
                if not data:
                    self.eof = True
                    return
                if not self.head:
                    self.head = data[:200]
                self.received += len(data)
                time.sleep(self.pause)
        except OSError as e:
            self.error = e

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        self.sock.close()


def test_slow_reader_of_500mb_keeps_memory_bounded_while_others_are_answered(tmp_path: Path, www: Path,
                                                                             twistd) -> None:
    server, port = start(twistd, tmp_path)
    pid = server.proc.pid
    quick_answer(port)
    idle = rss(pid)

    slow = SlowReader(port, "/big.bin")
    slow.start()
    poll(lambda: slow.received > 100_000, what="the slow reader's first bytes")
    peak = idle
    latencies = []
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        latencies.append(quick_answer(port))
        peak = max(peak, rss(pid))
    assert slow.error is None and not slow.eof
    mark = slow.received
    poll(lambda: slow.received > mark, what="the slow reader to go on receiving")
    peak = max(peak, rss(pid))
    slow.stop()
    assert slow.head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d" % BIG in slow.head
    assert peak - idle < RSS_BOUND, (idle, peak)
    assert len(latencies) >= 5
    print(f"\nidle RSS {idle >> 20} MiB, peak during the slow transfer {peak >> 20} MiB "
          f"(+{(peak - idle) / 2**20:.1f} MiB); slow reader got {slow.received} bytes; "
          f"{len(latencies)} other requests, slowest {max(latencies) * 1000:.1f} ms")

    # One full fast download: every byte arrives, and it went by sendfile.
    began = time.monotonic()
    out = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          f"http://127.0.0.1:{port}/big.bin"], capture_output=True, text=True, timeout=90)
    took = time.monotonic() - began
    assert out.stdout == f"200 {BIG}", out.stderr
    print(f"500 MiB by curl in {took:.2f} s ({BIG / took / 2**20:.0f} MiB/s)")
    poll(lambda: log(tmp_path).count(f"web: sendfile {BIG} bytes from 0 for /big.bin") >= 2,
         what="the sendfile log lines")
    # A range of it, by sendfile too (offset, count).
    ranged = subprocess.run(["curl", "-sS", "--max-time", "20", "-r", "1000-2000999", "-o", "/dev/null", "-w",
                             "%{http_code} %{size_download}", f"http://127.0.0.1:{port}/big.bin"],
                            capture_output=True, text=True, timeout=30)
    assert ranged.stdout == "206 2000000", ranged.stderr
    poll(lambda: "web: sendfile 2000000 bytes from 1000 for /big.bin" in log(tmp_path), what="the range's line")
    assert server.stop() == 0, server.stderr
    assert "Traceback" not in log(tmp_path)


def test_a_client_that_stops_reading_is_cut_after_the_send_timeout(tmp_path: Path, www: Path, twistd) -> None:
    server, port = start(twistd, tmp_path, "--send-timeout", "1")
    stalled = small_connection(port)
    get(stalled, "/big.bin")
    began = time.monotonic()
    slow = SlowReader(port, "/big.bin", chunk=16384, pause=0.02)  # slow, but always reading
    slow.start()

    poll(lambda: "(--send-timeout): disconnected" in log(tmp_path), deadline=10, what="the send timeout")
    waited = time.monotonic() - began
    assert waited >= 0.9
    # The stalled client now reads: what was queued, then the end (or a reset), far short of the file.
    total = 0
    try:
        while True:
            data = stalled.recv(1 << 20)
            if not data:
                break
            total += len(data)
    except ConnectionResetError:
        pass
    stalled.close()
    assert total < BIG // 10

    # The slow reader went on for more than two timeouts and was never cut.
    mark = slow.received
    poll(lambda: time.monotonic() - began > 2.5 and slow.received > mark, what="the slow reader to go on")
    assert slow.error is None and not slow.eof
    slow.stop()
    assert log(tmp_path).count("(--send-timeout): disconnected") == 1
    assert quick_answer(port) < 2
    assert server.stop() == 0, server.stderr


def test_a_file_that_shrinks_mid_sendfile_aborts_and_one_that_vanishes_is_served_whole(tmp_path: Path, www: Path,
                                                                                       twistd) -> None:
    server, port = start(twistd, tmp_path)
    size = 16 << 20

    # Shrinks: the length was promised, so the connection is aborted short of it.
    reader = small_connection(port)
    get(reader, "/medium.bin")
    head = reader.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d" % size in head
    poll(lambda: f"web: sendfile {size} bytes from 0 for /medium.bin" in log(tmp_path), what="the sendfile line")
    os.truncate(www / "medium.bin", 1 << 20)
    total = len(head)
    try:
        while True:
            data = reader.recv(1 << 20)
            if not data:
                break
            total += len(data)
    except ConnectionResetError:
        pass
    reader.close()
    assert total < size

    # Vanishes: the open file is still whole, and so is the answer.
    with open(www / "medium.bin", "wb") as f:
        f.write(b"v" * size)
    reader = small_connection(port)
    get(reader, "/medium.bin")
    first = reader.recv(4096)
    os.unlink(www / "medium.bin")
    data = first
    while b"\r\n\r\n" not in data:
        data += reader.recv(4096)
    _, _, body = data.partition(b"\r\n\r\n")
    while len(body) < size:
        data = reader.recv(1 << 20)
        if not data:
            break
        body += data
    reader.close()
    assert body == b"v" * size
    assert quick_answer(port) < 2
    assert server.stop() == 0, server.stderr
    assert "Traceback" not in log(tmp_path)
