"""Architecture rules, checked on the source of every module that installs under ``tapster``.

* A module may not import a private name (``_x``, or anything under a
  ``_private`` module) of *another* package of tapster: where it needs one, a
  public function is missing. Inside one package (``tapster.core`` importing
  ``tapster.core._reactor``) private parts are what packages are for.
* Which package may import which: twistd never imports mktap (nor mktap
  twistd); plugins import neither; core imports none of the three.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: source folder → the package it installs as
FOLDERS = {"core": "tapster.core", "mktap": "tapster.mktap", "twistd": "tapster.twistd", "plugins": "tapster.plugins"}
#: package → the tapster packages it may not import at all
FORBIDDEN = {
    "core": {"mktap", "twistd", "plugins"},
    "mktap": {"twistd", "plugins"},
    "twistd": {"mktap", "plugins"},
    "plugins": {"mktap", "twistd"},
}


@dataclass(frozen=True)
class Violation:
    where: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.what}"


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(REPO).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _package_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tapster" else None


def _private_part(name: str) -> str | None:
    """The first ``_private`` component after ``tapster.<package>``, if any."""
    for part in name.split(".")[2:]:
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return part
    return None


def violations(source: str, importer: str, is_package: bool = False, where: str = "<string>") -> list[Violation]:
    """Every broken rule in ``source``, the text of module ``importer``."""
    own = _package_of(importer)
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[tuple[str, list[str]]] = []
        if isinstance(node, ast.Import):
            targets = [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, is_package, node.module, node.level)
            targets = [(base, [alias.name for alias in node.names])]
        for name, names in targets:
            other = _package_of(name)
            if other is None or other == own:
                continue
            if own is not None and other in FORBIDDEN.get(own, set()):
                found.append(Violation(where, node.lineno, f"tapster.{own} may not import tapster.{other} ({name})"))
                continue
            private = _private_part(name)
            if private is not None:
                found.append(Violation(where, node.lineno, f"imports the private module {name} of tapster.{other}"))
            for item in names:
                if item.startswith("_") and not (item.startswith("__") and item.endswith("__")):
                    found.append(Violation(where, node.lineno, f"imports the private name {item} from {name}"))
                elif _private_part(f"{name}.{item}") is not None and private is None:
                    found.append(Violation(where, node.lineno, f"imports the private module {name}.{item}"))
    return found


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_the_source_folders_are_found() -> None:
    names = {module_name(p) for p in _sources()}
    assert {"tapster.core.service", "tapster.core._reactor.loop", "tapster.twistd.cli", "tapster.plugins.qotd"} <= names


def test_no_module_reaches_into_another_packages_private_names() -> None:
    found = [v for path in _sources()
             for v in violations(path.read_text(), module_name(path), path.name == "__init__.py",
                                 str(path.relative_to(REPO)))]
    assert not found, "\n".join(map(str, found))


@pytest.mark.parametrize(
    "importer, source, expected",
    [
        ("tapster.mktap.cli", "from tapster.core._persist.yaml_format import attach", "private module"),
        ("tapster.mktap.cli", "from tapster.core._assembly import attach", "private module"),
        ("tapster.plugins._console.listen", "from tapster.core._reactor.ports import bind_inet", "private module"),
        ("tapster.twistd.cli", "from tapster.core import _builtin_hooks", "private name"),
        ("tapster.twistd.cli", "from tapster.core.terminal import _secret", "private name"),
        ("tapster.twistd.cli", "import tapster.core._persist.walker", "private module"),
        ("tapster.twistd.loading", "from tapster.mktap.cli import main", "may not import tapster.mktap"),
        ("tapster.plugins.qotd", "import tapster.twistd.runner", "may not import tapster.twistd"),
        ("tapster.core.service", "from tapster.plugins import qotd", "may not import tapster.plugins"),
    ],
)
def test_the_check_catches_each_kind_of_reach_in(importer: str, source: str, expected: str) -> None:
    found = violations(source, importer)
    assert len(found) == 1 and expected in found[0].what, found


@pytest.mark.parametrize(
    "importer, source",
    [
        ("tapster.core.persist", "from tapster.core._persist import crypto"),  # inside its own package
        ("tapster.plugins.telnet", "from tapster.plugins._console.options import ConsoleOptions"),
        ("tapster.plugins._console.service", "from . import ssh"),
        ("tapster.mktap.cli", "from tapster.core.plugin import attach, make_service"),
        ("tapster.twistd.runner", "from tapster.core.reactor import StopSignals"),
        ("tapster.mktap.cli", "import tapster.core.__version__"),
    ],
)
def test_public_and_same_package_imports_pass(importer: str, source: str) -> None:
    assert violations(source, importer) == []
