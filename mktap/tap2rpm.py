"""``tap2rpm``: the RPM twin of ``tap2deb``, built with ``rpmbuild`` from a generated spec.

::

    tap2rpm -t qotd.tap --maintainer "Ann <ann@example.org>" --version 1.0 --user qotd

builds ``tapster-qotd-1.0-1.<arch>.rpm``: the application file as
``%config(noreplace)`` under ``/etc/<app>/``, the venv under ``/opt/<app>/``
(byte-compiled at build time, as RPMs ship it), the unit under
``/usr/lib/systemd/system/``, and scriptlets doing what ``%systemd_post``,
``%systemd_preun`` and ``%systemd_postun_with_restart`` would (written out:
Debian's rpm has no systemd macros), plus the system user in ``%pre``.
Exit statuses as tap2deb's.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.mktap import _deploy, _packaging
from tapster.mktap._deploy import DeployError, Deployment
from tapster.mktap.tap2deb import EXIT_MEANINGS, DebOptions, stage_runtime
from tapster.mktap.tap2unit import unit_files

__all__ = ["RpmOptions", "main", "run", "scriptlets"]

PROG = "tap2rpm"
_RPM_VERSION = re.compile(r"^[0-9][A-Za-z0-9._+~]*$")


class RpmOptions(DebOptions):
    synopsis = "Usage: tap2rpm -t FILE [--maintainer M] [--version V] [--release R] [--user NAME] [--wheelhouse DIR]"
    programName = PROG
    longdesc = DebOptions.longdesc.replace(".deb", ".rpm").replace("tapster-<app>_<version>_<arch>",
                                                                   "tapster-<app>-<version>-<release>.<arch>")
    optParameters = [["release", None, "1", "The package's release."]]


def scriptlets(deployment: Deployment, units: Sequence[str], user: str | None) -> dict[str, str]:
    app = deployment.name
    names = " ".join(units)
    conf = f"/etc/{app}/{deployment.filename}"
    pre = ""
    if user:
        pre = (f"getent group {user} >/dev/null || groupadd -r {user}\n"
               f"getent passwd {user} >/dev/null || useradd -r -g {user} -d /var/lib/{app} -M "
               f"-s /sbin/nologin -c 'tapster application {app}' {user}\nexit 0\n")
    post = ""
    if user:
        post += f"mkdir -p /var/lib/{app}\nchown {user}:{user} /var/lib/{app}\nchmod 0750 /var/lib/{app}\n"
        post += f"chgrp {user} {conf} && chmod 0640 {conf} || :\n"
    post += (f"if [ $1 -eq 1 ] && [ -d /run/systemd/system ]; then\n"
             f"    systemctl daemon-reload >/dev/null 2>&1 || :\n"
             f"    systemctl enable --now {names} >/dev/null 2>&1 || :\nfi\n")
    preun = (f"if [ $1 -eq 0 ] && [ -d /run/systemd/system ]; then\n"
             f"    systemctl --no-reload disable --now {names} >/dev/null 2>&1 || :\nfi\n")
    postun = (f"if [ -d /run/systemd/system ]; then\n    systemctl daemon-reload >/dev/null 2>&1 || :\n"
              f"    if [ $1 -ge 1 ]; then systemctl try-restart {names} >/dev/null 2>&1 || :; fi\nfi\n"
              f"if [ $1 -eq 0 ]; then rm -rf /opt/{app}; fi\n")
    return {"pre": pre, "post": post, "preun": preun, "postun": postun}


def _spec(opts: Any, deployment: Deployment, stage: str, arch: str, user: str | None, units: Sequence[str],
          python_version: tuple[int, int]) -> str:
    app = deployment.name
    description = " ".join((opts["description"] or f"tapster application {app}").split())
    ports = ", ".join(p.description for p in deployment.ports) or "no ports"
    lines = [
        f"Name: {deployment.package}",
        f"Version: {opts['version']}",
        f"Release: {opts['release']}",
        f"Summary: {description[:70]}",
        "License: see the distributions in the venv",
        f"Packager: {opts['maintainer']}",
        f"BuildArch: {arch}",
        "AutoReqProv: no",
        f"Requires: python(abi) = {python_version[0]}.{python_version[1]}",
        "%global debug_package %{nil}",
        "%global __os_install_post %{nil}",
        "%global _build_id_links none",
        "",
        "%description",
        f"The application {deployment.filename} ({deployment.format}) run by twistd as the systemd",
        f"service {deployment.package}.service, listening on {ports}.",
        "",
        "%install",
        f"cp -a {stage}/. %{{buildroot}}/",
        "",
    ]
    for name, body in scriptlets(deployment, units, user).items():
        if body:
            lines += [f"%{name}", body]
    lines += [
        "%files",
        "%defattr(-,root,root,-)",
        f"%dir /etc/{app}",
        f"%config(noreplace) /etc/{app}/{deployment.filename}",
        *(f"/usr/lib/systemd/system/{u}" for u in units),
        f"/opt/{app}",
        "",
    ]
    return "\n".join(lines)


def build(opts: Any) -> str:
    from tapster.mktap.tap2deb import check_package_options

    check_package_options(opts)
    if not _RPM_VERSION.match(opts["version"]) or not _RPM_VERSION.match(str(opts["release"])):
        raise usage.UsageError("--version and --release may hold letters, digits, . _ + ~ only (no -)")
    if shutil.which("rpmbuild") is None:
        raise DeployError("rpmbuild is not installed (apt-get install rpm, or dnf install rpm-build)")
    deployment = _deploy.read_deployment(opts["tapfile"], opts["passphrase-file"])
    app = deployment.name
    files = unit_files(opts, deployment, f"/opt/{app}", PROG, default_user=app)
    service = next(iter(files.values()))
    user = None if "DynamicUser=yes" in service else next(
        (line.split("=", 1)[1] for line in service.splitlines() if line.startswith("User=")), None)
    python = opts["python"] or _packaging.default_python()
    version = _packaging.python_version(python)
    with tempfile.TemporaryDirectory(prefix="tap2rpm-") as top:
        stage = os.path.join(top, "stage")
        os.makedirs(stage)
        native = stage_runtime(opts, deployment, stage, python, compile=True)
        arch = os.uname().machine if native else "noarch"
        conf = f"/etc/{app}/{deployment.filename}"
        os.makedirs(os.path.dirname(stage + conf))
        shutil.copyfile(deployment.source, stage + conf)
        unitdir = os.path.join(stage, "usr/lib/systemd/system")
        os.makedirs(unitdir)
        for name, text in files.items():
            with open(os.path.join(unitdir, name), "w") as f:
                f.write(text)
        spec = os.path.join(top, f"{deployment.package}.spec")
        with open(spec, "w") as f:
            f.write(_spec(opts, deployment, stage, arch, user, list(files), version))
        done = subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}/rpm",
                               "--define", "_binary_payload w2.xzdio", spec],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise DeployError(f"rpmbuild failed: {(lines or ['no output'])[-1]}")
        built = glob.glob(os.path.join(top, "rpm", "RPMS", "*", "*.rpm"))
        if len(built) != 1:
            raise DeployError(f"rpmbuild left {len(built)} packages, expected one")
        target = os.path.join(opts["output-dir"], os.path.basename(built[0]))
        fd, partial = tempfile.mkstemp(dir=opts["output-dir"], prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(built[0], partial)
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return f"wrote {target} ({arch}; {', '.join(n for n, _ in deployment.distributions)} in /opt/{app})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run tap2rpm with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return _deploy.run_command(PROG, RpmOptions(), build, argv)


def run() -> None:
    """Console-script entry point."""
    _deploy.run_exit(main)


__all__ += ["EXIT_MEANINGS"]
