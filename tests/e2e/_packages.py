"""Shared by the tap2deb/tap2rpm/tap2k8s end-to-end tests: one wheelhouse per test session.

The wheels are built once from what is installed here (tapster from its source tree,
its dependencies at the installed versions from pip's cache or the configured index),
exactly as ``tap2deb`` does without ``--wheelhouse``; every build then runs offline
from them (``--wheelhouse``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tapster.mktap import _deploy, _packaging
from tests.e2e._e2e import command

MAINTAINER = "Ann Example <ann@tapster.dev>"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheelhouse")
    try:
        _packaging.build_wheelhouse([("tapster", __import__("importlib.metadata").metadata.version("tapster"))],
                                    str(directory))
    except _deploy.DeployError as e:
        pytest.skip(f"cannot build the wheels of tapster and its dependencies here: {e}")
    return directory


def mktap(directory: Path, *argv: str) -> None:
    subprocess.run([command("mktap"), *argv], cwd=directory, check=True, capture_output=True, text=True, timeout=60)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
