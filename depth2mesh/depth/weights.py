"""Finding a model's weights: explicit path, environment, cache, download.

Resolution order for the chosen model (first match wins; :mod:`depth2mesh.depth.registry` gives
each model's URL, sha256 and variable):

1. the ``weights`` argument (``--weights PATH`` on the command line);
2. the model's own environment variable: ``DEPTH2MESH_WEIGHTS`` for MiDaS small,
   ``DEPTH2MESH_WEIGHTS_DAV2_SMALL``, ``DEPTH2MESH_WEIGHTS_DAV2_METRIC_INDOOR`` and
   ``DEPTH2MESH_WEIGHTS_DAV2_METRIC_OUTDOOR`` for the others (one variable per model, so
   that a path set for one model is never read as another's checkpoint);
3. the torch.hub cache, ``<torch.hub.get_dir()>/checkpoints/<the release's own file name>``
   (``midas_v21_small_256.pt``, where users of ``torch.hub.load("intel-isl/MiDaS",
   "MiDaS_small")`` already have it; ``depth_anything_v2_vits.pth``, ...);
4. a download of the official release into that cache, verified against its sha256 (a
   model whose sha256 is not known is downloaded unverified; its keys and shapes are checked
   when it is read, and its sha256 is recorded in the sidecar).

Setting ``DEPTH2MESH_OFFLINE=1`` forbids step 4. This module never imports torch: the caller
passes the cache path, so that it stays cheap to import and easy to test.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from depth2mesh.atomic import publish, temporary_file
from depth2mesh.depth.registry import DEFAULT_MODEL, MODELS, ModelSpec
from depth2mesh.errors import WeightsError

_DEFAULT = MODELS[DEFAULT_MODEL]

OFFICIAL_URL = _DEFAULT.url
"""Where the official MiDaS v2.1 small checkpoint is published (81.8 MB)."""

OFFICIAL_SHA256: str = _DEFAULT.sha256 or ""
"""sha256 of the official checkpoint (the same bytes as ``midas_v21_small-70d6b9c8.pt``)."""

CHECKPOINT_NAME = _DEFAULT.checkpoint_name
"""File name of the checkpoint in the torch.hub cache's ``checkpoints`` folder."""

WEIGHTS_ENV = _DEFAULT.weights_env
OFFLINE_ENV = "DEPTH2MESH_OFFLINE"

ProgressCallback = Callable[[int, "int | None"], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while a download runs."""

WeightsOrigin = Literal["argument", "environment", "cache", "download"]


@dataclass(frozen=True)
class ResolvedWeights:
    """Where the weights file was found.

    Attributes:
        path: The checkpoint file.
        origin: Which resolution step found it.
    """

    path: Path
    origin: WeightsOrigin


def cache_file(hub_dir: str | Path, name: str = CHECKPOINT_NAME) -> Path:
    """Return a checkpoint's path inside a torch.hub directory.

    Args:
        hub_dir: ``torch.hub.get_dir()``.
        name: The release's file name (default MiDaS small's).

    Returns:
        ``<hub_dir>/checkpoints/<name>`` (``midas_v21_small_256.pt`` by default).
    """
    return Path(hub_dir) / "checkpoints" / name


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Args:
        path: The file.
        chunk_bytes: Read size in bytes.

    Returns:
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def offline_message(
    cache_path: Path,
    reason: str,
    *,
    url: str = OFFICIAL_URL,
    sha256: str | None = OFFICIAL_SHA256,
    title: str = "MiDaS",
    env_var: str = WEIGHTS_ENV,
) -> str:
    """Return the one-line error shown when no weights file can be had.

    Args:
        cache_path: Where the download would have gone.
        reason: Why the download did not happen (e.g. the network error).
        url: The release URL.
        sha256: The release's sha256, or None when not known.
        title: The model's name.
        env_var: The model's weights variable.

    Returns:
        A message naming the URL, the cache path, the sha256 and ``--weights``.
    """
    digest = f" (sha256 {sha256})" if sha256 is not None else ""
    return (
        f"{title} weights not found and not downloadable ({reason}): download {url}{digest} "
        f"to {cache_path}, or pass --weights PATH (or set {env_var})"
    )


def download_file(
    url: str,
    destination: str | Path,
    *,
    sha256: str | None,
    progress: ProgressCallback | None = None,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``destination`` atomically and verify its sha256.

    The bytes go to a temporary file beside ``destination``, hashed on the way, and are
    renamed into place only when the hash matches: an interrupted or corrupted download
    never leaves a file at ``destination``.

    Args:
        url: ``https://``, ``http://`` or ``file://`` URL.
        destination: Final path; its folder is created.
        sha256: Expected hex sha256 of the file; None: not checked (the caller checks the
            file's contents instead).
        progress: Called with (bytes done, total bytes or None) after each chunk.
        timeout_s: Socket timeout in seconds.
        chunk_bytes: Read size in bytes.

    Returns:
        ``destination`` as a Path.

    Raises:
        OSError: The URL could not be read or the file could not be written
            (``urllib.error.URLError`` is an OSError).
        WeightsError: The downloaded bytes do not have the expected sha256.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with (
        temporary_file(destination.parent, destination.name, suffix=".part") as temporary,
        temporary.open("wb") as sink,
        urllib.request.urlopen(url, timeout=timeout_s) as src,
    ):
        length = src.headers.get("Content-Length") if src.headers else None
        total = int(length) if length and length.isdigit() else None
        done = 0
        while chunk := src.read(chunk_bytes):
            sink.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        sink.close()
        if sha256 is not None and digest.hexdigest() != sha256:
            raise WeightsError(
                f"downloaded {url} but its sha256 is {digest.hexdigest()}, expected {sha256}; "
                "the file was discarded: try again, or download it by hand and pass --weights PATH"
            )
        publish(temporary, destination, overwrite=True)
    return destination


def resolve_weights(
    weights: str | Path | None,
    *,
    cache_path: Path,
    environ: Mapping[str, str] | None = None,
    url: str = OFFICIAL_URL,
    sha256: str | None = OFFICIAL_SHA256,
    progress: ProgressCallback | None = None,
    env_var: str = WEIGHTS_ENV,
    title: str = "MiDaS",
) -> ResolvedWeights:
    """Find the weights file, downloading it into the cache as a last resort.

    Args:
        weights: An explicit path, or None.
        cache_path: The torch.hub cache file (see :func:`cache_file`).
        environ: Environment to read ``env_var`` and ``DEPTH2MESH_OFFLINE`` from; defaults
            to ``os.environ``.
        url: Where to download from.
        sha256: The expected sha256 of the download; None: not checked.
        progress: Download progress callback, see :data:`ProgressCallback`.
        env_var: The environment variable that may name the file (the model's own).
        title: The model's name, for messages.

    Returns:
        The path and which step found it.

    Raises:
        WeightsError: An explicit path does not exist, or nothing was found and the download
            failed or is disabled. The message names the URL, the cache path, the sha256
            and ``--weights``.
    """
    env = os.environ if environ is None else environ
    if weights is not None:
        return ResolvedWeights(_existing_file(Path(weights), "--weights"), "argument")
    from_env = env.get(env_var, "").strip()
    if from_env:
        return ResolvedWeights(_existing_file(Path(from_env), env_var), "environment")
    if cache_path.is_file():
        return ResolvedWeights(cache_path, "cache")

    def message(reason: str) -> str:
        return offline_message(
            cache_path, reason, url=url, sha256=sha256, title=title, env_var=env_var
        )

    if env.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise WeightsError(message(f"{OFFLINE_ENV} is set"))
    try:
        download_file(url, cache_path, sha256=sha256, progress=progress)
    except urllib.error.URLError as error:
        raise WeightsError(message(str(error.reason))) from error
    except OSError as error:
        raise WeightsError(message(error.strerror or error.__class__.__name__)) from error
    return ResolvedWeights(cache_path, "download")


def resolve_model_weights(
    spec: ModelSpec,
    weights: str | Path | None,
    *,
    hub_dir: str | Path,
    environ: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> ResolvedWeights:
    """:func:`resolve_weights` for a model of the registry (its URL, sha256, variable, name).

    Args:
        spec: The model (:func:`depth2mesh.depth.registry.get_model`).
        weights: An explicit path, or None.
        hub_dir: ``torch.hub.get_dir()``; the cache file is ``checkpoints/<release name>``.
        environ: As :func:`resolve_weights`.
        progress: As :func:`resolve_weights`.
    """
    return resolve_weights(
        weights,
        cache_path=cache_file(hub_dir, spec.checkpoint_name),
        environ=environ,
        url=spec.url,
        sha256=spec.sha256,
        progress=progress,
        env_var=spec.weights_env,
        title=spec.title,
    )


def _existing_file(path: Path, given_by: str) -> Path:
    path = path.expanduser()
    if path.is_dir():
        raise WeightsError(f"weights path {path} (from {given_by}) is a folder, not a .pt file")
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} (from {given_by}) does not exist: check the path, or leave "
            f"{given_by} unset to use the cached or downloaded official weights"
        )
    return path
