"""Shedding root: resolve user and group names, then set groups, gid and uid, in that order.

The order matters: supplementary groups and the gid can only be changed while
still root, so they go first; the uid goes last.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd

from core.errors import TapsterError

__all__ = ["resolve_uid", "resolve_gid", "shed_privileges"]

_log = logging.getLogger("tapster.twistd")


def resolve_uid(user: int | str) -> int:
    """A uid from a name or a number; TapsterError naming an unknown user."""
    if isinstance(user, int) or str(user).isdigit():
        return int(user)
    try:
        return pwd.getpwnam(str(user)).pw_uid
    except KeyError:
        raise TapsterError(f"unknown user {user!r}: create it or give another with -u") from None


def resolve_gid(group: int | str) -> int:
    """A gid from a name or a number; TapsterError naming an unknown group."""
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise TapsterError(f"unknown group {group!r}: create it or give another with -g") from None


def shed_privileges(user: int | str | None, group: int | str | None, euid: bool = False) -> None:
    """Become ``user``/``group`` (the effective ids only when ``euid``).

    Without a group, the user's primary group is used. Nothing to do when
    neither is given or they are what we already run as.
    """
    if user is None and group is None:
        if os.getuid() == 0:
            _log.warning("running as root: give the application a user to run as (mktap -u/-g)")
        return
    uid = resolve_uid(user) if user is not None else None
    gid = resolve_gid(group) if group is not None else None
    if gid is None and uid is not None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = None
    current = (os.geteuid(), os.getegid()) if euid else (os.getuid(), os.getgid())
    if (uid is None or uid == current[0]) and (gid is None or gid == current[1]):
        return
    if os.geteuid() != 0:
        raise TapsterError(
            f"cannot switch to user {user!r} group {group!r}: only root can (start twistd as root, "
            "or build the application without -u/-g)"
        )
    try:
        if uid is not None:
            try:
                name = pwd.getpwuid(uid).pw_name
                os.initgroups(name, gid if gid is not None else os.getgid())
            except KeyError:
                os.setgroups([gid] if gid is not None else [])
        elif gid is not None:
            os.setgroups([gid])
        if euid:
            if gid is not None:
                os.setegid(gid)
            if uid is not None:
                os.seteuid(uid)
        else:
            if gid is not None:
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)
    except OSError as e:
        raise TapsterError(f"cannot switch to user {user!r} group {group!r}: {e.strerror}") from e
    _log.info("running as uid %d gid %d%s", os.geteuid(), os.getegid(), " (effective only)" if euid else "")
