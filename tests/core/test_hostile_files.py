"""Hostile application files, generated here: each promise of the safe formats and of loading at all.

* A file named for a safe format is loaded by that format only (issue 9, item 2).
* Only regular files are read, and only up to a size limit (item 5).
* A name from a file never becomes a path outside the run directory (item 6).
* Interrupted saves leave no temporaries behind for good (item 8).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto, files
from tapster.core.errors import PersistError
from tapster.core.service import Application, Service

PASSPHRASE = b"correct horse"


class _Marker:
    """Unpickling this runs ``open(path, 'w')``: the proof that a code-running loader was used."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.path, "w"))


def code_running_payloads(marker: Path) -> dict[str, bytes]:
    """Bytes that run code (and create ``marker``) if loaded by pickle or as Python source."""
    return {
        "pickle": pickle.dumps(_Marker(marker), protocol=4),
        "versioned pickle": pickle.dumps(("tapster-application", 1), protocol=4) + pickle.dumps(_Marker(marker)),
        "source": (f"# tapster application source, format 1\nopen({str(marker)!r}, 'w')\n"
                   "from tapster.core.service import Application\napplication = Application('x')\n").encode(),
        "headerless source": f"open({str(marker)!r}, 'w')\napplication = None\n".encode(),
    }


@pytest.mark.parametrize("extension", ["tax", "yaml"])
@pytest.mark.parametrize("payload", ["pickle", "versioned pickle", "source", "headerless source"])
def test_a_safe_name_never_loads_code(tmp_path: Path, extension: str, payload: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / f"app.{extension}"
    path.write_bytes(code_running_payloads(marker)[payload])
    with pytest.raises(PersistError) as info:
        persist.load(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("extension, inner", [("etax", "pickle"), ("etax", "source"), ("eyaml", "pickle"),
                                              ("eyaml", "source")])
def test_an_encrypted_safe_name_is_checked_against_its_header_before_decrypting(tmp_path: Path, extension: str,
                                                                               inner: str) -> None:
    marker = tmp_path / "PWNED"
    payload = code_running_payloads(marker)["pickle" if inner == "pickle" else "source"]
    path = tmp_path / f"app.{extension}"
    path.write_bytes(crypto.encrypt(payload, PASSPHRASE, inner))
    with pytest.raises(PersistError, match=f"named as a .* file, but its encryption header says {inner}"):
        persist.load(str(path), passphrase=b"not even the right one")  # refused before any key is derived
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "source"])
def test_forcing_a_code_running_format_on_a_safe_name_is_refused(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "app.tax"
    path.write_bytes(code_running_payloads(marker)[kind])
    with pytest.raises(PersistError, match="a file named for a safe format is loaded by that format only"):
        persist.load(str(path), kind=kind)
    assert not marker.exists()


def test_an_unencrypted_file_named_as_encrypted_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.etap"
    path.write_bytes(persist.dumps(Application("x"), "pickle"))
    with pytest.raises(PersistError, match="named as an encrypted file but is not encrypted"):
        persist.load(str(path))


def test_names_that_promise_nothing_are_recognised_by_content(tmp_path: Path) -> None:
    path = tmp_path / "app.data"
    path.write_bytes(persist.dumps(Application("plain"), "xml"))
    assert persist.load(str(path)).name == "plain"


# -- what is read ---------------------------------------------------------------------


def test_a_symlink_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "zero.tap"
    path.symlink_to("/dev/zero")
    start = time.monotonic()
    with pytest.raises(PersistError, match="is a character device, not an application file"):
        persist.load(str(path))
    assert time.monotonic() - start < 1
    assert not persist.is_encrypted(str(path)) and persist.runs_code(str(path))


def test_a_fifo_is_refused_and_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / "pipe.tap"
    os.mkfifo(path)
    outcome: list[BaseException] = []

    def attempt() -> None:
        with pytest.raises(PersistError) as raised:
            persist.load(str(path))
        outcome.append(raised.value)

    thread = threading.Thread(target=attempt)
    thread.daemon = True
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "loading a FIFO with no writer blocked"
    assert "is a FIFO" in str(outcome[0])
    assert persist.is_encrypted(str(path)) is False  # and the other readers of heads do not block either


def test_an_oversized_file_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.tap"
    with open(path, "wb") as f:
        f.truncate(files.DEFAULT_MAX_SIZE + 1)  # sparse: costs no disk, would cost the memory if read
    with pytest.raises(PersistError, match=f"more than the {files.DEFAULT_MAX_SIZE} bytes tapster reads "
                                           r"\(set TAPSTER_MAX_FILE_SIZE"):
        persist.load(str(path))


def test_the_size_limit_is_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.tap"
    persist.save(Application("x"), str(path))
    size = path.stat().st_size
    monkeypatch.setenv("TAPSTER_MAX_FILE_SIZE", str(size - 1))
    with pytest.raises(PersistError, match=f"is {size} bytes, more than the {size - 1} bytes"):
        persist.load(str(path))
    monkeypatch.setenv("TAPSTER_MAX_FILE_SIZE", str(size))
    assert persist.load(str(path)).name == "x"
    assert persist.load(str(path), max_size=size).name == "x"
    monkeypatch.setenv("TAPSTER_MAX_FILE_SIZE", "lots")
    with pytest.raises(PersistError, match="is not a number of bytes"):
        persist.load(str(path))


# -- names that would be paths ----------------------------------------------------------


HOSTILE_NAMES = ["../../escaped", "/etc/cron.d/x", "sub/dir", ".hidden", "..", "a\\b", "bell\x07", "x" * 200,
                 "\x1b[31mred"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("kind", ["xml", "pickle"])
def test_a_name_that_is_a_path_is_refused_at_load(tmp_path: Path, name: str, kind: str) -> None:
    app = Application("placeholder")
    app.name = name  # what a stranger's file can say
    path = tmp_path / f"app.{'tax' if kind == 'xml' else 'tap'}"
    path.write_bytes(persist.dumps(app, kind))
    with pytest.raises(PersistError) as info:
        persist.load(str(path))
    assert "application name" in str(info.value) and "\n" not in str(info.value)
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)  # shown escaped, never raw


@pytest.mark.parametrize("name", ["../../escaped", "sub/dir", ".hidden"])
def test_a_yaml_recipe_with_a_path_for_a_name_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(f"name: {name!r}\nservices: []\n")
    with pytest.raises(PersistError, match="application name"):
        persist.load(str(path))


@pytest.mark.parametrize("tag", ["../up", "a/b", ".x"])
def test_a_tag_that_is_a_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PersistError, match="cannot save the application: the tag"):
        persist.saveApplication(Application("app"), tag)
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "up.tap").exists()


def test_a_path_for_a_name_is_refused_when_saving_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("fine")
    app.name = "../outside"  # changed at run time, from the console
    with pytest.raises(PersistError, match="holds a path separator"):
        persist.saveApplication(app, "shutdown")
    assert list(tmp_path.iterdir()) == []


def test_plain_names_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("my-app_2.0 (blue)")
    Service().setServiceParent(app)
    assert persist.saveApplication(app, "shutdown") == "my-app_2.0 (blue)-shutdown.tap"
    assert persist.load("my-app_2.0 (blue)-shutdown.tap").name == "my-app_2.0 (blue)"


# -- interrupted saves --------------------------------------------------------------------

_WRITER = r"""
import fcntl, os, sys, tempfile
directory, name, hold = sys.argv[1], sys.argv[2], sys.argv[3] == "hold"
fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + name + ".", suffix=".tmp")
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"half a file")
print(tmp, flush=True)
if hold:
    sys.stdin.read()   # alive, holding the lock, until the test closes our stdin
os._exit(9)            # dies without cleaning up, as a SIGKILL would leave it
"""


def _temporaries(directory: Path, name: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def _age(path: str, seconds: float = 60) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_next_save_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    target = tmp_path / "app.tap"
    persist.save(Application("v1"), str(target))
    dead = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), "app.tap", "die"],
                          capture_output=True, text=True, check=False).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), "app.tap", "hold"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = alive.stdout.readline().strip()  # type: ignore[union-attr]
        fresh_dead = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), "app.tap", "die"],
                                    capture_output=True, text=True, check=False).stdout.strip()
        for path in (dead, held):
            _age(path)
        assert len(_temporaries(tmp_path, "app.tap")) == 3
        persist.save(Application("v2"), str(target))
        left = _temporaries(tmp_path, "app.tap")
        assert os.path.basename(dead) not in left  # its writer died: removed
        assert os.path.basename(held) in left  # its writer holds the lock: kept
        assert os.path.basename(fresh_dead) in left  # too young to judge: kept for now
    finally:
        alive.communicate("")
    for path in (held, fresh_dead):
        _age(path)
    persist.save(Application("v3"), str(target))
    assert _temporaries(tmp_path, "app.tap") == []
    assert persist.load(str(target)).name == "v3"


_SAVER = r"""
import sys
from tapster.core import persist
from tapster.core.service import Application, Service
app = Application(sys.argv[2])
for i in range(2000):
    s = Service(); s.setName(f"s{i}"); s.payload = "x" * 500; s.setServiceParent(app)
print("ready", flush=True)
while True:
    persist.save(app, sys.argv[1])
"""


def test_kill_during_save_trials_leave_old_or_new_and_no_litter(tmp_path: Path) -> None:
    """Savers killed at random moments: the file is always whole, and the litter is swept up."""
    import random

    target = tmp_path / "app.tap"
    persist.save(Application("original"), str(target))
    rng = random.Random(9)
    for trial in range(12):
        saver = subprocess.Popen([sys.executable, "-c", _SAVER, str(target), f"trial{trial}"],
                                 stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline() == "ready\n"  # type: ignore[union-attr]
        deadline = time.monotonic() + rng.uniform(0.0, 0.3)
        while time.monotonic() < deadline:
            pass
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        assert persist.load(str(target)).name in {"original", *(f"trial{n}" for n in range(trial + 1))}
    for name in _temporaries(tmp_path, "app.tap"):
        _age(str(tmp_path / name))
    persist.save(Application("final"), str(target))
    assert _temporaries(tmp_path, "app.tap") == []
    assert persist.load(str(target)).name == "final"


# -- trees that are not trees ---------------------------------------------------------------

XML_HEAD = "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"


def _app_xml(services: str) -> str:
    return (XML_HEAD + '<instance id="app" module="tapster.core.service" class="Application">'
            f'<attr name="name"><str>a</str></attr><attr name="services"><list>{services}</list></attr>'
            '<attr name="namedServices"><dict /></attr></instance></tapster-application>\n')


@pytest.mark.parametrize("services, why", [
    ("<str>x</str>", "service #1 is a str, not a service"),
    ("<int>1</int>", "service #1 is a int, not a service"),
    ('<instance id="m" module="tapster.core.service" class="MultiService"><attr name="name"><str>m</str></attr>'
     '<attr name="services"><list><ref id="m" /></list></attr><attr name="namedServices"><dict /></attr></instance>',
     "appears twice in the service tree"),
    ('<instance id="s" module="tapster.core.service" class="Service" /><ref id="s" />', "appears twice"),
    ('<instance module="tapster.core.service" class="MultiService"><attr name="services"><dict /></attr></instance>',
     "holds its services in a dict"),
])
def test_a_tree_that_is_not_a_tree_is_refused_at_load(tmp_path: Path, services: str, why: str) -> None:
    path = tmp_path / "bad.tax"
    path.write_text(_app_xml(services))
    with pytest.raises(PersistError, match=why) as info:
        persist.load(str(path))
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_deep_but_proper_tree_loads(tmp_path: Path) -> None:
    from tapster.core.service import MultiService

    app = Application("deep")
    parent: object = app
    for i in range(100):
        child = MultiService()
        child.setName(f"m{i}")
        child.setServiceParent(parent)  # type: ignore[arg-type]
        parent = child
    path = tmp_path / "deep.tap"
    persist.save(app, str(path))
    assert persist.load(str(path)).name == "deep"
