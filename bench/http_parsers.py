"""Which sans-I/O HTTP/1.1 parser the web plugin uses: h11 or httptools, measured here.

Parses N pipelined GET requests (a browser-like request of ~400 bytes, headers
included) fed in 16 KiB slices, as a server reading from a socket would see them,
and reports nanoseconds per request for each parser, best of a few runs.

    python bench/http_parsers.py [N]

httptools is llhttp (Node's parser, C) behind a callback interface; h11 is pure
Python with a complete connection state machine. The web plugin runs its own
small state machine over httptools's callbacks (see plugins/web/_http.py).
"""

from __future__ import annotations

import sys
import time

REQUEST = (
    b"GET /static/css/site.css?v=3 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8080\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/css,*/*;q=0.1\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Referer: http://127.0.0.1:8080/\r\n"
    b"If-None-Match: \"5f3a-1a2b3c\"\r\n"
    b"\r\n"
)


def slices(n: int, size: int = 16384) -> list[bytes]:
    stream = REQUEST * n
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def run_httptools(chunks: list[bytes]) -> int:
    import httptools

    class Collector:
        __slots__ = ("count", "headers", "url")

        def __init__(self) -> None:
            self.count = 0
            self.headers: list[tuple[bytes, bytes]] = []
            self.url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_message_complete(self) -> None:
            self.count += 1
            self.headers = []
            self.url = b""

    c = Collector()
    parser = httptools.HttpRequestParser(c)
    for chunk in chunks:
        parser.feed_data(chunk)
    return c.count


def run_h11(chunks: list[bytes]) -> int:
    import h11

    conn = h11.Connection(h11.SERVER)
    count = 0
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.EndOfMessage):
                count += 1
                # A server must answer before h11 hands it the next pipelined request.
                conn.send(h11.Response(status_code=204, headers=[]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
    return count


def measure(fn, chunks: list[bytes], n: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        got = fn(chunks)
        elapsed = time.perf_counter_ns() - t0
        assert got == n, (fn.__name__, got, n)
        best = min(best, elapsed / n)
    return best


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 20000
    chunks = slices(n)
    results = {"httptools": measure(run_httptools, chunks, n), "h11": measure(run_h11, chunks, n)}
    print(f"{n} pipelined requests of {len(REQUEST)} bytes, fed in 16 KiB slices (best of 5)")
    for name, ns in results.items():
        print(f"  {name:10s} {ns:10.0f} ns/request")
    print(f"  h11 / httptools: {results['h11'] / results['httptools']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
