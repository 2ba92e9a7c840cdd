"""Saving and loading applications: round trip, atomic writes, clear load errors, file modes."""

from __future__ import annotations

import io
import os
import pickle
import stat

import pytest

from tapster.core import persist
from tapster.core.errors import PersistError
from tapster.core.service import Application, MultiService, Service


class Unpicklable(Service):
    """A service holding something pickle refuses (a lambda)."""

    def __init__(self) -> None:
        self.callback = lambda: None


def make_app(marker: str = "v1") -> Application:
    app = Application("demo", uid=1000, gid=100)
    inner = MultiService()
    inner.setName("inner")
    inner.setServiceParent(app)
    leaf = Service()
    leaf.setName("leaf")
    leaf.setServiceParent(inner)
    app.marker = marker
    return app


def leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


# -- round trip ------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    path = str(tmp_path / "demo.tap")
    assert persist.save(make_app(), path) == path
    loaded = persist.load(path)
    assert isinstance(loaded, Application)
    assert (loaded.name, loaded.uid, loaded.gid, loaded.marker) == ("demo", 1000, 100, "v1")
    inner = loaded.getServiceNamed("inner")
    assert inner.parent is loaded
    assert inner.getServiceNamed("leaf").parent is inner
    assert loaded.persistStyle == "pickle"
    assert leftovers(tmp_path) == ["demo.tap"]


def test_saved_file_is_a_pickle(tmp_path):
    path = tmp_path / "demo.tap"
    persist.save(make_app(), str(path))
    stream = io.BytesIO(path.read_bytes())
    assert pickle.load(stream) == ("tapster-application", 1)  # the format's version, read before the app
    assert pickle.load(stream).marker == "v1"
    assert stream.read() == b""


def test_save_replaces_an_existing_file(tmp_path):
    path = str(tmp_path / "demo.tap")
    persist.save(make_app("v1"), path)
    persist.save(make_app("v2"), path)
    assert persist.load(path).marker == "v2"
    assert leftovers(tmp_path) == ["demo.tap"]


def test_save_running_application_saves_it_stopped(tmp_path):
    app = make_app()
    app.startService()
    path = str(tmp_path / "demo.tap")
    persist.save(app, path)
    loaded = persist.load(path)
    assert not loaded.running
    assert not loaded.getServiceNamed("inner").getServiceNamed("leaf").running
    assert app.running  # saving does not disturb the live tree


def test_save_application_uses_name_and_tag_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    assert persist.saveApplication(app) == "demo.tap"
    assert persist.saveApplication(app, tag="shutdown") == "demo-shutdown.tap"
    assert leftovers(tmp_path) == ["demo-shutdown.tap", "demo.tap"]


def test_format_for_unknown_kind_is_a_persist_error():
    with pytest.raises(PersistError, match=r"unknown format 'nope'.*pickle"):
        persist.format_for("nope")


def test_format_for_defaults_to_pickle_and_reads_extensions():
    assert persist.format_for().name == "pickle"
    assert persist.format_for(filename="x.tap").name == "pickle"
    assert persist.format_for(filename="x.unknown").name == "pickle"


def test_load_with_explicit_kind(tmp_path):
    path = str(tmp_path / "oddly-named.bin")
    persist.save(make_app(), path, kind="pickle")
    assert persist.load(path, kind="pickle").marker == "v1"
    assert persist.load(path).marker == "v1"  # recognised by content


# -- atomic writes ---------------------------------------------------------------


def test_failed_dump_leaves_old_file_untouched_and_no_temp_file(tmp_path):
    path = tmp_path / "demo.tap"
    persist.save(make_app("old"), str(path))
    before = path.read_bytes()
    app = make_app("new")
    Unpicklable().setServiceParent(app)
    with pytest.raises(PersistError, match="cannot save"):
        persist.save(app, str(path))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["demo.tap"]


def test_failed_dump_creates_no_file(tmp_path):
    app = make_app()
    Unpicklable().setServiceParent(app)
    with pytest.raises(PersistError):
        persist.save(app, str(tmp_path / "new.tap"))
    assert leftovers(tmp_path) == []


def test_failed_rename_leaves_old_file_untouched_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "demo.tap"
    persist.save(make_app("old"), str(path))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PersistError, match=r"cannot write .*demo.tap.*Input/output error"):
        persist.save(make_app("new"), str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["demo.tap"]


def test_failed_write_leaves_old_file_untouched_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "demo.tap"
    persist.save(make_app("old"), str(path))
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(PersistError, match="No space left on device"):
        persist.save(make_app("new"), str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["demo.tap"]


def test_interrupted_save_removes_temp_file_and_propagates(tmp_path, monkeypatch):
    path = tmp_path / "demo.tap"
    persist.save(make_app("old"), str(path))

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        persist.save(make_app("new"), str(path))
    monkeypatch.undo()
    assert persist.load(str(path)).marker == "old"
    assert leftovers(tmp_path) == ["demo.tap"]


def test_save_into_missing_directory_is_a_persist_error(tmp_path):
    with pytest.raises(PersistError, match="nowhere"):
        persist.save(make_app(), str(tmp_path / "nowhere" / "demo.tap"))


def test_atomic_write_writes_exact_bytes(tmp_path):
    path = tmp_path / "blob"
    persist.atomic_write(str(path), b"\x00\x01payload")
    assert path.read_bytes() == b"\x00\x01payload"
    assert leftovers(tmp_path) == ["blob"]


# -- modes -----------------------------------------------------------------------


def test_new_file_is_private(tmp_path):
    path = tmp_path / "demo.tap"
    old_umask = os.umask(0)
    try:
        persist.save(make_app(), str(path))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "demo.tap"
    persist.save(make_app("v1"), str(path))
    os.chmod(path, 0o640)
    persist.save(make_app("v2"), str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert persist.load(str(path)).marker == "v2"


# -- load errors -----------------------------------------------------------------


def test_load_missing_file(tmp_path):
    path = str(tmp_path / "absent.tap")
    with pytest.raises(PersistError, match=r"no such file: .*absent\.tap"):
        persist.load(path)


def test_load_empty_file(tmp_path):
    path = tmp_path / "empty.tap"
    path.write_bytes(b"")
    with pytest.raises(PersistError, match=r"empty\.tap is empty"):
        persist.load(str(path))


def test_load_directory(tmp_path):
    with pytest.raises(PersistError, match="is a directory"):
        persist.load(str(tmp_path))


def test_load_garbage_with_unknown_extension(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_bytes(b"this is not an application\n")
    with pytest.raises(PersistError, match=r"junk\.txt is not a saved application in any known format"):
        persist.load(str(path))


def test_load_garbage_with_tap_extension(tmp_path):
    path = tmp_path / "junk.tap"
    path.write_bytes(b"\x00\xffgarbage that is no pickle")
    with pytest.raises(PersistError, match=r"junk\.tap is not a readable pickled application"):
        persist.load(str(path))


def test_load_truncated_pickle(tmp_path):
    good = tmp_path / "good.tap"
    persist.save(make_app(), str(good))
    bad = tmp_path / "cut.tap"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(PersistError, match=r"cut\.tap is not a readable pickled application"):
        persist.load(str(bad))


def test_load_pickle_of_a_non_service(tmp_path):
    path = tmp_path / "dict.tap"
    path.write_bytes(pickle.dumps({"not": "a service"}, protocol=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(PersistError, match=r"dict\.tap holds a dict, not an application"):
        persist.load(str(path))


def test_load_accepts_any_service_root(tmp_path):
    path = tmp_path / "svc.tap"
    path.write_bytes(pickle.dumps(MultiService()))
    assert isinstance(persist.load(str(path)), MultiService)
