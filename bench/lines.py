#!/usr/bin/env python3
"""Pipelined lines through a LineReceiver echo: tapster's twistd vs Twisted's twistd.

Run it with the project's virtualenv python (stdlib only), from the repo root::

    /work/venv/bin/python bench/lines.py            # 5 rounds of 3 s each
    /work/venv/bin/python bench/lines.py --quick    # 1 round of 1 s: smoke test

What one run does (bench/README.md has the details):

1. writes one ``.tac`` per side holding the same application: a ``LineReceiver`` whose
   ``lineReceived`` calls ``sendLine(line)``, behind a ``TCPServer`` on 127.0.0.1 (there is no
   mktap plugin for a line echo, so both are served from the .tac: ``twistd -n -o -y lines.tac``,
   tapster's with ``-r uvloop`` (its default) and Twisted's from ``bench/.venv-twisted``, created
   once as bench/run.py does), each pinned to the server CPU with ``taskset``;
2. for R rounds, for each server in turn (the first one alternates): a client process pinned to
   the other CPU opens C connections and keeps, on each, D blocks of L lines of 64 bytes in
   flight (a block is sent whenever one block's worth has come back), for the duration; it
   reports the lines echoed and the time taken, while the server's ``utime+stime`` is read from
   ``/proc/PID/stat`` before and after: server CPU µs per line;
3. prints medians and the median of the per-round ratios tapster/Twisted as a Markdown table
   (also written to ``bench/results/lines.md``, raw numbers in ``bench/results/lines.json``);
4. stops every server (SIGTERM, then SIGKILL), also on Ctrl-C and on errors.

``loadgen`` from ../shared/tools has no pipelined-lines mode (its echo mode sends one line and
waits for it), hence the small selector client here. The client only counts bytes, so a few
system calls per block are all it costs: it is not the bottleneck.

Not part of the pytest suite: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import statistics
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

SERVER_NAMES = ("twisted", "tapster")
LABELS = {"twisted": "Twisted twistd (epoll)", "tapster": "tapster twistd -r uvloop"}

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
print(f"RESULT lines={{received // {size}}} secs={{elapsed:.6f}}")
'''


@dataclass
class Context:
    """What bench/run.py's ``spawn`` and ``stop_all`` need, and this script's own settings."""

    args: argparse.Namespace
    workdir: Path
    procs: list[_run.Proc] = field(default_factory=list)


@dataclass
class Server:
    name: str
    port: int
    proc: _run.Proc | None = None


def start_server(ctx: Context, server: Server, twistd: Path) -> None:
    cwd = ctx.workdir / server.name
    cwd.mkdir(parents=True, exist_ok=True)
    template = TAPSTER_TAC if server.name == "tapster" else TWISTED_TAC
    (cwd / "lines.tac").write_text(template.format(port=server.port))
    argv = [str(twistd), "-n", "-o", "-y", "lines.tac"]
    if server.name == "tapster":
        argv[1:1] = ["-r", "uvloop"]
    server.proc = _run.spawn(ctx, server.name, argv, cwd)  # type: ignore[arg-type]


def measure(ctx: Context, server: Server, client: Path) -> dict[str, float | None]:
    """One client run against ``server``: lines/s and the server's CPU µs per line."""
    assert server.proc is not None
    pid = server.proc.popen.pid
    a = ctx.args
    before = _run.cpu_seconds(pid)
    done = subprocess.run(
        ["taskset", "-c", str(a.client_cpu), sys.executable, str(client), str(server.port), str(a.connections),
         str(a.duration), str(a.depth), str(a.lines_per_block)],
        capture_output=True, text=True, timeout=a.duration + 60,
    )
    cpu = _run.cpu_seconds(pid) - before
    if server.proc.popen.poll() is not None:
        raise RuntimeError(f"{server.name} exited during the run; its output:\n{server.proc.log_tail()}")
    if done.returncode != 0:
        _run.log(f"{server.name}: client failed (status {done.returncode}): {done.stderr.strip()[-300:]}")
        return {"rate": None, "cpu": None}
    result = _run.parse_result(done.stdout)
    lines, secs = float(result["lines"]), float(result["secs"])
    return {"rate": lines / secs if secs else None, "cpu": cpu / lines * 1e6 if lines else None}


def run_rounds(ctx: Context, servers: list[Server], client: Path) -> dict[str, dict[str, list[float | None]]]:
    results: dict[str, dict[str, list[float | None]]] = {s.name: {"rate": [], "cpu": []} for s in servers}
    by_name = {s.name: s for s in servers}
    for round_no in range(ctx.args.rounds):
        for name in _run.rotated(list(by_name), round_no):
            values = measure(ctx, by_name[name], client)
            for metric, value in values.items():
                results[name][metric].append(value)
            rate, cpu = values["rate"], values["cpu"]
            _run.log(f"round {round_no + 1}/{ctx.args.rounds} {name:8} "
                     f"lines/s {'n/a' if rate is None else f'{rate:,.0f}'}  "
                     f"cpu µs/line {'n/a' if cpu is None else f'{cpu:.3f}'}")
    return results


def ratios(results: dict[str, dict[str, list[float | None]]], metric: str) -> list[float]:
    """tapster/Twisted within each round."""
    pairs = zip(results["tapster"][metric], results["twisted"][metric], strict=False)
    return [a / b for a, b in pairs if a is not None and b]


def fmt_ratio(values: list[float], goal: float, higher: bool) -> str:
    if not values:
        return "n/a"
    r = statistics.median(values)
    text = f"{r:.2f}×" + (f" [{min(values):.2f}–{max(values):.2f}]" if len(values) > 1 else "")
    met = r >= goal if higher else r < goal
    return text + f" {'✓' if met else '✗'} goal {'≥' if higher else '<'} {goal:g}×"


def render(results: dict[str, dict[str, list[float | None]]], meta: dict[str, str]) -> str:
    def med(name: str, metric: str, spec: str) -> str:
        value = _run.median_or_none(results[name][metric])
        return "n/a" if value is None else format(value, spec)

    out = ["# tapster line benchmark", ""]
    out += [f"- {key}: {value}" for key, value in meta.items()]
    out += ["", "| metric | " + " | ".join(LABELS[n] for n in SERVER_NAMES) + " | tapster / Twisted |",
            "|---|---:|---:|---:|",
            "| 64-byte lines echoed, lines/s | " + " | ".join(med(n, "rate", ",.0f") for n in SERVER_NAMES)
            + f" | {fmt_ratio(ratios(results, 'rate'), 3, True)} |",
            "| server CPU, µs/line (lower is better) | " + " | ".join(med(n, "cpu", ".3f") for n in SERVER_NAMES)
            + f" | {fmt_ratio(ratios(results, 'cpu'), 0.5, False)} |",
            "",
            "Medians over rounds; ratios are computed within each round (median, range in brackets).", ""]
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
                f"{LINE_SIZE} bytes in flight",
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
        client = ctx.workdir / "client.py"
        client.write_text(CLIENT.format(body=LINE_SIZE - 2, size=LINE_SIZE))
        servers = [Server(name, port) for name, port in zip(SERVER_NAMES, _run.free_ports(2), strict=True)]
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
