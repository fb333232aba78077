"""Atomic file writing: a temporary file in the target folder, then one rename.

Every file depth2mesh writes (results, downloaded weights, network exports) goes through
here: an interrupted run never leaves a truncated file under the final name, and an existing
result is never replaced unless ``overwrite`` is set (the check and the rename are one step:
``link`` fails when the name exists).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import OutputError, OutputExistsError

TEMPORARY_SUFFIX: Final = ".tmp"
"""Suffix of the temporary file of :func:`atomic_write` (``.<name>.<8 random>.tmp``)."""

TEMPORARY_NAME: Final = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
"""Matches the temporary file of :func:`atomic_write`; ``name`` is the final file's name."""


def process_umask() -> int:
    """Return the process umask without changing it (thread-safe on Linux).

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting and restoring
    it, which another thread could observe.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_temporary(folder: str | Path, name: str, *, suffix: str = TEMPORARY_SUFFIX) -> Path:
    """Create a new empty file ``folder/.<name>.<random><suffix>`` and return its path.

    The file gets the permissions of a normal new file (``0o666 & ~umask``), not mkstemp's
    private 0o600, so that a published result is readable as any other file.

    Raises:
        OSError: The folder cannot be written.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    try:
        os.fchmod(handle, 0o666 & ~process_umask())
    finally:
        os.close(handle)
    return Path(temporary)


@contextlib.contextmanager
def temporary_file(
    folder: str | Path, name: str, *, suffix: str = TEMPORARY_SUFFIX
) -> Iterator[Path]:
    """Yield :func:`new_temporary`'s file; whatever is left of it at exit is deleted.

    Move it into place with :func:`publish` inside the ``with`` block; after an error or an
    interruption nothing stays behind.

    Raises:
        OSError: The folder cannot be written.
    """
    temporary = new_temporary(folder, name, suffix=suffix)
    try:
        yield temporary
    finally:
        _remove(temporary)


def _remove(path: Path) -> None:
    if os.path.lexists(path):
        os.unlink(path)


def publish(temporary: str | Path, path: str | Path, *, overwrite: bool) -> Path:
    """Move a finished temporary file to its final name in one step.

    Args:
        temporary: The complete file (same folder as ``path``).
        path: The final name.
        overwrite: Replace an existing file; without it an existing file is an error and is
            left as it was.

    Returns:
        ``path``.

    Raises:
        OutputError: The file exists (without ``overwrite``) or cannot be written.
    """
    path = Path(path)
    if overwrite:
        os.replace(temporary, path)
        return path
    try:
        os.link(temporary, path)
    except FileExistsError as error:
        raise OutputExistsError(path) from error
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise OutputError(f"cannot write {path}: {error.strerror}") from error
        if path.exists():  # a file system without hard links: check, then rename
            raise OutputExistsError(path) from error
        os.replace(temporary, path)
    return path


def atomic_write(
    path: str | Path, write: Callable[[BinaryIO], None], *, overwrite: bool = False
) -> Path:
    """Write a file through ``write(stream)`` atomically.

    Args:
        path: The final path. Its folder must exist.
        write: Writes the whole content to the binary stream it is given.
        overwrite: Replace an existing file. Without it an existing file is an error, and it
            is left as it was.

    Returns:
        ``path``.

    Raises:
        OutputError: The file exists and ``overwrite`` is False, or the folder is not writable.
    """
    path = Path(path)
    refuse_existing([path], overwrite=overwrite)
    try:
        temporary = new_temporary(path.parent, path.name)
    except OSError as error:
        raise OutputError(f"cannot write into {path.parent}: {error.strerror}") from error
    try:
        with temporary.open("wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        publish(temporary, path, overwrite=overwrite)
    finally:
        _remove(temporary)
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda stream: _write_all(stream, data), overwrite=overwrite)


def write_npy(path: str | Path, array: NDArray[np.generic], *, overwrite: bool = False) -> Path:
    """Write an array as ``.npy`` atomically (no pickles)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def refuse_existing(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` for the first existing one of ``paths`` (no ``overwrite``).

    Raises:
        OutputExistsError: One of ``paths`` exists and ``overwrite`` is False.
    """
    if overwrite:
        return
    for path in paths:
        if path.exists():
            raise OutputExistsError(path)


def _write_all(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
