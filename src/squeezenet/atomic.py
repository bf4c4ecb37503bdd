"""Write files so that a crash never leaves a half-written one: temporary file in the same folder, then rename.

A temporary file is named `.NAME.PID.XXXX.tmp`: a `kill -9` cannot clean up after itself, so the next write
into the same folder (by any command) removes those whose process is gone (`stale_temporaries`); a live writer's,
of this host, stays. `squeezenet cache --clear` removes those of the decoded-image cache.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")


def alive(pid: int) -> bool:
    """Whether process `pid` of this host runs (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid is that large
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files in `folder` (of any target) whose writing process no longer runs."""
    found = []
    for p in folder.glob(".*.tmp") if folder.is_dir() else []:
        m = _TMP.match(p.name)
        if m and not alive(int(m["pid"])):
            found.append(p)
    return found


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in stale_temporaries(path.parent):
        p.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the final file gets the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:  # a full disk says which file it was writing
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())
