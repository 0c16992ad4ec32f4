"""Every file the program writes goes through here: a new file beside the target, then a rename.

A group member can plant symlinks in the shared folder. A fixed temporary name opened with O_TRUNC
followed such a link and truncated whatever it pointed at (the database became a session file). So the
temporary file gets a random name and is created exclusively, never through a symlink, with mode 0600;
it is flushed to disk, given its final mode, and renamed over the target, which replaces a symlink
there instead of writing through it. A reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PRIVATE = 0o600


def default_mode() -> int:
    """What a plain open() would give a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread, for a moment)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # elsewhere: briefly the strictest mask, never a looser one
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: int = PRIVATE, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file that replaces `path` when the block ends without error; on error, nothing changes."""
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")  # secrets.token_hex, without its import
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
            break
        except FileExistsError:  # someone planted that name: draw another
            continue
    else:
        raise FileExistsError(f"{path}: could not create a temporary file beside it")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def write_text(path: str | Path, text: str, mode: int = PRIVATE) -> None:
    with atomic_writer(path, mode) as out:
        out.write(text)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
