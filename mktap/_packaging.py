"""Building the self-contained runtime a package ships: a wheelhouse, and a venv at its final path.

The venv is built at package-build time, at ``<stage>/opt/<app>`` with the
target's interpreter (``--python``, default ``/usr/bin/python3``), from wheels
only (``pip install --no-index --find-links``), and then made to work at
``/opt/<app>``: the few files that name the staging path (script shebangs,
``activate``, ``pyvenv.cfg``) are rewritten and the modules are byte-compiled
with their final paths. Why at build time and not in postinst: the package
then holds every file dpkg/rpm will own (``dpkg -L``, clean removal,
``debsums``), installing runs no pip as root and needs no network, and what
was built is what runs. The price is that the venv is tied to the target's
interpreter (its path and minor version), which the package's dependencies
state.

The wheelhouse comes from ``--wheelhouse DIR`` or is built from the
distributions installed here: a distribution installed from a local source
tree is wheeled from that tree, the others (and all the dependencies) are
fetched by ``pip wheel`` at the versions installed here (a constraints file),
from pip's cache or the configured index.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from urllib.parse import unquote, urlparse

from tapster.mktap._deploy import DeployError

__all__ = ["build_wheelhouse", "stage_venv", "python_version", "is_native", "default_python"]

_PIP_TIMEOUT = 600


def default_python() -> str:
    """The interpreter the packaged venv runs on: the system's python3 where there is one."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else os.path.realpath(sys.executable)


def _run(argv: Sequence[str], what: str, hint: str = "") -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=_PIP_TIMEOUT,
                              env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    except FileNotFoundError:
        raise DeployError(f"cannot {what}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"cannot {what}: {os.path.basename(argv[0])} took more than {_PIP_TIMEOUT}s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:") or "error:" in line.lower()]
        reason = (errors or lines or [f"exit status {done.returncode}"])[0]
        reason = reason.removeprefix("ERROR: ")
        raise DeployError(f"cannot {what}: {reason}{hint}")
    return done.stdout


def python_version(python: str) -> tuple[int, int]:
    out = _run([python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
               f"run the target interpreter {python}")
    major, minor = out.split()
    return int(major), int(minor)


def _source_tree(name: str) -> str | None:
    """The local directory ``name`` was installed from (pip's direct_url.json), if any."""
    wanted = re.sub(r"[-_.]+", "-", name).lower()
    for dist in metadata.distributions():  # every copy: a stray egg-info on sys.path may come first
        if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() != wanted:
            continue
        try:
            info = json.loads(dist.read_text("direct_url.json") or "null")
        except ValueError:
            continue
        if not isinstance(info, dict) or "dir_info" not in info:
            continue
        url = urlparse(str(info.get("url", "")))
        path = unquote(url.path)
        if url.scheme == "file" and os.path.isdir(path):
            return path
    return None


def build_wheelhouse(distributions: Sequence[tuple[str, str]], directory: str) -> None:
    """Put wheels for ``distributions`` (name, version) and all they depend on into ``directory``."""
    pip = [sys.executable, "-m", "pip"]
    for name, _version in distributions:
        tree = _source_tree(name)
        if tree is not None:
            _run([*pip, "wheel", "-q", "--no-deps", "-w", directory, tree], f"build a wheel of {name} from {tree}")
    constraints = os.path.join(directory, "constraints.txt")
    pinned = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]})
    with open(constraints, "w") as f:
        f.write("\n".join(pinned) + "\n")
    _run([*pip, "wheel", "-q", "-w", directory, "--find-links", directory, "-c", constraints,
          *(f"{name}=={version}" for name, version in distributions)],
         "collect the wheels of " + ", ".join(name for name, _ in distributions),
         " (give --wheelhouse DIR holding them)")
    os.unlink(constraints)


def stage_venv(stage: str, prefix: str, python: str, wheelhouse: str,
               distributions: Sequence[tuple[str, str]], compile: bool = True) -> None:
    """A venv for ``prefix`` built at ``stage + prefix`` with ``python``, holding ``distributions`` from wheels."""
    target = stage + prefix
    _run([python, "-m", "venv", "--without-pip", target], f"create a virtual environment with {python}")
    requirements = [f"{name}=={version}" for name, version in distributions]
    _run([sys.executable, "-m", "pip", "--python", os.path.join(target, "bin", "python"), "install", "-q",
          "--no-index", "--find-links", wheelhouse, "--no-compile", "--no-warn-script-location", *requirements],
         "install " + ", ".join(requirements) + f" from the wheels in {wheelhouse}",
         " (add its wheel to --wheelhouse, or build it: pip wheel -w DIR NAME)")
    _relocate(target, prefix)
    if not compile:  # Debian compiles at install time (postinst), as py3compile does
        return
    _run([os.path.join(target, "bin", "python"), "-m", "compileall", "-q", "-j", "0",
          "-s", target, "-p", prefix, os.path.join(target, "lib")], "byte-compile the virtual environment")


def _relocate(target: str, prefix: str) -> None:
    """Rewrite the files of the venv that name its staging path to name ``prefix``."""
    old, new = target.encode(), prefix.encode()
    paths = [os.path.join(target, "pyvenv.cfg")]
    bindir = os.path.join(target, "bin")
    paths += [os.path.join(bindir, n) for n in os.listdir(bindir)]
    for path in paths:
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if old not in data:
            continue
        if path.endswith("pyvenv.cfg"):  # "command = python -m venv <stage>": of no use on the target
            data = b"".join(line for line in data.splitlines(True) if not line.startswith(b"command"))
        data = data.replace(old, new)
        mode = os.stat(path).st_mode
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)


def is_native(stage: str, prefix: str) -> bool:
    """True if a wheel installed in the staged venv is not pure Python (the package is then per-architecture)."""
    lib = stage + prefix + "/lib"
    for root, dirs, _files in os.walk(lib):
        for d in dirs:
            if d.endswith(".dist-info"):
                try:
                    with open(os.path.join(root, d, "WHEEL")) as f:
                        if re.search(r"^Root-Is-Purelib:\s*false", f.read(), re.M | re.I):
                            return True
                except OSError:
                    continue
    return False


def glibc_needed(stage: str, prefix: str) -> tuple[int, int] | None:
    """The newest glibc a native wheel of the staged venv was built for (from its manylinux tags)."""
    needed: tuple[int, int] | None = None
    lib = stage + prefix + "/lib"
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    for root, dirs, _files in os.walk(lib):
        for d in dirs:
            if not d.endswith(".dist-info"):
                continue
            try:
                with open(os.path.join(root, d, "WHEEL")) as f:
                    tags = re.findall(r"^Tag:\s*\S+-\S+-(\S+)", f.read(), re.M)
            except OSError:
                continue
            versions = []
            for tag in tags:
                m = re.match(r"manylinux_(\d+)_(\d+)_", tag)
                if m:
                    versions.append((int(m.group(1)), int(m.group(2))))
                elif tag.split("_")[0] in legacy:
                    versions.append(legacy[tag.split("_")[0]])
            if versions:  # any one of a wheel's tags is enough: the oldest it names
                oldest = min(versions)
                needed = oldest if needed is None else max(needed, oldest)
    return needed


def tree_size_kib(root: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_size
    return (total + 1023) // 1024
