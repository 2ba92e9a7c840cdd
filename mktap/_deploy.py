"""The deployment model shared by ``tap2unit``, ``tap2deb``, ``tap2rpm``, ``tap2oci`` and ``tap2k8s``.

One application file is read once (any format, encrypted or not) into a
:class:`Deployment`: its name, the ports its stream servers listen on (as
:func:`tapster.core.endpoints.describe` writes them), the user and group it
asks for, whether it is encrypted, and the Python distributions it needs at
run time (``tapster`` itself, the plugins named by the services' recipes, and
the distributions that provide the modules of the classes in the tree).

Everything the commands generate is rendered from this model, so a unit, a
package and a manifest always agree about ports, paths and users.

This module also holds the one command-line boundary the five commands share
(:func:`run_command`): one clear line on stderr per failure, the exit statuses
of :class:`tapster.core.terminal.ExitStatus`, a traceback only with ``--debug``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tapster.core import usage
from tapster.core.errors import TapsterError
from tapster.core.terminal import ExitStatus

__all__ = [
    "DeployError",
    "Port",
    "Deployment",
    "read_deployment",
    "package_name",
    "common_parameters",
    "common_flags",
    "run_command",
    "write_text_atomically",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
#: Modules whose classes need no distribution (the interpreter's own, and the builtins).
_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__future__"}


class DeployError(TapsterError):
    """The application cannot be shipped as asked (a missing distribution, a port that cannot be bound...)."""


@dataclass(frozen=True)
class Port:
    """One listening stream socket of the application."""

    kind: str  # tcp, tcp6, ssl, unix, or udp (a datagram port)
    description: str  # as endpoints.describe writes it, e.g. tcp:8007:interface=127.0.0.1
    service: str  # the name of the service in the tree
    name: str  # a unique name usable as a socket unit, a Kubernetes port name, a FileDescriptorName
    number: int | None = None
    interface: str = ""
    path: str | None = None

    @property
    def privileged(self) -> bool:
        """True for a TCP port below 1024 (binding it needs root or CAP_NET_BIND_SERVICE)."""
        return self.number is not None and 0 < self.number < 1024

    @property
    def protocol(self) -> str:
        """``TCP`` or ``UDP``: what Kubernetes and a container's EXPOSE call it."""
        return "UDP" if self.kind == "udp" else "TCP"

    @property
    def listen_directive(self) -> str:
        """The socket unit's directive for this port: ``ListenDatagram`` for UDP, ``ListenStream`` otherwise."""
        return "ListenDatagram" if self.kind == "udp" else "ListenStream"

    @property
    def listen_stream(self) -> str:
        """The value of a socket unit's ``ListenStream=`` (or ``ListenDatagram=``) for this port."""
        if self.path is not None:
            return self.path
        if self.interface and self.interface not in ("0.0.0.0", "::"):
            host = f"[{self.interface}]" if ":" in self.interface else self.interface
            return f"{host}:{self.number}"
        return str(self.number)


@dataclass(frozen=True)
class Deployment:
    """What the generators need to know about one application file."""

    source: str  # the file as given on the command line
    filename: str  # its base name: the name it is installed under, /etc/<app>/<filename>
    name: str  # the application's name (Application(name)), made into a package-safe name
    format: str  # pickle, xml, source or yaml
    encrypted: bool
    uid: int | str | None = None
    gid: int | str | None = None
    ports: tuple[Port, ...] = ()
    plugins: tuple[str, ...] = ()
    distributions: tuple[tuple[str, str], ...] = ()  # (name, installed version), tapster first
    notes: tuple[str, ...] = field(default=())

    @property
    def package(self) -> str:
        return package_name(self.name)

    @property
    def privileged_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.privileged)

    @property
    def tcp_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.number is not None and p.kind != "udp")

    @property
    def numbered_ports(self) -> tuple[Port, ...]:
        """Every port with a number, stream and datagram: what a container exposes."""
        return tuple(p for p in self.ports if p.number is not None)


def package_name(app: str) -> str:
    """The package (and unit) name of application ``app``: ``tapster-<app>``."""
    return f"tapster-{app}"


def _safe_name(raw: object, source: str) -> str:
    text = str(raw or "").strip().lower()
    text = re.sub(r"[^a-z0-9.+-]+", "-", text).strip("-.+")
    if not text or not _NAME.match(text):
        base = os.path.basename(source).split(".")[0].lower()
        text = re.sub(r"[^a-z0-9.+-]+", "-", base).strip("-.+")
    if not text or not _NAME.match(text) or len(text) > 60:
        raise DeployError(
            f"{source}: the application's name {raw!r} cannot name a package; rename it (mktap --appname NAME)"
        )
    return text


def _walk(service: Any) -> Iterator[Any]:
    yield service
    for child in list(getattr(service, "services", None) or ()):
        yield from _walk(child)


def _ports(app: Any) -> list[Port]:
    from tapster.core import endpoints, internet

    ports: list[Port] = []
    used: set[str] = set()
    for svc in _walk(app):
        if isinstance(svc, internet.UDPServer):
            udp = _udp_port(svc, used)
            if udp is not None:
                ports.append(udp)
            continue
        if not isinstance(svc, (internet.TCPServer, internet.UNIXServer, internet.SSLServer,
                                internet.StreamServerEndpointService)):
            continue
        try:
            description = endpoints.describe(svc)  # an endpoint service of a porter's own endpoint class: unknown
        except TypeError:
            continue
        kind, args, kwargs = endpoints.parse(description)
        if kind in endpoints.ADOPTED_KINDS:
            continue  # a socket systemd passes: its socket unit exists already, and says where it listens
        name = _port_name(svc, kind, used)
        if kind == "unix":
            ports.append(Port(kind, description, str(svc.name), name, path=str(args[0])))
        else:
            ports.append(Port(kind, description, str(getattr(svc, "name", "") or ""), name,
                              number=int(args[0]), interface=str(kwargs.get("interface") or "")))
    return ports


def _port_name(svc: Any, kind: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", str(getattr(svc, "name", None) or kind).lower()).strip("-") or kind
    base = base[:12].strip("-") or kind  # Kubernetes port names are at most 15 characters
    name, n = base, 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    used.add(name)
    return name


def _udp_port(svc: Any, used: set[str]) -> Port | None:
    """A UDPServer's port; None for one that adopts a socket systemd passes (``systemd:name=...``)."""
    number = svc.args[0] if svc.args else svc.kwargs.get("port")
    if not isinstance(number, int):
        return None
    interface = svc.args[2] if len(svc.args) > 2 else svc.kwargs.get("interface", "")
    description = f"udp:{number}" + (f":interface={interface}" if interface else "")
    return Port("udp", description, str(getattr(svc, "name", "") or ""), _port_name(svc, "udp", used),
                number=number, interface=str(interface or ""))


def _plugin_distributions(plugins: Sequence[str], source: str) -> list[str]:
    eps = {ep.name: ep for ep in metadata.entry_points(group="mktap.plugins")}
    names = []
    for plugin in plugins:
        ep = eps.get(plugin)
        dist = getattr(ep, "dist", None) if ep is not None else None
        if dist is None:
            raise DeployError(
                f"{source} needs plugin {plugin!r}, but no installed distribution provides it "
                f"(pip install the package that registers it in the mktap.plugins entry points)"
            )
        names.append(dist.metadata["Name"])
    return names


def _module_file(module: str) -> str | None:
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    return os.path.realpath(path) if path else None


def _class_distributions(app: Any, source: str) -> list[str]:
    """The distributions providing the modules of the classes in the tree (services and what they hold)."""
    modules: dict[str, str] = {}
    for svc in _walk(app):
        for obj in (svc, *vars(svc).values(), *getattr(svc, "args", ())):
            cls = obj if isinstance(obj, type) else type(obj)
            module = getattr(cls, "__module__", None) or ""
            if module.split(".")[0] in _STDLIB:
                continue
            modules.setdefault(module, f"{module}.{cls.__qualname__}")
    top = metadata.packages_distributions()
    names: list[str] = []
    for module, label in sorted(modules.items()):
        candidates = top.get(module.split(".")[0], [])
        if len(candidates) > 1:  # a namespace package (tapster.*) shared by several distributions
            path = _module_file(module)
            owners = [c for c in candidates if path and _owns(c, path)]
            candidates = owners or candidates[:1]
        if not candidates:
            raise DeployError(
                f"{source} holds a {label}, but no installed distribution provides module {module!r}: "
                "make it an installable package (pip install it) so it can be shipped"
            )
        names.append(candidates[0])
    return names


def _owns(distribution: str, path: str) -> bool:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return any(os.path.realpath(str(dist.locate_file(f))) == path for f in dist.files or ())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_deployment(source: str, passphrase_file: str | None = None) -> Deployment:
    """Load ``source`` (asking for nothing: an encrypted file needs ``passphrase_file``) and describe it."""
    from tapster.core import persist
    from tapster.core.plugin import RECIPE_ATTRIBUTE
    from tapster.core.terminal import read_passphrase_file

    encrypted = persist.is_encrypted(source)
    passphrase = None
    if encrypted:
        if passphrase_file is None:
            raise DeployError(f"{source} is encrypted: give its passphrase with --passphrase-file FILE")
        passphrase = read_passphrase_file(passphrase_file)
    app = persist.load(source, passphrase=passphrase)
    style = persist.format_for(getattr(app, "persistStyle", None)).name
    plugins: list[str] = []
    for svc in _walk(app):
        recipe = getattr(svc, RECIPE_ATTRIBUTE, None)
        if isinstance(recipe, dict) and isinstance(recipe.get("plugin"), str) and recipe["plugin"] not in plugins:
            plugins.append(recipe["plugin"])
    wanted = ["tapster", *_plugin_distributions(plugins, source), *_class_distributions(app, source)]
    dists: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in wanted:
        key = _canonical(name)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise DeployError(f"{source} needs distribution {name!r}, which is not installed here") from None
        dists.append((dist.metadata["Name"], dist.version))
    filename = os.path.basename(source)
    return Deployment(
        source=source,
        filename=filename,
        name=_safe_name(getattr(app, "name", None), source),
        format=style,
        encrypted=encrypted,
        uid=getattr(app, "uid", None),
        gid=getattr(app, "gid", None),
        ports=tuple(_ports(app)),
        plugins=tuple(plugins),
        distributions=tuple(dists),
    )


# -- the command-line boundary ---------------------------------------------------------

#: Options every generator takes (usage.Options optParameters rows).
common_parameters: list[list[Any]] = [
    ["tapfile", "t", None, "The application file to ship (any format; encrypted needs --passphrase-file)."],
    ["passphrase-file", None, None, "The passphrase of an encrypted application file (its first line)."],
    ["health", None, None, "Have twistd serve /healthz, /readyz and /metrics on ENDPOINT (e.g. tcp:9100)."],
    ["shutdown-timeout", None, "10", "twistd's --shutdown-timeout: seconds given to a graceful stop."],
    ["drain-time", None, "0", "twistd's --drain-time: seconds /readyz fails before the stop starts."],
]
common_flags: list[list[Any]] = [
    ["stateless", None, "Run twistd with -o: no shutdown save (for replicas that keep no state)."],
    ["debug", None, "Show full tracebacks."],
]


def seconds(opts: Any, key: str) -> float:
    try:
        value = float(opts[key])
    except (TypeError, ValueError):
        raise usage.UsageError(f"--{key} must be a number of seconds, not {opts[key]!r}") from None
    if value < 0 or value != value or value > 86400:
        raise usage.UsageError(f"--{key} must be between 0 and 86400 seconds, not {opts[key]!r}")
    return value


def check_health(opts: Any) -> int | None:
    """The TCP port of ``--health`` (None without it); refuses what is not a tcp or unix endpoint."""
    from tapster.core import endpoints
    from tapster.core.errors import EndpointError

    if not opts["health"]:
        return None
    try:
        kind, args, _ = endpoints.parse(opts["health"])
    except EndpointError as e:
        raise usage.UsageError(f"--health: {e}") from None
    if kind not in ("tcp", "tcp6", "unix"):
        raise usage.UsageError(f"--health must be a tcp or unix endpoint, not {opts['health']!r}")
    return int(args[0]) if kind != "unix" else None


def _say(prog: str, message: str) -> None:
    from tapster.core.terminal import one_line

    print(f"{prog}: {one_line(message)}", file=sys.stderr)


def run_command(prog: str, opts: usage.Options, action: Callable[[Any], str], argv: Sequence[str] | None) -> int:
    """Parse ``argv`` into ``opts``, run ``action(opts)`` and turn every failure into one line and a status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts.parseOptions(args or ["--help"])
        if not opts["tapfile"]:
            raise usage.UsageError("-t/--tapfile FILE is required: the application file to ship")
    except usage.UsageError as e:
        _say(prog, f"{e} (see {prog} --help)")
        return ExitStatus.USAGE
    except SystemExit as e:
        return int(e.code or 0)
    try:
        message = action(opts)
    except usage.UsageError as e:
        _say(prog, str(e))
        return ExitStatus.USAGE
    except TapsterError as e:
        if opts["debug"]:
            traceback.print_exc()
        _say(prog, f"{e}; nothing was written")
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)
        _say(prog, "interrupted; nothing was written")
        return ExitStatus.INTERRUPTED
    except Exception as e:  # a bug, or a class in the file misbehaving: still one line, nothing half written
        if opts["debug"]:
            traceback.print_exc()
        hint = "" if opts["debug"] else f" (run {prog} --debug for the traceback)"
        _say(prog, f"could not ship {opts['tapfile']}: {type(e).__name__}: {e}; nothing was written{hint}")
        return ExitStatus.ERROR
    if message:
        _say(prog, message)
    return ExitStatus.OK


def write_text_atomically(path: str, text: str | bytes, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, fsynced and renamed over it."""
    from tapster.core.persist import atomic_write

    data = text.encode() if isinstance(text, str) else text
    try:
        atomic_write(path, data)
        os.chmod(path, mode)
    except OSError as e:
        raise DeployError(f"cannot write {path}: {e.strerror or e}") from e


def run_exit(main: Callable[[], int]) -> None:
    """Console-script helper: run ``main`` and exit with its status, quiet on a closed pipe."""
    from tapster.core.terminal import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
