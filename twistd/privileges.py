"""Shedding root: resolve user and group names, then set groups, gid and uid, in that order.

Two steps on purpose. :func:`resolve_ids` turns names into numbers (and the
user's supplementary groups) *early*, before ``--chroot`` hides
``/etc/passwd`` and before a daemon forks, so that an unknown user is one
clear line from the command the administrator typed. :func:`switch_ids`
applies them after the ports are bound.

The order of the switch matters: supplementary groups and the gid can only
be changed while still root, so they go first; the uid goes last.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass

from tapster.core.errors import TapsterError

__all__ = ["Ids", "resolve_uid", "resolve_gid", "resolve_ids", "switch_ids", "shed_privileges"]

_log = logging.getLogger("tapster.twistd")


@dataclass(frozen=True)
class Ids:
    """Where to switch to: ``uid``/``gid`` (None: keep), ``groups`` the supplementary groups."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None
    label: str = ""  # how the user wrote it, for messages

    @property
    def empty(self) -> bool:
        return self.uid is None and self.gid is None


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


def resolve_ids(user: int | str | None, group: int | str | None) -> Ids:
    """Names to numbers; without a group, the user's primary group; supplementary groups from the user's entry."""
    if user is None and group is None:
        return Ids()
    uid = resolve_uid(user) if user is not None else None
    gid = resolve_gid(group) if group is not None else None
    groups: tuple[int, ...] | None = None
    if uid is not None:
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            entry = None
        if gid is None and entry is not None:
            gid = entry.pw_gid
        if entry is not None:
            groups = tuple(os.getgrouplist(entry.pw_name, gid if gid is not None else entry.pw_gid))
        elif gid is not None:
            groups = (gid,)
        else:
            groups = ()
    elif gid is not None:
        groups = (gid,)
    label = f"user {user!r} group {group!r}" if group is not None else f"user {user!r}"
    if user is None:
        label = f"group {group!r}"
    return Ids(uid, gid, groups, label)


def switch_ids(ids: Ids, euid: bool = False) -> None:
    """Become ``ids`` (only the effective ids when ``euid``); warns when root keeps running as root."""
    if ids.empty:
        if os.getuid() == 0:
            _log.warning("running as root: give a user to run as (twistd -u/-g, or mktap -u/-g)")
        return
    current = (os.geteuid(), os.getegid()) if euid else (os.getuid(), os.getgid())
    if (ids.uid is None or ids.uid == current[0]) and (ids.gid is None or ids.gid == current[1]):
        return
    if os.geteuid() != 0:
        raise TapsterError(
            f"cannot switch to {ids.label}: only root can (start twistd as root, or leave out -u/-g)"
        )
    try:
        if ids.groups is not None:
            os.setgroups(list(ids.groups))
        if euid:
            if ids.gid is not None:
                os.setegid(ids.gid)
            if ids.uid is not None:
                os.seteuid(ids.uid)
        else:
            if ids.gid is not None:
                os.setgid(ids.gid)
            if ids.uid is not None:
                os.setuid(ids.uid)
    except OSError as e:
        raise TapsterError(f"cannot switch to {ids.label}: {e.strerror}") from e
    _log.info("running as uid %d gid %d%s", os.geteuid(), os.getegid(),
              f" (effective only; real uid {os.getuid()})" if euid else "")


def shed_privileges(user: int | str | None, group: int | str | None, euid: bool = False) -> None:
    """Resolve and switch in one go (when nothing needs resolving early)."""
    switch_ids(resolve_ids(user, group), euid)
