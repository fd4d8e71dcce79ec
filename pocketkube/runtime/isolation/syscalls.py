"""The few Linux syscalls Python 3.11 does not expose: unshare, setns, mount, prctl, ...

They are bound once through ctypes so that the code running in a freshly forked child (before
exec) only makes plain foreign calls: no imports, no symbol lookups. On other platforms
`available` is False and every function raises OSError.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1

available = sys.platform.startswith("linux")
_libc = None
if available:
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_ulong, ctypes.c_void_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                                ctypes.c_ulong, ctypes.c_ulong]
        _libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        available = False
        _libc = None


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _need() -> None:
    if _libc is None:
        raise OSError(38, "namespaces are only available on Linux")


def unshare(flags: int) -> None:
    _need()
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _need()
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
          data: bytes | None = None) -> None:
    _need()
    _check(_libc.mount(source, target, fstype, flags, data), f"mount {target!r}")


def umount2(target: bytes, flags: int) -> None:
    _need()
    _check(_libc.umount2(target, flags), f"umount {target!r}")


def set_pdeathsig(sig: int) -> None:
    _need()
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def sethostname(name: bytes) -> None:
    _need()
    _check(_libc.sethostname(name, len(name)), "sethostname")
