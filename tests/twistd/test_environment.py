"""Run directory, chroot paths, process title, privileges resolution, and the diagnostics helpers."""

from __future__ import annotations

import logging
import os
import pstats
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tapster.core.errors import TapsterError
from tapster.twistd import diagnostics, environment
from tapster.twistd.privileges import Ids, resolve_ids, switch_ids

REPO = Path(__file__).resolve().parents[2]


def test_run_directory_with_and_without_chroot() -> None:
    assert environment.run_directory("srv", None) == "srv"
    assert environment.run_directory("/srv", "/jail") == "/jail/srv"
    assert environment.run_directory(".", "/jail") == "/jail/"


@pytest.mark.parametrize("pidfile, rundir, chroot, expected", [
    ("twistd.pid", "/run/app", None, "/run/app/twistd.pid"),
    ("/var/run/x.pid", "/run/app", None, "/var/run/x.pid"),
    ("twistd.pid", "/srv", "/jail", "/jail/srv/twistd.pid"),
    ("twistd.pid", ".", "/jail", "/jail/twistd.pid"),
    ("/run/x.pid", "/srv", "/jail", "/jail/run/x.pid"),
])
def test_pidfile_path_seen_from_outside(pidfile: str, rundir: str, chroot: str | None, expected: str) -> None:
    assert environment.pidfile_path(pidfile, rundir, chroot) == expected


def test_enter_rundir_changes_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert environment.enter_rundir(str(tmp_path)) == str(tmp_path)
    assert os.getcwd() == str(tmp_path)


def test_missing_rundir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TapsterError, match=r"cannot change to run directory .*nope: No such file.*--rundir"):
        environment.enter_rundir(str(tmp_path / "nope"))


def test_chroot_to_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    # os.chroot fails before changing anything, whoever we are.
    with pytest.raises(TapsterError, match=r"cannot chroot to .*nope: No such file"):
        environment.enter_chroot(str(tmp_path / "nope"))


def test_process_title_is_what_ps_and_pgrep_see() -> None:
    code = "from tapster.twistd.environment import set_process_title; set_process_title('qotd-title-test-long'); " \
           "print(open('/proc/self/comm').read().strip())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "qotd-title-test"  # the kernel keeps 15 bytes


# -- privileges --------------------------------------------------------------------------


def test_resolve_ids_from_names_and_numbers() -> None:
    nobody = pwd.getpwnam("nobody")
    ids = resolve_ids("nobody", None)
    assert (ids.uid, ids.gid) == (nobody.pw_uid, nobody.pw_gid)  # the user's primary group
    assert nobody.pw_gid in ids.groups
    by_number = resolve_ids(nobody.pw_uid, 0)
    assert (by_number.uid, by_number.gid) == (nobody.pw_uid, 0)
    assert by_number.groups == tuple(os.getgrouplist("nobody", 0))
    assert resolve_ids(None, None).empty
    assert resolve_ids(None, 0) == Ids(None, 0, (0,), "group 0")


@pytest.mark.parametrize("user, group, needle", [
    ("no-such-user-xyz", None, "unknown user 'no-such-user-xyz'"),
    (None, "no-such-group-xyz", "unknown group 'no-such-group-xyz'"),
])
def test_unknown_names_are_clear_errors(user, group, needle: str) -> None:
    with pytest.raises(TapsterError, match=needle):
        resolve_ids(user, group)


def test_switching_to_what_we_already_are_does_nothing() -> None:
    switch_ids(Ids(os.getuid(), os.getgid(), None, "ourselves"))


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")
@pytest.mark.parametrize("euid, expected", [(False, "65534 65534 65534 65534"), (True, "0 65534 0 65534")])
def test_switch_ids_in_a_child(euid: bool, expected: str) -> None:
    code = (
        "import sys; from tapster.twistd.privileges import resolve_ids, switch_ids; "
        f"switch_ids(resolve_ids('nobody', 65534), euid={euid}); "
        "print([l.split()[1:] for l in open('/proc/self/status') if l.startswith('Uid:')][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert " ".join(eval(out)) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root may switch")
def test_switching_needs_root() -> None:
    with pytest.raises(TapsterError, match="only root can"):
        switch_ids(resolve_ids("nobody", None))


# -- diagnostics -------------------------------------------------------------------------


def _work() -> int:
    return sum(range(1000))


@pytest.mark.parametrize("profiler", ["cprofile", "profile"])
def test_profile_writes_a_text_report(tmp_path: Path, profiler: str) -> None:
    out = tmp_path / "prof.txt"
    assert diagnostics.run_profiled(_work, str(out), profiler) == 499500
    text = out.read_text()
    assert "function calls" in text and "_work" in text


def test_savestats_writes_pstats_even_when_the_run_fails(tmp_path: Path) -> None:
    out = tmp_path / "prof.pstats"

    def fail() -> None:
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        diagnostics.run_profiled(fail, str(out), "cprofile", savestats=True)
    stats = pstats.Stats(str(out))
    assert any(func[2] == "fail" for func in stats.stats)  # type: ignore[attr-defined]


def test_spew_logs_calls(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tapster.spew")
    diagnostics.start_spew()
    try:
        _work()
    finally:
        diagnostics.stop_spew()
    lines = [r.getMessage() for r in caplog.records if r.name == "tapster.spew"]
    assert any(line.startswith(f"{__name__}._work (") for line in lines)
    assert all(getattr(r, "system", None) == "spew" for r in caplog.records if r.name == "tapster.spew")


def test_post_mortem_only_in_the_foreground_with_debug_on_a_terminal() -> None:
    assert not diagnostics.post_mortem_available(nodaemon=False, debug=True)
    assert not diagnostics.post_mortem_available(nodaemon=True, debug=False)
    assert not diagnostics.post_mortem_available(nodaemon=True, debug=True)  # pytest's stdin is no terminal
