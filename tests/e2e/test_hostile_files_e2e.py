"""A stranger's file handed to the real twistd: one clear line, exit status 1, nothing run, nothing written."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.e2e._e2e import assert_one_clean_line, run


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name, flag", [("evil.tax", "-f"), ("evil.yaml", "-f"), ("evil.tax", "-x")])
def test_a_pickle_named_as_a_safe_file_is_refused(tmp_path: Path, name: str, flag: str) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / name).write_bytes(pickle.dumps(_Touch(str(marker))))
    r = run("twistd", "-n", "-o", flag, name, cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1 and name in r.stderr
    assert not marker.exists()


def test_a_name_that_climbs_out_of_the_run_directory_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "app.yaml").write_text("name: ../../escaped\nservices: []\n")
    r = run("twistd", "-n", "-f", "app.yaml", cwd=run_dir)
    assert_one_clean_line(r)
    assert "application name" in r.stderr
    assert sorted(os.listdir(run_dir)) == ["app.yaml"] and sorted(os.listdir(tmp_path)) == ["run"]


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "app.tap")
    r = run("twistd", "-n", "-f", "app.tap", cwd=tmp_path, timeout=20)
    assert_one_clean_line(r)
    assert "is a FIFO" in r.stderr


def test_the_runcode_timer_from_the_issue_never_runs(tmp_path: Path) -> None:
    """The exploit of issue 9, item 1, with the real twistd: refused at load, the string never runs."""
    from tests.core.test_hostile_methods import timer_app

    marker = tmp_path / "PWNED"
    shell = (
        '<instance module="tapster.plugins._console.shell" class="Shell"><attr name="locals"><dict /></attr></instance>'
    )
    (tmp_path / "evil.tax").write_text(timer_app(f'<method name="runcode">{shell}</method>',
                                                 f"<str>open({str(marker)!r}, 'w')</str>"))
    r = run("twistd", "-n", "-o", "-x", "evil.tax", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "Shell is not allowed" in r.stderr
    assert not marker.exists()


def test_a_service_without_its_state_fails_in_one_line_naming_the_file(tmp_path: Path) -> None:
    """A damaged (or hostile) file whose TCPServer lost its arguments: twistd names the file, no traceback."""
    (tmp_path / "broken.tax").write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">"
        '<instance id="app" module="tapster.core.service" class="Application"><attr name="name"><str>a</str></attr>'
        '<attr name="services"><list><instance module="tapster.core.internet" class="TCPServer">'
        '<attr name="parent"><ref id="app" /></attr></instance></list></attr>'
        '<attr name="namedServices"><dict /></attr></instance></tapster-application>\n'
    )
    for args in (["-n", "-o"], ["-o", "--pidfile", "b.pid", "-l", "b.log"]):
        r = run("twistd", *args, "-f", "broken.tax", cwd=tmp_path)
        assert_one_clean_line(r)
        assert r.stderr.startswith("twistd: broken.tax: ") and r.returncode == 1
