"""The install layout: one import package, ``tapster``, and nothing generic at the top of site-packages."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import sysconfig
from pathlib import PurePosixPath

import tapster.core

#: What a wheel of tapster may put at the top of site-packages (besides its own metadata).
_TOP_LEVEL = {"tapster"}


def _installed() -> importlib.metadata.Distribution:
    """The distribution pip installed into this environment (not the egg-info a build leaves in the repo)."""
    found = list(importlib.metadata.distributions(name="tapster", path=[sysconfig.get_paths()["purelib"]]))
    assert len(found) == 1, "tapster is not installed in this environment: pip install '.[test]'"
    return found[0]


def _installed_files() -> list[PurePosixPath]:
    files = _installed().files
    assert files, "tapster is installed without a RECORD: install it with pip"
    return [PurePosixPath(str(f)) for f in files]


def test_the_wheel_installs_only_the_tapster_package() -> None:
    """The RECORD pip wrote is the wheel's file list: nothing named core, plugins, mktap or twistd at the top."""
    tops: set[str] = set()
    for path in _installed_files():
        first = path.parts[0]
        if first == ".." or first.endswith(".dist-info"):  # console scripts in bin/, metadata
            continue
        tops.add(first)
    assert tops == _TOP_LEVEL, f"installed at the top of site-packages: {sorted(tops - _TOP_LEVEL)}"
    packages = {p.parts[1] for p in _installed_files() if p.parts[0] == "tapster" and len(p.parts) > 2}
    assert {"core", "mktap", "twistd", "plugins"} <= packages
    assert not any(p.parts[0] == "tapster" and p.name == "__init__.py" and len(p.parts) == 2
                   for p in _installed_files()), "tapster is a namespace package: no tapster/__init__.py"


def test_typed_packages_ship_py_typed() -> None:
    names = {str(p) for p in _installed_files()}
    assert {"tapster/core/py.typed", "tapster/twistd/py.typed"} <= names


def test_the_version_comes_from_one_place() -> None:
    assert _installed().version == tapster.core.__version__


def test_console_scripts_point_into_tapster() -> None:
    scripts = {ep.name: ep.value for ep in _installed().entry_points
               if ep.group == "console_scripts"}
    assert scripts == {
        "mktap": "tapster.mktap.cli:run",
        "twistd": "tapster.twistd.cli:run",
        "tapconvert": "tapster.mktap.tapconvert:run",
        "tap2unit": "tapster.mktap.tap2unit:run",
        "tap2deb": "tapster.mktap.tap2deb:run",
        "tap2rpm": "tapster.mktap.tap2rpm:run",
        "tap2oci": "tapster.mktap.tap2k8s:run_oci",
        "tap2k8s": "tapster.mktap.tap2k8s:run",
    }


def test_built_in_plugins_register_like_any_other() -> None:
    plugins = {ep.name: ep.value for ep in _installed().entry_points
               if ep.group == "mktap.plugins"}
    assert plugins == {name: f"tapster.plugins.{name}" for name in ("qotd", "echo", "telnet", "manhole", "web")}


def test_building_a_plugin_in_twistd_never_imports_mktap() -> None:
    """twistd qotd --port ... builds through tapster.core, the code mktap uses, without importing mktap."""
    code = (
        "import sys\n"
        "from tapster.twistd.loading import build_plugin\n"
        "app = build_plugin('qotd', ['--port', 'tcp:0:interface=127.0.0.1'])\n"
        "print(app.name, sorted(m for m in sys.modules if m.startswith('tapster.mktap')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "qotd []"
