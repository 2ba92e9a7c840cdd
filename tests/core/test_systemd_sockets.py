"""Socket activation's environment, read in a child process that really has descriptors 3 and 4."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import json, os, socket, sys
    from tapster.core import systemd
    out = {}
    try:
        found = systemd.readEnvironment()
        out["found"] = [[s.fd, s.name, s.index] for s in found]
        out["env_left"] = sorted(k for k in os.environ if k.startswith("LISTEN_"))
        for request in json.loads(sys.argv[1]):
            try:
                kind = socket.SOCK_DGRAM if request.get("dgram") else socket.SOCK_STREAM
                if "fd" in request:
                    s = systemd.adoptDescriptor(request["fd"], kind)
                else:
                    s = systemd.adopt(name=request.get("name"), index=request.get("index"), kind=kind)
                out.setdefault("adopted", []).append(list(s.getsockname())[:2])
            except systemd.InheritedSocketError as e:
                out.setdefault("errors", []).append(str(e))
    except systemd.InheritedSocketError as e:
        out["fatal"] = str(e)
    print(json.dumps(out))
""")


def child(env: dict[str, str], requests: list[dict], fds: list[socket.socket]) -> dict:
    """Run CHILD with ``fds`` as descriptors 3, 4, ... (what systemd does) and ``env``."""
    duplicates = [s.fileno() for s in fds]

    def place() -> None:
        for target, fd in enumerate(duplicates, start=3):
            os.dup2(fd, target)

    full = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    full.update(env)
    script = CHILD
    if full.get("LISTEN_PID") == "self":  # the child's own pid, known only once it runs (systemd knows it)
        del full["LISTEN_PID"]
        script = "import os; os.environ['LISTEN_PID'] = str(os.getpid())\n" + CHILD
    result = subprocess.run([sys.executable, "-c", script, json.dumps(requests)], env=full, preexec_fn=place,
                            pass_fds=tuple(range(3, 3 + len(fds))), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def sockets():
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield tcp, udp
    tcp.close()
    udp.close()


def test_named_sockets_are_adopted_and_the_variables_removed(sockets) -> None:
    tcp, udp = sockets
    out = child({"LISTEN_FDS": "2", "LISTEN_PID": "self", "LISTEN_FDNAMES": "web:dns"},
                [{"name": "web"}, {"index": 1, "dgram": True}, {"fd": 3}], [tcp, udp])
    assert out["found"] == [[3, "web", 0], [4, "dns", 1]] and out["env_left"] == []
    assert out["adopted"] == [list(tcp.getsockname()), list(udp.getsockname()), list(tcp.getsockname())]


def test_mismatches_are_one_clear_error_each(sockets) -> None:
    tcp, udp = sockets
    out = child({"LISTEN_FDS": "2", "LISTEN_PID": "self", "LISTEN_FDNAMES": "web:dns"},
                [{"name": "nope"}, {"index": 5}, {"name": "dns"}, {"name": "web", "dgram": True}, {"fd": 40}],
                [tcp, udp])
    errors = out["errors"]
    assert "no socket named 'nope': passed: web (index 0, fd 3), dns (index 1, fd 4)" in errors[0]
    assert "no socket at index 5" in errors[1]
    assert "'dns' is not a stream (TCP or UNIX) socket" in errors[2]
    assert "'web' is not a datagram (UDP) socket" in errors[3]
    assert "descriptor 40 is not open" in errors[4]


def test_variables_for_another_process_pass_nothing(sockets) -> None:
    tcp, _ = sockets
    out = child({"LISTEN_FDS": "1", "LISTEN_PID": "1"}, [{"index": 0}], [tcp])
    assert out["found"] == [] and out["env_left"] == [] and "none were passed" in out["errors"][0]


@pytest.mark.parametrize("env, needle", [
    ({"LISTEN_FDS": "many"}, "LISTEN_FDS='many' is not a number"),
    ({"LISTEN_FDS": "1", "LISTEN_PID": "x1"}, "LISTEN_PID='x1' is not a process id"),
    ({"LISTEN_FDS": "2", "LISTEN_FDNAMES": "a"}, "LISTEN_FDNAMES names 1 descriptors but LISTEN_FDS=2"),
    ({"LISTEN_FDS": "3"}, "descriptor 5 is not open"),
])
def test_malformed_variables(sockets, env: dict[str, str], needle: str) -> None:
    tcp, udp = sockets
    out = child(env, [], [tcp, udp])
    assert needle in out["fatal"]
