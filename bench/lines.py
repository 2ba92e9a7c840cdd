#!/usr/bin/env python3
"""Pipelined lines through a LineReceiver echo: tapster's twistd vs Twisted's twistd, beside two references.

Run it with the project's virtualenv python (stdlib only; uvloop for the bare-uvloop reference), from the
repo root::

    /work/venv/bin/python bench/lines.py            # 5 rounds of 3 s each
    /work/venv/bin/python bench/lines.py --quick    # 1 round of 1 s: smoke test

What one run does (bench/README.md has the details):

1. builds ``loadgen`` and ``ceiling`` from ../shared/tools as bench/run.py does, and starts four servers,
   each pinned to the server CPU with ``taskset``:

   - ``ceiling``: the C epoll echo server (bytes back as they come: what one core does with no
     interpreter; for lines it is an upper bound, since it does not look for line ends);
   - ``bare-uvloop``: an ``asyncio.Protocol`` on uvloop that splits each chunk on CRLF, keeps the tail
     and writes the lines back with one ``write`` per chunk, no tapster code: what any Python line echo
     on uvloop costs at least;
   - ``twisted`` and ``tapster``: one ``.tac`` per side holding the same application, a ``LineReceiver``
     whose ``lineReceived`` calls ``sendLine(line)``, behind a ``TCPServer`` on 127.0.0.1, served by
     ``twistd -n -o -y lines.tac`` (tapster's with ``-r uvloop``, its default; Twisted's from
     ``bench/.venv-twisted``, created once as bench/run.py does);
2. for R rounds, for each server in turn (the first one rotates): a client pinned to the other CPU
   opens C connections and keeps, on each, D blocks of L lines of 64 bytes in flight (a block is sent
   whenever one block's worth has come back), for the duration. The client is ``loadgen stream -s
   L*64 -q D -c C`` (its blocks are 64-byte CRLF-terminated lines); ``--client python`` uses a small
   selector client instead, which saturates its CPU near 4–5 M lines/s, below what the C ceiling and
   bare uvloop take. Each server's ``utime+stime`` is read from ``/proc/PID/stat`` before and after:
   server CPU µs per line, and how busy the server CPU was; the client reports its own CPU use too,
   so a client-bound run shows as a client near 1.0 with a server below it;
3. prints medians and the medians of the per-round ratios (tapster/Twisted, against the goals, and
   tapster/ceiling, tapster/bare uvloop) as a Markdown table (also written to
   ``bench/results/lines.md``, raw numbers in ``bench/results/lines.json``);
4. stops every server (SIGTERM, then SIGKILL), also on Ctrl-C and on errors.

Not part of the pytest suite: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as _run

__all__ = ["main"]

BENCH_DIR = _run.BENCH_DIR
RESULTS_DIR = _run.RESULTS_DIR
LINE_SIZE = 64  # bytes per line, delimiter included

SERVER_NAMES = ("ceiling", "bare-uvloop", "twisted", "tapster")
LABELS = {
    "ceiling": "C epoll ceiling (echo)",
    "bare-uvloop": "bare uvloop line echo",
    "twisted": "Twisted twistd (epoll)",
    "tapster": "tapster twistd -r uvloop",
}
CLIENTS = ("loadgen", "python")

BARE_UVLOOP_LINES = '''\
# Written by tapster's bench/lines.py: a line echo on raw uvloop, no protocol/transport layer on top.
import asyncio, signal, sys
import uvloop


class LineEcho(asyncio.Protocol):
    def connection_made(self, transport):
        self.write = transport.write
        self.tail = b""

    def data_received(self, data):
        lines = (self.tail + data if self.tail else data).split(b"\\r\\n")
        self.tail = lines.pop()
        out = []
        for line in lines:
            out.append(line)
            out.append(b"\\r\\n")
        if out:
            self.write(b"".join(out))


async def main(port):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    server = await loop.create_server(LineEcho, "127.0.0.1", port, backlog=50)
    await stop.wait()
    server.close()


uvloop.run(main(int(sys.argv[1])))
'''

TAPSTER_TAC = '''\
# Written by tapster's bench/lines.py: a LineReceiver echo served by tapster's twistd.
from tapster.core.basic import LineReceiver
from tapster.core.internet import TCPServer
from tapster.core.protocol import Factory
from tapster.core.service import Application


class LineEcho(LineReceiver):
    def lineReceived(self, line):
        self.sendLine(line)


application = Application("lines")
TCPServer({port}, Factory.forProtocol(LineEcho), interface="127.0.0.1").setServiceParent(application)
'''

TWISTED_TAC = '''\
# Written by tapster's bench/lines.py: the same LineReceiver echo for Twisted's twistd.
from twisted.application import internet, service
from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver


class LineEcho(LineReceiver):
    def lineReceived(self, line):
        self.sendLine(line)


application = service.Application("lines")
internet.TCPServer({port}, protocol.Factory.forProtocol(LineEcho),
                   interface="127.0.0.1").setServiceParent(application)
'''

CLIENT = '''\
# Written by tapster's bench/lines.py: pipelined 64-byte lines, counted as they come back.
import selectors, socket, sys, time

port, conns, seconds, depth, per_block = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), \\
    int(sys.argv[4]), int(sys.argv[5])
block = (b"x" * {body} + b"\\r\\n") * per_block
sel = selectors.DefaultSelector()
outstanding = {{}}
socks = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    socks.append(s)
start = time.monotonic()
for s in socks:
    for _ in range(depth):
        s.sendall(block)  # small enough never to block: depth blocks fit the socket buffers
    outstanding[s] = depth * len(block)
    sel.register(s, selectors.EVENT_READ)
received = 0
end = start + seconds
while True:
    now = time.monotonic()
    if now >= end:
        break
    for key, _ in sel.select(end - now):
        s = key.fileobj
        data = s.recv(1 << 18)
        if not data:
            sys.exit("the server closed a connection")
        received += len(data)
        left = outstanding[s] - len(data)
        while left <= (depth - 1) * len(block):
            s.sendall(block)
            left += len(block)
        outstanding[s] = left
elapsed = time.monotonic() - start
import os
used = sum(os.times()[:2])
print(f"RESULT lines={{received // {size}}} secs={{elapsed:.6f}} cpu={{used / elapsed:.3f}}")
'''


@dataclass
class Context:
    """What bench/run.py's ``spawn`` and ``stop_all`` need, and this script's own settings."""

    args: argparse.Namespace
    workdir: Path
    procs: list[_run.Proc] = field(default_factory=list)
    loadgen: Path | None = None
    ceiling: Path | None = None


@dataclass
class Server:
    name: str
    port: int
    proc: _run.Proc | None = None


def start_server(ctx: Context, server: Server, twistd: Path) -> None:
    cwd = ctx.workdir / server.name
    cwd.mkdir(parents=True, exist_ok=True)
    if server.name == "ceiling":
        assert ctx.ceiling is not None
        # Its QOTD port is not used here; it gets a port of its own all the same.
        argv = [str(ctx.ceiling), "-q", str(_run.free_ports(1)[0]), "-e", str(server.port)]
    elif server.name == "bare-uvloop":
        (cwd / "bare_lines.py").write_text(BARE_UVLOOP_LINES)
        argv = [sys.executable, str(cwd / "bare_lines.py"), str(server.port)]
    else:
        template = TAPSTER_TAC if server.name == "tapster" else TWISTED_TAC
        (cwd / "lines.tac").write_text(template.format(port=server.port))
        argv = [str(twistd), "-n", "-o", "-y", "lines.tac"]
        if server.name == "tapster":
            argv[1:1] = ["-r", "uvloop"]
    server.proc = _run.spawn(ctx, server.name, argv, cwd)  # type: ignore[arg-type]


def client_argv(ctx: Context, port: int, client: Path) -> list[str]:
    a = ctx.args
    if a.client == "python":
        return [sys.executable, str(client), str(port), str(a.connections), str(a.duration), str(a.depth),
                str(a.lines_per_block)]
    assert ctx.loadgen is not None
    return [str(ctx.loadgen), "stream", "-p", str(port), "-c", str(a.connections), "-d", str(a.duration),
            "-s", str(a.lines_per_block * LINE_SIZE), "-q", str(a.depth)]


def measure(ctx: Context, server: Server, client: Path) -> dict[str, float | None]:
    """One client run against ``server``: lines/s, the server's CPU µs per line, both sides' CPU use."""
    assert server.proc is not None
    pid = server.proc.popen.pid
    a = ctx.args
    before = _run.cpu_seconds(pid)
    done = subprocess.run(
        ["taskset", "-c", str(a.client_cpu), *client_argv(ctx, server.port, client)],
        capture_output=True, text=True, timeout=a.duration + 60,
    )
    cpu = _run.cpu_seconds(pid) - before
    if server.proc.popen.poll() is not None:
        raise RuntimeError(f"{server.name} exited during the run; its output:\n{server.proc.log_tail()}")
    failed = {"rate": None, "cpu": None, "server_busy": None, "client_busy": None}
    if done.returncode != 0:
        _run.log(f"{server.name}: client failed (status {done.returncode}): {done.stderr.strip()[-300:]}")
        return failed
    result = _run.parse_result(done.stdout)
    if a.client == "python":
        lines, secs = float(result["lines"]), float(result["secs"])
    else:
        if float(result.get("errors", 0)):
            _run.log(f"{server.name}: loadgen reported errors: {done.stdout.strip()[-300:]}")
            return failed
        secs = float(result["secs"])
        lines = float(result["bytes_in"]) / LINE_SIZE
    return {
        "rate": lines / secs if secs else None,
        "cpu": cpu / lines * 1e6 if lines else None,
        "server_busy": cpu / secs if secs else None,
        "client_busy": float(result["cpu"]),
    }


def run_rounds(ctx: Context, servers: list[Server], client: Path) -> dict[str, dict[str, list[float | None]]]:
    metrics = ("rate", "cpu", "server_busy", "client_busy")
    results: dict[str, dict[str, list[float | None]]] = {s.name: {m: [] for m in metrics} for s in servers}
    by_name = {s.name: s for s in servers}
    for round_no in range(ctx.args.rounds):
        for name in _run.rotated(list(by_name), round_no):
            values = measure(ctx, by_name[name], client)
            for metric, value in values.items():
                results[name][metric].append(value)
            rate, cpu = values["rate"], values["cpu"]
            busy, client_busy = values["server_busy"], values["client_busy"]
            _run.log(f"round {round_no + 1}/{ctx.args.rounds} {name:11} "
                     f"lines/s {'n/a' if rate is None else f'{rate:>10,.0f}'}  "
                     f"cpu µs/line {'n/a' if cpu is None else f'{cpu:.3f}'}  "
                     f"busy: server {'n/a' if busy is None else f'{busy:.2f}'}, "
                     f"client {'n/a' if client_busy is None else f'{client_busy:.2f}'}")
    return results


def ratios(results: dict[str, dict[str, list[float | None]]], metric: str, other: str = "twisted") -> list[float]:
    """tapster/``other`` within each round."""
    pairs = zip(results["tapster"][metric], results[other][metric], strict=False)
    return [a / b for a, b in pairs if a is not None and b]


def render(results: dict[str, dict[str, list[float | None]]], meta: dict[str, str]) -> str:
    names = [n for n in SERVER_NAMES if n in results]

    def med(name: str, metric: str, spec: str) -> str:
        value = _run.median_or_none(results[name][metric])
        return "n/a" if value is None else format(value, spec)

    def versus(metric: str, other: str) -> str:
        return _run.fmt_ratio(ratios(results, metric, other)) if other in results else "n/a"

    out = ["# tapster line benchmark", ""]
    out += [f"- {key}: {value}" for key, value in meta.items()]
    out += ["", "| metric | " + " | ".join(LABELS[n] for n in names)
            + " | tapster / Twisted | tapster / ceiling | tapster / bare uvloop |",
            "|---|" + "---:|" * (len(names) + 3)]
    rows = [("64-byte lines echoed, lines/s", "rate", ",.0f", (3, True)),
            ("server CPU, µs/line (lower is better)", "cpu", ".3f", (0.5, False)),
            ("server CPU busy (1.0 = one core)", "server_busy", ".2f", None),
            ("client CPU busy (1.0 = one core)", "client_busy", ".2f", None)]
    for label, metric, spec, goal in rows:
        mine = ratios(results, metric) if "twisted" in results else []
        first = _run.fmt_ratio(mine, *goal) if goal else _run.fmt_ratio(mine)
        rest = ("", "") if goal is None else (versus(metric, "ceiling"), versus(metric, "bare-uvloop"))
        out.append(f"| {label} | " + " | ".join(med(n, metric, spec) for n in names)
                   + f" | {first} | {rest[0]} | {rest[1]} |")
    out += ["",
            "Medians over rounds; ratios are computed within each round (median, range in brackets). "
            "A server busy near 1.0 is bound by its CPU; a client busy near 1.0 means the client may be.", ""]
    return "\n".join(out)


def collect_meta(ctx: Context, argv: Sequence[str], twistd: Path, twisted_twistd: Path) -> dict[str, str]:
    a = ctx.args
    try:
        rev = subprocess.run(["git", "-C", str(_run.REPO_DIR), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        rev = "unknown"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python", "bench/lines.py", *argv]),
        "tapster": f"git {rev}, {twistd} -r uvloop",
        "Twisted": _run.version_of(twisted_twistd.parent / "python", "twisted") + " (default reactor: epoll)",
        "Python": platform.python_version() + f", uvloop {_run.version_of(sys.executable, 'uvloop')}",
        "load": f"{a.connections} connections × {a.depth} blocks of {a.lines_per_block} lines of "
                f"{LINE_SIZE} bytes in flight, client: "
                + ("bench/lines.py's Python selector client" if a.client == "python" else
                   f"loadgen stream -c {a.connections} -q {a.depth} -s {a.lines_per_block * LINE_SIZE}"),
        "pinning": f"servers on CPU {a.server_cpu}, client on CPU {a.client_cpu}",
        "rounds": f"{a.rounds} × {a.duration:g} s",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/lines.py",
        description="Pipelined 64-byte lines through a LineReceiver echo: tapster's twistd vs Twisted's.",
        epilog="See bench/README.md. Results go to bench/results/lines.md (and .json).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke test")
    parser.add_argument("-c", "--connections", type=int, default=4, help="client connections (default 4)")
    parser.add_argument("--depth", type=int, default=4, help="blocks in flight per connection (default 4)")
    parser.add_argument("--lines-per-block", type=int, default=64, help="lines per block sent (default 64)")
    parser.add_argument("--client", choices=CLIENTS, default="loadgen",
                        help="loadgen (C, from ../shared/tools; default) or python (a selector client)")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES),
                        help=f"comma-separated subset of {','.join(SERVER_NAMES)} (default: all)")
    parser.add_argument("--tools", type=Path, default=_run.DEFAULT_TOOLS_DIR,
                        help="directory with build.sh, loadgen.c, ceiling.c (default: <repo>/../shared/tools)")
    parser.add_argument("--tapster-bin", type=Path, default=Path(sys.executable).parent,
                        help="directory holding tapster's twistd (default: the bin/ of this python)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for servers (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU for the client (default 1)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "lines.md",
                        help="Markdown table (default bench/results/lines.md; raw numbers beside it as .json)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the .tac files and server logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    args.servers = [n for n in args.servers.split(",") if n]
    unknown = sorted(set(args.servers) - set(SERVER_NAMES))
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)} (choose from {', '.join(SERVER_NAMES)})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _run._raise_interrupted)
    ctx = Context(args, Path(tempfile.mkdtemp(prefix="tapster-lines-")))
    try:
        _, twistd = _run.tapster_commands(args.tapster_bin)
        twisted_twistd = _run.ensure_twisted_venv()
        ctx.loadgen, ctx.ceiling = _run.build_tools(args.tools)
        client = ctx.workdir / "client.py"
        client.write_text(CLIENT.format(body=LINE_SIZE - 2, size=LINE_SIZE))
        names = [n for n in SERVER_NAMES if n in args.servers]
        servers = [Server(name, port) for name, port in zip(names, _run.free_ports(len(names)), strict=True)]
        for server in servers:
            _run.log(f"start: {server.name} (:{server.port})")
            start_server(ctx, server, twistd if server.name == "tapster" else twisted_twistd)
        for server in servers:
            assert server.proc is not None
            _run.wait_for_port(server.port, server.proc)
        results = run_rounds(ctx, servers, client)
        table = render(results, collect_meta(ctx, argv, twistd, twisted_twistd))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table)
        args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        print(table)
        _run.log(f"written: {args.output} and {args.output.with_suffix('.json')}")
        return 0
    except (KeyboardInterrupt, _run._Interrupted):
        _run.log("interrupted: stopping servers")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _run.log(f"bench: error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _run.stop_all(ctx.procs)  # type: ignore[arg-type]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep_temp:
            _run.log(f"kept: {ctx.workdir}")
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
