"""Atomic, durable file writes: a crash never leaves a half-written file under the final name.

The data is written to a temporary file beside the target, flushed to disk
(``fsync``), renamed over the target (``os.replace``, atomic on POSIX), and the
directory is ``fsync``-ed so the rename itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "inside",
           "output_directory"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    The temporary file gets the permissions a plain ``open(path, "w")`` would
    (``0o666`` minus the umask, not ``mkstemp``'s private ``0o600``), and is
    removed if the body raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse to sync a directory
        pass
    finally:
        os.close(fd)


def output_directory(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a directory to write into (created), or ``ValueError`` naming ``option``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def inside(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` resolved, or ``ValueError`` if it does not lie inside ``root``.

    Every writer and deleter that takes a path from a file (a manifest, a
    record) goes through this, so a crafted name (``../x``, an absolute path,
    a symlink out) cannot reach outside its output folder.
    """
    resolved, base = Path(root, path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{path} lies outside {root}")
    return resolved


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
