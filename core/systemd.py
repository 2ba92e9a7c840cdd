"""Sockets handed over by systemd (socket activation) or by whoever started the process.

systemd's protocol (sd_listen_fds(3)): ``$LISTEN_FDS`` descriptors, starting
at 3, are open listening sockets for this process when ``$LISTEN_PID`` is its
pid; ``$LISTEN_FDNAMES`` names them (``FileDescriptorName=`` in the .socket
unit), colon-separated. Debian's ``systemd-socket-activate`` speaks the same
protocol without systemd, which is how the tests run it.

:func:`readEnvironment` reads the variables once (twistd calls it at start,
before the application loads) and removes them, so that child processes do
not take the sockets for theirs; the endpoints ``systemd:name=web``,
``systemd:index=0`` and ``fd:N`` then adopt a descriptor instead of binding
(:mod:`tapster.core.endpoints`). Each descriptor is checked when adopted: it
must be a socket of the kind the endpoint serves (stream or datagram); a
mismatch, or a name nobody passed, is one clear :class:`InheritedSocketError`.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass

from tapster.core.errors import InheritedSocketError

__all__ = ["InheritedSocket", "InheritedSocketError", "readEnvironment", "inherited", "adopt", "adoptDescriptor",
           "LISTEN_FDS_START"]

#: The first descriptor systemd passes.
LISTEN_FDS_START = 3


@dataclass(frozen=True)
class InheritedSocket:
    """One descriptor passed by systemd: its number, its name (``unknown`` when unnamed), its position."""

    fd: int
    name: str
    index: int


_inherited: list[InheritedSocket] = []
_read = False


def readEnvironment(environ: MutableMapping[str, str] | None = None, pid: int | None = None) -> list[InheritedSocket]:
    """Read (once) and remove ``$LISTEN_FDS``/``$LISTEN_PID``/``$LISTEN_FDNAMES``; the sockets passed to us.

    Variables meant for another process (``$LISTEN_PID`` not ours) pass
    nothing. Malformed values are an InheritedSocketError naming the variable.
    """
    global _read
    if environ is None and _read:  # the process's environment is read once
        return list(_inherited)
    env = os.environ if environ is None else environ
    count_text = env.pop("LISTEN_FDS", None)
    pid_text = env.pop("LISTEN_PID", None)
    names_text = env.pop("LISTEN_FDNAMES", None)
    _read = True
    _inherited.clear()
    if count_text is None:
        return []
    if pid_text is not None:
        if not pid_text.isdigit():
            raise InheritedSocketError(f"LISTEN_PID={pid_text!r} is not a process id")
        if int(pid_text) != (os.getpid() if pid is None else pid):
            return []  # meant for another process (the one that forked us)
    if not count_text.isdigit() or not 0 < int(count_text) <= 4096:
        raise InheritedSocketError(f"LISTEN_FDS={count_text!r} is not a number of descriptors (1 to 4096)")
    count = int(count_text)
    names = names_text.split(":") if names_text else []
    if names and len(names) != count:
        raise InheritedSocketError(
            f"LISTEN_FDNAMES names {len(names)} descriptors but LISTEN_FDS={count}: the socket unit and the "
            "environment disagree")
    for index in range(count):
        fd = LISTEN_FDS_START + index
        try:
            os.set_inheritable(fd, False)  # ours now: children do not get it
        except OSError as e:
            raise InheritedSocketError(f"LISTEN_FDS={count} but descriptor {fd} is not open ({e.strerror})") from None
        _inherited.append(InheritedSocket(fd, names[index] if names else "unknown", index))
    return list(_inherited)


def inherited() -> list[InheritedSocket]:
    """The sockets :func:`readEnvironment` found (read now if it has not run yet)."""
    return readEnvironment()


def _describe(found: list[InheritedSocket]) -> str:
    if not found:
        return "none were passed (LISTEN_FDS is not set for this process)"
    return "passed: " + ", ".join(f"{s.name} (index {s.index}, fd {s.fd})" for s in found)


def adopt(name: str | None = None, index: int | None = None, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """The inherited socket named ``name`` (or at ``index``), as a socket object of ``kind``."""
    found = inherited()
    if name is not None:
        matches = [s for s in found if s.name == name]
        if not matches:
            raise InheritedSocketError(f"systemd passed no socket named {name!r}: {_describe(found)}")
        if len(matches) > 1:
            raise InheritedSocketError(f"systemd passed {len(matches)} sockets named {name!r}: use systemd:index=N")
        chosen = matches[0]
    elif index is not None:
        if not 0 <= index < len(found):
            raise InheritedSocketError(f"systemd passed no socket at index {index}: {_describe(found)}")
        chosen = found[index]
    else:
        raise InheritedSocketError("give systemd:name=NAME or systemd:index=N")
    return adoptDescriptor(chosen.fd, kind, f"systemd socket {chosen.name!r}")


def adoptDescriptor(fd: int, kind: int = socket.SOCK_STREAM, what: str | None = None) -> socket.socket:
    """Descriptor ``fd`` as a socket object, checked to be a socket of ``kind`` (listening, for a stream)."""
    what = what or f"descriptor {fd}"
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        raise InheritedSocketError(f"{what} is not open ({e.strerror})") from None
    if not stat.S_ISSOCK(mode):
        raise InheritedSocketError(f"{what} is not a socket")
    sock = socket.socket(fileno=os.dup(fd))
    if sock.type != kind:
        sock.close()
        wanted = "stream (TCP or UNIX)" if kind == socket.SOCK_STREAM else "datagram (UDP)"
        raise InheritedSocketError(f"{what} is not a {wanted} socket: check ListenStream=/ListenDatagram= in the "
                                   "socket unit")
    if kind == socket.SOCK_STREAM and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.close()
        raise InheritedSocketError(f"{what} is a stream socket that does not listen")
    sock.setblocking(False)
    return sock
