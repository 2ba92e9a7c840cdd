"""``tap2deb``: a Debian package that installs and runs an application file as a systemd service.

::

    tap2deb -t qotd.tap --maintainer "Ann <ann@example.org>" --version 1.0 --user qotd
    tap2deb -t qotd.tap --wheelhouse wheels/            # offline: the wheels come from DIR

builds ``tapster-qotd_1.0_<arch>.deb`` with ``dpkg-deb``: the application
file as a conffile under ``/etc/<app>/``, a virtual environment under
``/opt/<app>/`` holding tapster and the plugin distributions the file needs
(built now, from wheels, see :mod:`tapster.mktap._packaging`), the unit
``tapster-<app>.service`` (see ``tap2unit``), and maintainer scripts that do
what ``dh_installsystemd`` and ``adduser`` would: create the system user,
enable and start the service only where systemd runs, stop it on removal,
keep the conffile on ``dpkg -r`` and delete it and ``/var/lib/<app>`` on
``dpkg -P``. The architecture is ``all`` unless a native wheel is inside.

Why ``dpkg-deb`` and not nfpm: it is on every Debian system (the machine
that builds the package can install it), needs nothing downloaded, and the
control files it packs are the documented Debian ones; the shared part of
``.deb`` and ``.rpm`` (model, unit, runtime) is tapster's own code, so a
second tool would only replace a few dozen lines of control-file text.

Exit statuses: 0 built; 1 the file, a distribution or a tool failed; 2 bad command line.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.core.terminal import ExitStatus, exit_status_help
from tapster.mktap import _deploy, _packaging
from tapster.mktap._deploy import DeployError, Deployment
from tapster.mktap.tap2unit import unit_files, unit_flags, unit_parameters

__all__ = ["DebOptions", "main", "run", "package_parameters", "maintainer_scripts"]

PROG = "tap2deb"

EXIT_MEANINGS = {
    ExitStatus.OK: "the package was built",
    ExitStatus.ERROR: "the application, a distribution it needs, or a build tool failed; nothing written",
    ExitStatus.USAGE: "bad command line",
}

package_parameters: list[list[Any]] = [
    ["maintainer", "m", None, "The package's maintainer, \"Name <mail>\" (default: $DEBFULLNAME <$DEBEMAIL>)."],
    ["version", "v", "1.0", "The package's version."],
    ["wheelhouse", "w", None, "Take every wheel from DIR (offline) instead of building them from what is installed."],
    ["python", None, None, "The interpreter the venv runs on, on the target (default /usr/bin/python3)."],
    ["output-dir", "d", ".", "Where to write the package."],
]


class DebOptions(usage.Options):
    synopsis = "Usage: tap2deb -t FILE [--maintainer M] [--version V] [--user NAME] [--wheelhouse DIR]"
    programName = PROG
    longdesc = (
        "Builds tapster-<app>_<version>_<arch>.deb: the application FILE as a conffile in /etc/<app>/, a "
        "virtual environment in /opt/<app>/ with tapster and the plugins FILE needs, a hardened systemd unit "
        "and maintainer scripts (system user, enable/start where systemd runs, stop on removal, purge).\n\n"
        + exit_status_help(EXIT_MEANINGS)
    )
    optParameters = [*_deploy.common_parameters, *unit_parameters, *package_parameters]
    optFlags = [
        *_deploy.common_flags,
        *unit_flags,
        ["unsigned", None, "Accepted for tap2deb compatibility: tap2deb never signs (sign with debsigs)."],
    ]
    opt_version = None  # type: ignore[assignment]  # --version is the package's version here, as in Twisted's tap2deb


_DEB_VERSION = re.compile(r"^(\d+:)?[0-9][A-Za-z0-9.+~-]*$")
_MAINTAINER = re.compile(r"^[^<>\n]+ <[^<>@\s]+@[^<>\s]+>$")


def check_package_options(opts: Any) -> None:
    if opts["maintainer"] is None:
        name, mail = os.environ.get("DEBFULLNAME", "").strip(), os.environ.get("DEBEMAIL", "").strip()
        if not mail:
            raise usage.UsageError(
                "give the package's maintainer: --maintainer \"Name <mail@host>\" (or set $DEBEMAIL)")
        opts["maintainer"] = f"{name or mail.split('@')[0]} <{mail}>"
    if not _DEB_VERSION.match(opts["version"] or ""):
        raise usage.UsageError(f"--version {opts['version']!r} is not a package version (e.g. 1.0 or 1.0-2)")
    if not _MAINTAINER.match(opts["maintainer"] or ""):
        raise usage.UsageError(f"--maintainer {opts['maintainer']!r} must read \"Name <mail@host>\"")
    if opts["wheelhouse"] is not None and not os.path.isdir(opts["wheelhouse"]):
        raise usage.UsageError(f"--wheelhouse {opts['wheelhouse']}: no such directory")
    if not os.path.isdir(opts["output-dir"]):
        raise usage.UsageError(f"--output-dir {opts['output-dir']}: no such directory")


def stage_runtime(opts: Any, deployment: Deployment, stage: str, python: str, compile: bool = False) -> bool:
    """Build ``/opt/<app>`` inside ``stage``; returns whether it holds native code."""
    prefix = f"/opt/{deployment.name}"
    with tempfile.TemporaryDirectory(prefix="tapster-wheels-") as scratch:
        wheelhouse = opts["wheelhouse"]
        if wheelhouse is None:
            wheelhouse = scratch
            _packaging.build_wheelhouse(deployment.distributions, wheelhouse)
        _packaging.stage_venv(stage, prefix, python, os.path.abspath(wheelhouse), deployment.distributions,
                              compile=compile)
    return _packaging.is_native(stage, prefix)


def maintainer_scripts(deployment: Deployment, unit_names: Sequence[str], user: str | None) -> dict[str, str]:
    """postinst, prerm and postrm, in the shape dh_installsystemd and adduser give them."""
    app = deployment.name
    units = " ".join(f"'{u}'" for u in unit_names)
    conf = f"/etc/{app}/{deployment.filename}"
    head = "#!/bin/sh\n# generated by tap2deb\nset -e\n\n"
    postinst = head
    if user:
        postinst += f"""if [ "$1" = "configure" ]; then
	if ! getent passwd {user} >/dev/null; then
		if command -v adduser >/dev/null 2>&1; then
			adduser --system --group --quiet --home /var/lib/{app} --no-create-home \\
				--gecos "tapster application {app}" {user}
		else
			useradd --system --user-group --home-dir /var/lib/{app} --no-create-home \\
				--shell /usr/sbin/nologin --comment "tapster application {app}" {user}
		fi
	fi
	mkdir -p /var/lib/{app}
	chown {user}:{user} /var/lib/{app}
	chmod 0750 /var/lib/{app}
	chgrp {user} {conf}
	chmod 0640 {conf}
fi

"""
    postinst += f"""if [ "$1" = "configure" ]; then
	# Byte-compile the packaged venv here, as py3compile does for Debian's Python packages.
	/opt/{app}/bin/python -m compileall -q -j 0 /opt/{app}/lib >/dev/null 2>&1 || true
fi

if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || \\
   [ "$1" = "abort-remove" ]; then
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		for unit in {units}; do
			# Only removes masks created by deb-systemd-helper on package removal.
			deb-systemd-helper unmask "$unit" >/dev/null || true
			if deb-systemd-helper --quiet was-enabled "$unit"; then
				deb-systemd-helper enable "$unit" >/dev/null || true
			else
				deb-systemd-helper update-state "$unit" >/dev/null || true
			fi
		done
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
"""
    if deployment.encrypted:
        postinst += f"""		if [ ! -s /etc/{app}/passphrase ]; then
			echo "tapster-{app}: put the passphrase of {conf} in /etc/{app}/passphrase (mode 0600)," \\
				"then: systemctl start tapster-{app}.service" >&2
		else
			if [ -n "$2" ]; then _dh_action=restart; else _dh_action=start; fi
			deb-systemd-invoke $_dh_action {units} >/dev/null || true
		fi
"""
    else:
        postinst += f"""		if [ -n "$2" ]; then _dh_action=restart; else _dh_action=start; fi
		deb-systemd-invoke $_dh_action {units} >/dev/null || true
"""
    postinst += "\tfi\nfi\n\nexit 0\n"
    prerm = head + f"""if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop {units} >/dev/null || true
fi

# The byte-code postinst wrote is not dpkg's: remove it before dpkg removes or replaces the venv.
find /opt/{app} -name __pycache__ -type d -prune -exec rm -rf {{}} + 2>/dev/null || true

exit 0
"""
    postrm = head + f"""if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = "remove" ]; then
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper mask {units} >/dev/null || true
	fi
	# What Python wrote beside the packaged venv (caches) is not dpkg's: remove it with the venv.
	rm -rf /opt/{app}
fi

if [ "$1" = "purge" ]; then
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper purge {units} >/dev/null || true
		deb-systemd-helper unmask {units} >/dev/null || true
	fi
	# dpkg deletes the conffile itself; the state, the shutdown files and an admin's passphrase go too.
	rm -rf /var/lib/{app} /var/lib/private/{app} /opt/{app}
	rm -f /etc/{app}/passphrase {conf}.dpkg-old {conf}.dpkg-dist
	rmdir /etc/{app} 2>/dev/null || true
fi

exit 0
"""
    return {"postinst": postinst, "prerm": prerm, "postrm": postrm}


def _python_depends(python: str, version: tuple[int, int]) -> tuple[str, list[str]]:
    major, minor = version
    if os.path.realpath(python).startswith("/usr/bin/"):
        return f"python3 (>= {major}.{minor}), python3 (<< {major}.{minor + 1})", []
    return "", [f"the venv runs on {python}, which no Debian package provides: the target must have it at that path"]


def _write(path: str, text: str | bytes, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)


def _doc_files(stage: str, package: str, opts: Any, deployment: Deployment) -> None:
    doc = os.path.join(stage, "usr/share/doc", package)
    _write(os.path.join(doc, "copyright"),
           "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
           f"Upstream-Name: {package}\n\nFiles: *\nCopyright: {time.gmtime().tm_year} {opts['maintainer']}\n"
           "License: see the licenses of the distributions in /opt/"
           f"{deployment.name}/lib/python3*/site-packages/*.dist-info\n")
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    changelog = (f"{package} ({opts['version']}) unstable; urgency=medium\n\n"
                 f"  * Built by tap2deb from {deployment.filename}.\n\n -- {opts['maintainer']}  {stamp}\n")
    native = "-" not in opts["version"]
    _write(os.path.join(doc, "changelog.gz" if native else "changelog.Debian.gz"),
           gzip.compress(changelog.encode(), mtime=0))
    # A local add-on package lives in /opt and runs its venv's interpreter by design; the wheels it is
    # built from bring their own copies of C libraries (PyYAML's libyaml): say so to lintian.
    _write(os.path.join(stage, "usr/share/lintian/overrides", package),
           f"{package}: dir-or-file-in-opt\n{package}: unusual-interpreter\n{package}: embedded-library\n")


def _wrapped(text: str) -> list[str]:
    """The extended description: lines of at most 80 columns, each starting with a space (Debian policy 5.6.13)."""
    import textwrap

    return [" " + line for line in textwrap.wrap(text, 79, break_long_words=False, break_on_hyphens=False)]


def _strip(stage: str) -> None:
    """Strip the wheels' native libraries of symbols, as dh_strip does (smaller, and what lintian expects)."""
    tool = shutil.which("strip")
    if tool is None:
        return
    libraries = [os.path.join(base, name) for base, _, names in os.walk(stage) for name in names
                 if name.endswith(".so") or ".so." in name]
    for start in range(0, len(libraries), 200):
        subprocess.run([tool, "--strip-unneeded", "--remove-section=.comment", "--remove-section=.note",
                        *libraries[start:start + 200]], capture_output=True, check=False)


def _md5sums(stage: str) -> str:
    lines = []
    for base, dirs, files in os.walk(stage):
        dirs[:] = sorted(d for d in dirs if not (base == stage and d == "DEBIAN"))
        for name in sorted(files):
            path = os.path.join(base, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                lines.append(f"{hashlib.md5(f.read()).hexdigest()}  {os.path.relpath(path, stage)}\n")
    return "".join(lines)


def _arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise DeployError("cannot tell this machine's Debian architecture: dpkg --print-architecture failed") from None


def build(opts: Any) -> str:
    check_package_options(opts)
    if shutil.which("dpkg-deb") is None:
        raise DeployError("dpkg-deb is not installed (apt-get install dpkg)")
    deployment = _deploy.read_deployment(opts["tapfile"], opts["passphrase-file"])
    app, package = deployment.name, deployment.package
    prefix = f"/opt/{app}"
    files = unit_files(opts, deployment, prefix, PROG, default_user=app)
    user = None if "DynamicUser=yes" in next(iter(files.values())) else _user_of(files)
    python = opts["python"] or _packaging.default_python()
    version = _packaging.python_version(python)
    depends, notes = _python_depends(python, version)
    with tempfile.TemporaryDirectory(prefix="tap2deb-") as stage:
        os.chmod(stage, 0o755)
        native = stage_runtime(opts, deployment, stage, python)
        if native:
            _strip(stage)
        arch = _arch() if native else "all"
        conf = f"/etc/{app}/{deployment.filename}"
        with open(deployment.source, "rb") as f:
            _write(stage + conf, f.read(), 0o644)
        for name, text in files.items():
            _write(os.path.join(stage, "lib/systemd/system", name), text)
        _doc_files(stage, package, opts, deployment)
        control_dir = os.path.join(stage, "DEBIAN")
        for name, text in maintainer_scripts(deployment, list(files), user).items():
            _write(os.path.join(control_dir, name), text, 0o755)
        _write(os.path.join(control_dir, "conffiles"), conf + "\n")
        _write(os.path.join(control_dir, "md5sums"), _md5sums(stage))
        description = " ".join((opts["description"] or f"tapster application {app}").split())
        ports = ", ".join(p.description for p in deployment.ports) or "no ports"
        control = [
            f"Package: {package}",
            f"Version: {opts['version']}",
            f"Architecture: {arch}",
            f"Maintainer: {opts['maintainer']}",
            f"Installed-Size: {_packaging.tree_size_kib(stage)}",
        ]
        glibc = _packaging.glibc_needed(stage, prefix) if native else None
        libc = f"libc6 (>= {glibc[0]}.{glibc[1]})" if glibc else ""
        depends = ", ".join(x for x in (depends, libc, "adduser" if user else "") if x)
        if depends:
            control.append(f"Depends: {depends}")
        control += [
            "Section: net",
            "Priority: optional",
            f"Description: {description[:70]}",
            *_wrapped(f"The application {deployment.filename} ({deployment.format}) run by twistd as the "
                      f"systemd service {package}.service, listening on {ports}. Runtime: "
                      + ", ".join(f"{n} {v}" for n, v in deployment.distributions) + f" in {prefix}."),
        ]
        _write(os.path.join(control_dir, "control"), "\n".join(control) + "\n")
        filename = f"{package}_{opts['version'].split(':')[-1]}_{arch}.deb"
        target = os.path.join(opts["output-dir"], filename)
        fd, partial = tempfile.mkstemp(dir=opts["output-dir"], prefix=f".{filename}.", suffix=".tmp")
        os.close(fd)
        try:
            done = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", stage, partial],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise DeployError(f"dpkg-deb --build failed: {(done.stderr or done.stdout).strip()}")
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    note = "".join(f"; note: {n}" for n in notes)
    return f"wrote {target} ({arch}; {', '.join(n for n, _ in deployment.distributions)} in {prefix}){note}"


def _user_of(files: dict[str, str]) -> str | None:
    for line in next(iter(files.values())).splitlines():
        if line.startswith("User="):
            return line.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run tap2deb with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return _deploy.run_command(PROG, DebOptions(), build, argv)


def run() -> None:
    """Console-script entry point."""
    _deploy.run_exit(main)
