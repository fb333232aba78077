"""depth2mesh's cache folder: where the network export and OpenVINO's compiled network live.

One folder, chosen in this order:

1. ``$DEPTH2MESH_CACHE`` when set and not empty;
2. ``$XDG_CACHE_HOME/depth2mesh`` when ``XDG_CACHE_HOME`` is set and not empty;
3. ``~/.cache/depth2mesh``.

It holds the ONNX exports of the networks (``<network's prefix>-<weights sha256>-<tag>-<16 hex
of the file's own sha256>.onnx``, one per weights file ever used, for example
``midas_v21_small-...``, about 66 MB, and ``dav2_small-...``, about 99 MB) and
``openvino-cache/`` (OpenVINO's compiled networks). Nothing is ever written beside the
user's weights file. ``depth2mesh cache`` lists the folder, ``depth2mesh cache --clear``
empties it; everything in it is rebuilt on demand (an export takes a few seconds).

This module knows only the folder and which of its entries are depth2mesh's own: the
exports themselves are made and checked by :mod:`depth2mesh.depth.backends`.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depth2mesh.depth.registry import export_prefixes

CACHE_ENV = "DEPTH2MESH_CACHE"
"""Environment variable naming the cache folder (wins over ``XDG_CACHE_HOME``)."""

CACHE_SUBDIR = "depth2mesh"
"""The cache's folder name inside ``$XDG_CACHE_HOME`` or ``~/.cache``."""

OPENVINO_CACHE = "openvino-cache"
"""Folder inside the cache where OpenVINO keeps compiled networks."""


@dataclass(frozen=True)
class CacheEntry:
    """One of depth2mesh's own entries in the cache folder.

    Attributes:
        path: The file or folder.
        size_bytes: Its size; for a folder, the sum of the files inside it.
    """

    path: Path
    size_bytes: int


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache folder (it may not exist yet); see the module docstring for the order.

    Args:
        environ: The environment (default ``os.environ``).

    Returns:
        An absolute path, ``~`` expanded.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    base = env.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return (root / CACHE_SUBDIR).absolute()


def is_own_entry(name: str) -> bool:
    """Whether a name in the cache folder is one of depth2mesh's own entries.

    Ours: an export of a registered network (:func:`depth2mesh.depth.registry.export_prefixes`),
    an export's temporary file while it is written, OpenVINO's folder.
    """
    return name == OPENVINO_CACHE or any(
        (name.startswith(f"{prefix}-") and name.endswith(".onnx"))
        or (name.startswith(f".{prefix}-") and name.endswith(".part"))
        for prefix in export_prefixes()
    )


def cache_entries(folder: Path | None = None) -> list[CacheEntry]:
    """List depth2mesh's own entries in the cache folder, sorted by name.

    Other files a user put there are not listed (and never deleted).

    Args:
        folder: The cache folder (default :func:`cache_dir`).

    Returns:
        The entries; empty when the folder does not exist or cannot be read.
    """
    root = cache_dir() if folder is None else folder
    try:
        names = sorted(path.name for path in root.iterdir())
    except OSError:
        return []
    return [CacheEntry(root / name, _size(root / name)) for name in names if is_own_entry(name)]


def cache_size_bytes(folder: Path | None = None) -> int:
    """Return the total size of depth2mesh's own entries in the cache folder, in bytes."""
    return sum(entry.size_bytes for entry in cache_entries(folder))


def clear_cache(folder: Path | None = None) -> tuple[int, int]:
    """Delete depth2mesh's own entries from the cache folder; leave everything else.

    Args:
        folder: The cache folder (default :func:`cache_dir`).

    Returns:
        (entries deleted, bytes freed).

    Raises:
        OSError: An entry could not be deleted (for example a read-only folder).
    """
    deleted = freed = 0
    for entry in cache_entries(folder):
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
        deleted += 1
        freed += entry.size_bytes
    return deleted, freed


def writable_folder(folder: Path) -> bool:
    """Whether new files may go into ``folder`` (created first when missing).

    True when the folder, or when it is missing its nearest existing parent, is writable.
    A folder without any write permission bit counts as read-only even where the process
    could write into it anyway (root): shared data folders are marked so on purpose.
    """
    current = folder
    while True:
        try:
            mode = current.stat().st_mode
        except FileNotFoundError:
            if current.parent == current:
                return False
            current = current.parent
            continue
        except OSError:
            return False
        if not stat.S_ISDIR(mode) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            return False
        return os.access(current, os.W_OK | os.X_OK)


def _size(path: Path) -> int:
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        return sum(item.lstat().st_size for item in path.rglob("*") if not item.is_dir())
    except OSError:
        return 0
