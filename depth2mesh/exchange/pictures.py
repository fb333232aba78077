"""Depth pictures: disparity as a 16-bit PNG and as an inferno heat map, for people and tools.

Both are scaled by the disparity's own finite minimum and maximum (near is bright, MiDaS's
convention). ``depth2mesh depth`` and :func:`depth2mesh.pipeline.convert.convert_photo` write them
through :func:`write_depth_pictures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.atomic import atomic_write_bytes, refuse_existing, write_npy
from depth2mesh.errors import OutputError


def normalize_disparity(disparity: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scale disparity to [0, 1] by its finite minimum and maximum (near = 1).

    A constant map (no depth variation) gives all zeros; NaN and inf give 0.

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W) float32 in [0, 1].
    """
    values = np.asarray(disparity, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.float32)
    low = float(values[finite].min())
    high = float(values[finite].max())
    span = high - low
    if span <= 0.0:
        return np.zeros(values.shape, np.float32)
    scaled = np.where(finite, (values - low) / span, 0.0)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def disparity_to_png16(disparity: NDArray[np.floating]) -> NDArray[np.uint16]:
    """Return the 16-bit picture of disparity: min -> 0, max -> 65535 (near = bright).

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W) uint16.
    """
    return np.round(normalize_disparity(disparity) * 65535.0).astype(np.uint16)


def colorize_disparity(disparity: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Colour disparity with the inferno colormap (near = bright yellow, far = black).

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    levels = np.round(normalize_disparity(disparity) * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def encode_png(image: NDArray[np.uint8] | NDArray[np.uint16]) -> bytes:
    """Encode an (H, W) gray or (H, W, 3) RGB image, 8- or 16-bit, as PNG bytes."""
    pixels = image[:, :, ::-1] if image.ndim == 3 else image
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise OutputError(f"PNG encoding failed for an image of shape {image.shape}")
    return encoded.tobytes()


def write_png(
    path: str | Path, image: NDArray[np.uint8] | NDArray[np.uint16], *, overwrite: bool = False
) -> Path:
    """Write an image as PNG atomically (see :func:`encode_png`, :func:`atomic_write`)."""
    return atomic_write_bytes(path, encode_png(image), overwrite=overwrite)


def write_depth_pictures(
    disparity: NDArray[np.float32], paths: Mapping[str, Path], *, overwrite: bool = False
) -> list[Path]:
    """Write the depth pictures of one photo, and its raw disparity when ``paths`` asks.

    Nothing is written when any of them exists and ``overwrite`` is False.

    Args:
        disparity: (H, W) float32, relative inverse depth (larger is nearer).
        paths: Output files by kind, from :func:`depth2mesh.pipeline.convert.output_paths` or
            :func:`depth2mesh.pipeline.convert.depth_paths`: "depth" (16-bit PNG) and "inferno"
            (colourised PNG) are written; "disparity" (float32 ``.npy``, unnormalised) when
            present. Other kinds are left alone.
        overwrite: Replace existing files.

    Returns:
        The paths written, in that order.

    Raises:
        OutputError: An output exists (without ``overwrite``) or cannot be written.
    """
    kinds = [kind for kind in ("depth", "inferno", "disparity") if kind in paths]
    refuse_existing([paths[kind] for kind in kinds], overwrite=overwrite)
    written = [
        write_png(paths["depth"], disparity_to_png16(disparity), overwrite=overwrite),
        write_png(paths["inferno"], colorize_disparity(disparity), overwrite=overwrite),
    ]
    if "disparity" in paths:
        raw = np.asarray(disparity, dtype=np.float32)
        written.append(write_npy(paths["disparity"], raw, overwrite=overwrite))
    return written


def write_metric_depth_pictures(
    metres: NDArray[np.float32], paths: Mapping[str, Path], *, overwrite: bool = False
) -> list[Path]:
    """Write the depth pictures of a metric model's depth, and the metres when ``paths`` asks.

    The pictures are those of :func:`write_depth_pictures` for ``1 / metres`` (near is
    bright, as for relative models; the scale of a picture is its own min..max, so metres
    cannot be read from it); "metres" (float32 ``.npy``, metres as predicted) is written when
    present. Nothing is written when any of them exists and ``overwrite`` is False.

    Args:
        metres: (H, W) float32 depth, metres (> 0).
        paths: Output files by kind (:func:`depth2mesh.pipeline.convert.depth_paths` with
        ``metric``).
        overwrite: Replace existing files.

    Returns:
        The paths written, in order.

    Raises:
        OutputError: An output exists (without ``overwrite``) or cannot be written.
    """
    refuse_existing(list(paths.values()), overwrite=overwrite)
    inverse = (1.0 / np.maximum(np.asarray(metres, np.float32), 1e-6)).astype(np.float32)
    pictures = {kind: path for kind, path in paths.items() if kind in ("depth", "inferno")}
    written = write_depth_pictures(inverse, pictures, overwrite=overwrite)
    if "metres" in paths:
        raw = np.asarray(metres, dtype=np.float32)
        written.append(write_npy(paths["metres"], raw, overwrite=overwrite))
    return written
