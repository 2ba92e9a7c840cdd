"""Opening the files twistd writes as a privileged process: pidfiles and log files.

twistd often starts as root, in directories (``/run``, ``/var/log``, a shared
``/tmp``) where another user may have planted something. Like OpenSSH's
StrictModes, it refuses:

* a path that is a symbolic link (``O_NOFOLLOW``): root writing its pid "to
  the pidfile" would overwrite whatever file the link names;
* anything but a regular file;
* a file owned by another user in a directory that others can write to:
  whoever planted it there keeps the power to change or replace it.

Each refusal is one :class:`~tapster.core.errors.TapsterError` naming the
path and what to do.
"""

from __future__ import annotations

import errno
import os
import stat

from tapster.core.errors import TapsterError

__all__ = ["open_owned"]


def open_owned(path: str, flags: int, mode: int, what: str) -> int:
    """``os.open(path, flags, mode)`` with the checks above; ``what`` names the file in messages ("pidfile")."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise TapsterError(
                f"the {what} {path} is a symbolic link; twistd does not follow links for files it writes "
                f"(remove the link, or give the real path)"
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TapsterError(f"the {what} {path} is not a regular file; remove it or choose another path")
        if st.st_uid != os.geteuid():
            directory = os.path.dirname(os.path.abspath(path))
            dir_mode = os.stat(directory).st_mode
            if dir_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise TapsterError(
                    f"the {what} {path} belongs to another user (uid {st.st_uid}) in {directory}, which others can "
                    f"write to; remove it, or keep the {what} in a directory only its owner can write"
                )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
