"""``tap2k8s`` and ``tap2oci``: Kubernetes manifests and a Containerfile for an application file.

::

    tap2oci -t qotd.yaml > Containerfile          # slim Python base, non-root, exec-form CMD
    tap2oci -t qotd.yaml --context qotd-image/    # the whole build context: podman build qotd-image/
    tap2k8s -t qotd.yaml --image registry/qotd:1.0 --replicas 3 > qotd.k8s.yaml

The container runs ``twistd -n --pidfile= -o --log-format json --health
tcp:PORT -f /etc/<app>/<file>``: stateless (``-o``: replicas keep no
shutdown file), JSON logs on stdout, and health on ``--health`` (default
``tcp:9100``) for the probes (``/readyz`` readiness, ``/healthz`` liveness).
The manifests are a Deployment, a Service per listening TCP port, the
application file as a ConfigMap, a PodDisruptionBudget when ``--replicas`` >
1, and for an encrypted file a Secret holding the passphrase, mounted as a
file and read with ``--passphrase-file``. A port below 1024 is refused
(a non-root container cannot bind it) unless ``--allow-low-ports`` sets the
pod's ``net.ipv4.ip_unprivileged_port_start`` sysctl to 0.
"""

from __future__ import annotations

import base64
import math
import sys
from collections.abc import Sequence
from typing import Any

from tapster.core import usage
from tapster.core.terminal import ExitStatus, exit_status_help
from tapster.mktap import _deploy
from tapster.mktap._deploy import DeployError, Deployment

__all__ = ["K8sOptions", "OciOptions", "main", "main_oci", "run", "run_oci", "manifests", "containerfile"]

EXIT_MEANINGS = {
    ExitStatus.OK: "written",
    ExitStatus.ERROR: "the application could not be read, or cannot run in a container as asked; nothing written",
    ExitStatus.USAGE: "bad command line",
}
_UID = 10001
_BASE = "python:{major}.{minor}-slim"


class OciOptions(usage.Options):
    synopsis = "Usage: tap2oci -t FILE [-o Containerfile] [--health tcp:9100]"
    programName = "tap2oci"
    longdesc = "Writes a Containerfile running the application FILE with twistd.\n\n" + exit_status_help(EXIT_MEANINGS)
    optParameters = [
        *_deploy.common_parameters,
        ["output", "o", None, "Write to FILE (atomically) instead of printing."],
        ["base", None, None, "The base image (default python:<this python>-slim)."],
        ["context", None, None, "Write a whole build context to the new directory DIR: the Containerfile, the "
                                "application file and wheels/ (then: podman build DIR)."],
        ["wheelhouse", "w", None, "With --context: take the wheels from DIR (offline) instead of building them."],
    ]
    optFlags = [*_deploy.common_flags, ["allow-low-ports", None, "Allow ports below 1024 (see the module doc)."]]

    def postOptions(self) -> None:
        if self["health"] is None:
            self["health"] = "tcp:9100"
        self["stateless"] = True
        if self.get("context") and self.get("output"):
            raise usage.UsageError("give --context DIR (a whole build context) or -o FILE (the Containerfile), "
                                   "not both")
        if self.get("wheelhouse") and not self.get("context"):
            raise usage.UsageError("--wheelhouse is for --context: the wheels go into the build context")


class K8sOptions(OciOptions):
    synopsis = "Usage: tap2k8s -t FILE [--image IMAGE] [--replicas N] [-o FILE]"
    programName = "tap2k8s"
    longdesc = ("Writes Kubernetes manifests (Deployment, Services, ConfigMap, Secret, PodDisruptionBudget) running "
                "the application FILE.\n\n" + exit_status_help(EXIT_MEANINGS))
    optParameters = [
        ["image", None, None, "The container image (default tapster-<app>:latest, built from tap2oci's file)."],
        ["replicas", None, "1", "Number of pods."],
        ["namespace", None, None, "metadata.namespace of every object."],
        ["cpu", None, "100m", "CPU request."],
        ["memory", None, "128Mi", "Memory request (and limit)."],
    ]

    def postOptions(self) -> None:
        if self.get("context") or self.get("wheelhouse"):
            raise usage.UsageError("--context and --wheelhouse are tap2oci's: the image is built from its context")
        super().postOptions()


def _args(deployment: Deployment, opts: Any) -> list[str]:
    argv = ["twistd", "-n", "--pidfile=", "-o", "--log-format", "json", "--health", opts["health"]]
    if _deploy.seconds(opts, "drain-time"):
        argv += ["--drain-time", str(opts["drain-time"])]
    if _deploy.seconds(opts, "shutdown-timeout") != 10:
        argv += ["--shutdown-timeout", str(opts["shutdown-timeout"])]
    if deployment.encrypted:
        argv += ["--passphrase-file", f"/run/secrets/{deployment.name}/passphrase"]
    return [*argv, "-f", f"/etc/{deployment.name}/{deployment.filename}"]


def _read(opts: Any) -> tuple[Deployment, int]:
    deployment = _deploy.read_deployment(opts["tapfile"], opts["passphrase-file"])
    health = _deploy.check_health(opts)
    if health is None:
        raise usage.UsageError("--health must be a tcp endpoint here: the probes and HEALTHCHECK use it")
    low = deployment.privileged_ports
    if low and not opts["allow-low-ports"]:
        raise DeployError(
            f"{deployment.source}: {low[0].service} listens on port {low[0].number} (below 1024), which the "
            "container's non-root user cannot bind: use a port from 1024 up (a Service can still expose 80), "
            "or --allow-low-ports"
        )
    if any(p.path for p in deployment.ports):
        raise DeployError(f"{deployment.source} listens on a UNIX socket, which a Service cannot expose")
    return deployment, health


def containerfile(deployment: Deployment, opts: Any, health: int) -> str:
    app = deployment.name
    base = opts["base"] or _BASE.format(major=sys.version_info[0], minor=sys.version_info[1])
    requirements = " ".join(f"{n}=={v}" for n, v in deployment.distributions)
    ports = " ".join(f"{p.number}/udp" if p.kind == "udp" else str(p.number) for p in deployment.numbered_ports)
    lines = [
        f"# Containerfile for {deployment.filename}, generated by tap2oci. Build context: this file, "
        f"{deployment.filename},",
        f"# and wheels/ holding the wheels of {requirements} and their dependencies",
        f"# (pip wheel -w wheels {requirements}). The container is stateless: twistd runs with -o.",
        f"FROM {base}",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        "COPY wheels/ /tmp/wheels/",
        f"RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels {requirements} \\",
        "    && rm -rf /tmp/wheels \\",
        f"    && useradd --system --uid {_UID} --user-group --home-dir /var/lib/{app} --create-home {app}",
        f"COPY --chown=root:root --chmod=0644 {deployment.filename} /etc/{app}/{deployment.filename}",
        f"WORKDIR /var/lib/{app}",
        f"USER {_UID}:{_UID}",
        f"EXPOSE {ports} {health}".replace("  ", " "),
        "STOPSIGNAL SIGTERM",
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD "
        f'["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:{health}/healthz\', '
        'timeout=2)"]',
        "CMD " + _json(_args(deployment, opts)),
        "",
    ]
    return "\n".join(lines)


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def manifests(deployment: Deployment, opts: Any, health: int) -> str:
    import yaml

    app = deployment.name
    try:
        replicas = int(opts["replicas"])
        if replicas < 1:
            raise ValueError
    except ValueError:
        raise usage.UsageError(f"--replicas must be a whole number from 1 up, not {opts['replicas']!r}") from None
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "tap2k8s"}

    def meta(name: str) -> dict[str, Any]:
        m: dict[str, Any] = {"name": name, "labels": dict(labels)}
        if opts["namespace"]:
            m["namespace"] = opts["namespace"]
        return m

    with open(deployment.source, "rb") as f:
        data = f.read()
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{app}-application")}
    try:
        config["data"] = {deployment.filename: data.decode("utf-8")}
    except UnicodeDecodeError:
        config["binaryData"] = {deployment.filename: base64.b64encode(data).decode()}
    docs: list[dict[str, Any]] = [config]
    volumes: list[dict[str, Any]] = [{"name": "application", "configMap": {"name": f"{app}-application"}}]
    mounts: list[dict[str, Any]] = [{"name": "application", "mountPath": f"/etc/{app}", "readOnly": True}]
    if deployment.encrypted:
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta(f"{app}-passphrase"), "type": "Opaque",
                     "stringData": {"passphrase": "REPLACE-WITH-THE-PASSPHRASE"}})
        volumes.append({"name": "passphrase", "secret": {"secretName": f"{app}-passphrase", "defaultMode": 0o400}})
        mounts.append({"name": "passphrase", "mountPath": f"/run/secrets/{app}", "readOnly": True})
    volumes.append({"name": "state", "emptyDir": {}})
    mounts.append({"name": "state", "mountPath": f"/var/lib/{app}"})
    grace = math.ceil(_deploy.seconds(opts, "drain-time") + _deploy.seconds(opts, "shutdown-timeout")) + 10
    ports = [{"name": p.name, "containerPort": p.number, "protocol": p.protocol} for p in deployment.numbered_ports]
    ports.append({"name": "health", "containerPort": health, "protocol": "TCP"})
    security: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": _UID, "runAsGroup": _UID, "fsGroup": _UID,
                                "seccompProfile": {"type": "RuntimeDefault"}}
    if deployment.privileged_ports:
        security["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    probe = {"httpGet": {"port": "health"}, "periodSeconds": 10, "timeoutSeconds": 3}
    container = {
        "name": app,
        "image": opts["image"] or f"tapster-{app}:latest",
        "args": _args(deployment, opts),
        "ports": ports,
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "health"}, "failureThreshold": 1},
        "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "health"}, "failureThreshold": 3},
        "startupProbe": {**probe, "httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 2,
                         "failureThreshold": 30},
        "resources": {"requests": {"cpu": opts["cpu"], "memory": opts["memory"]},
                      "limits": {"memory": opts["memory"]}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    docs.insert(0, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(app),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"terminationGracePeriodSeconds": grace, "securityContext": security,
                         "containers": [container], "volumes": volumes},
            },
        },
    })
    for p in deployment.numbered_ports:
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": meta(f"{app}-{p.name}"),
                     "spec": {"selector": {"app.kubernetes.io/name": app},
                              "ports": [{"name": p.name, "port": p.number, "targetPort": p.name,
                                         "protocol": p.protocol}]}})
    if replicas > 1:
        docs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(app),
                     "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": app}}}})
    head = (f"# Generated by tap2k8s from {deployment.filename}: stateless replicas (twistd -o keeps no shutdown "
            f"file),\n# JSON logs on stdout, probes on {opts['health']}, terminationGracePeriodSeconds {grace} "
            "(drain + shutdown timeout + 10).\n")
    return head + yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


def _emit(opts: Any, text: str) -> str:
    if opts["output"] is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return ""
    _deploy.write_text_atomically(opts["output"], text)
    return f"wrote {opts['output']}"


def _oci(opts: Any) -> str:
    deployment, health = _read(opts)
    text = containerfile(deployment, opts, health)
    if opts["context"]:
        return _context(opts, deployment, text)
    return _emit(opts, text)


def _context(opts: Any, deployment: Deployment, text: str) -> str:
    """Containerfile, application file and wheels/ in a new directory, all or nothing (built aside, renamed)."""
    import os
    import shutil
    import tempfile

    from tapster.mktap import _packaging

    target = os.path.abspath(opts["context"])
    if os.path.lexists(target):
        raise DeployError(f"--context {opts['context']}: it exists; give a new directory (nothing was written)")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise DeployError(f"--context {opts['context']}: no directory {parent}")
    scratch = tempfile.mkdtemp(prefix=".tap2oci-", dir=parent)
    try:
        wheels = os.path.join(scratch, "wheels")
        if opts["wheelhouse"]:
            if not os.path.isdir(opts["wheelhouse"]):
                raise DeployError(f"--wheelhouse {opts['wheelhouse']}: no such directory")
            shutil.copytree(opts["wheelhouse"], wheels)
        else:
            os.mkdir(wheels)
            _packaging.build_wheelhouse(deployment.distributions, wheels)
        shutil.copyfile(deployment.source, os.path.join(scratch, deployment.filename))
        with open(os.path.join(scratch, "Containerfile"), "w") as f:
            f.write(text)
        os.chmod(scratch, 0o755)
        os.rename(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return f"wrote {opts['context']}/ (Containerfile, {deployment.filename}, wheels/): podman build {opts['context']}"


def _k8s(opts: Any) -> str:
    deployment, health = _read(opts)
    return _emit(opts, manifests(deployment, opts, health))


def main(argv: Sequence[str] | None = None) -> int:
    """Run tap2k8s with ``argv``; returns the exit status."""
    return _deploy.run_command("tap2k8s", K8sOptions(), _k8s, argv)


def main_oci(argv: Sequence[str] | None = None) -> int:
    """Run tap2oci with ``argv``; returns the exit status."""
    return _deploy.run_command("tap2oci", OciOptions(), _oci, argv)


def run() -> None:
    _deploy.run_exit(main)


def run_oci() -> None:
    _deploy.run_exit(main_oci)


__all__ += ["EXIT_MEANINGS"]
