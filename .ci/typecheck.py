#!/usr/bin/env python3
"""Type-check tapster with mypy, under the module names it installs as.

Usage, from anywhere, with the Python whose environment has mypy (``.[test]``)::

    .venv/bin/python .ci/typecheck.py            # what .ci/run does
    .venv/bin/python .ci/typecheck.py --pretty   # extra arguments go to mypy

Which modules are strict and which are checked with mypy's defaults is configured in
pyproject.toml (``[tool.mypy]``); this script only decides *what* mypy reads.

Why a tree of symlinks instead of pointing mypy at the folders: ``core/`` installs as
``tapster.core`` (setuptools ``package-dir``), and so on for mktap/, twistd/ and plugins/,
but mypy names a module after its folders: given ``core/`` it checks a package called
``core``, and ``from tapster.core import service`` inside twistd/ resolves to nothing (or
to an installed copy). The alternatives are worse: checking the installed copy means
reinstalling before every check and errors that name site-packages files; an editable
install makes the check depend on how setuptools implements editable installs (import
hooks mypy does not follow). So this script makes a throwaway directory holding
``tapster/core -> <repo>/core`` (and mktap, twistd, plugins), hands mypy those folders,
so every file is checked under its real module name, and rewrites the paths in mypy's
output back to the repository's (``core/service.py:12: error: ...``).

The folders are passed as files, not with ``-p tapster.core``: a ``-p`` lookup prefers a
copy of tapster installed in the same environment (it ships py.typed) over the tree, and
would then check whatever was installed last instead of the working tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "mktap", "twistd", "plugins")  # tapster.<name> is the folder <name>/


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="tapster-typecheck-") as tmp:
        tree = Path(tmp)
        (tree / "tapster").mkdir()  # no __init__.py: tapster is a namespace package, as installed
        for name in PACKAGES:
            (tree / "tapster" / name).symlink_to(REPO / name, target_is_directory=True)
        env = dict(os.environ, MYPYPATH=str(tree))
        command = [
            sys.executable, "-m", "mypy",
            "--config-file", str(REPO / "pyproject.toml"),
            "--explicit-package-bases",  # module names count from MYPYPATH: tapster.core.service
            # No incremental cache: its entries name this run's temporary paths, and mypy
            # replays cached errors with them. A full check takes a few seconds.
            "--cache-dir", os.devnull,
            *argv,
            *(str(tree / "tapster" / name) for name in PACKAGES),
            # Never run, only checked: tapster's classes provide tapster.core.interfaces.
            str(REPO / ".ci" / "interfaces_check.py"),
        ]
        prefixes = [(f"{tree}/tapster/{name}/", f"{name}/") for name in PACKAGES]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            for prefix, replacement in prefixes:
                line = line.replace(prefix, replacement)
            sys.stdout.write(line)
        return process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
