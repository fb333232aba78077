"""Image resampling and normalisation that the networks' official transforms share, without torch.

RGB photo (uint8) -> /255 in float64 -> bicubic resize (OpenCV ``INTER_CUBIC``) to the network
input size -> ImageNet normalisation -> (1, 3, h, w) float32: :func:`preprocess_at` takes the
cheapest of three exact ways there, by photo size (the tests hold each within 1e-6 of the
official float64 path). Outputs go back to the photo's size bicubically
(:func:`resize_disparity`, MiDaS's) or bilinearly with corners aligned
(:func:`resize_bilinear_corners`, Depth Anything's). Each network's own rule for the input
size lives in its module (:mod:`depth2mesh.depth.networks`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CUBIC_A = -0.75
"""The bicubic kernel's parameter in OpenCV's ``INTER_CUBIC`` (and torch's ``bicubic``)."""


def cubic_taps(source: int, target: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Return the 4 source indices and weights of each output sample of a bicubic resize.

    The same arithmetic as OpenCV's ``INTER_CUBIC`` (no antialiasing): output sample ``i``
    sits at ``(i + 0.5) * source / target - 0.5`` (computed in float32, as OpenCV does), its
    weights come from the cubic kernel with ``a = -0.75`` (float32), and indices outside
    ``[0, source)`` are clamped (replicated border).

    Args:
        source: Input length, >= 1.
        target: Output length, >= 1.

    Returns:
        (indices (target, 4) intp, weights (target, 4) float64 holding float32 values).
    """
    scale = 1.0 / (target / source)
    position = ((np.arange(target, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    start = np.floor(position)
    x = (position - start).astype(np.float32)
    a = np.float32(CUBIC_A)
    one = np.float32(1.0)
    weights = np.empty((target, 4), np.float32)
    weights[:, 0] = ((a * (x + one) - 5 * a) * (x + one) + 8 * a) * (x + one) - 4 * a
    weights[:, 1] = ((a + 2) * x - (a + 3)) * x * x + one
    weights[:, 2] = ((a + 2) * (one - x) - (a + 3)) * (one - x) * (one - x) + one
    weights[:, 3] = one - weights[:, 0] - weights[:, 1] - weights[:, 2]
    indices = start.astype(np.intp)[:, None] + np.arange(-1, 3)
    return np.clip(indices, 0, source - 1), weights.astype(np.float64)


WHOLE_RESIZE_MAX_PIXELS = 2_000_000
"""Photos with at most this many pixels are resized whole by ``cv2.resize`` in float64;
larger ones through the gathered taps (:func:`resize_gathered`). The two cost the same at
about 2 megapixels (10 ms each on 2 Zen 4 cores; ``benchmarks/network.py`` prints both);
below, the whole resize is faster (0.5 ms at 256x256 against 11 ms), above, the gathered
one (12 ms at 12 megapixels against 53 ms)."""


def preprocess_at(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.float32]:
    """Resize and normalise an RGB photo to a given network input size, in float64.

    The official MiDaS and Depth Anything V2 transforms compute the same thing once the size is
    chosen (/255 in float64, ``cv2.INTER_CUBIC`` in float64, ImageNet mean and std in float64,
    one cast to float32). Three ways to the same numbers, picked by size:

    - the photo already has the network size: no resize (``cv2.resize`` to the same size is
      a copy), each uint8 value maps through a 256-entry table per channel computed in
      float64 (:func:`normalise_uint8`): bit for bit the official result;
    - at most :data:`WHOLE_RESIZE_MAX_PIXELS` pixels: ``cv2.resize`` of the whole float64
      photo, the official path itself (:func:`resize_whole`);
    - larger: only the 4 rows and 4 columns per output sample that a bicubic resize reads
      are gathered (:func:`resize_gathered`): a 12-megapixel photo costs a few ms instead of
      290 MB and 50 ms.

    Tested: every path is within 1e-6 of the official float64 ``cv2.resize`` result, and
    the no-resize path equals it bit for bit (measured: the resizing paths differ from it
    by at most one float32 rounding step, 1.2e-7).

    Args:
        image: (H, W, 3) uint8 RGB.
        height: Network input rows.
        width: Network input columns.

    Returns:
        (1, 3, height, width) float32, C-contiguous.
    """
    check_rgb(image)
    if image.shape[:2] == (height, width):
        return normalise_uint8(image)
    if image.shape[0] * image.shape[1] <= WHOLE_RESIZE_MAX_PIXELS:
        return normalise(resize_whole(image, height, width))
    return normalise(resize_gathered(image, height, width))


def resize_whole(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.float64]:
    """Resize the whole photo as the official transform does: float64 / 255, ``INTER_CUBIC``.

    Args:
        image: (H, W, 3) uint8 RGB.
        height: Output rows.
        width: Output columns.

    Returns:
        (height, width, 3) float64 in [0, 1] (bicubic overshoot aside).
    """
    scaled = image.astype(np.float64)
    scaled /= 255.0
    resized = cv2.resize(scaled, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(resized, dtype=np.float64).reshape(height, width, 3)


def resize_gathered(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.float64]:
    """Bicubic resize reading only the pixels it uses: ``cv2.resize``'s float64 numbers.

    A bicubic resize without antialiasing takes 4 rows and 4 columns per output sample, so
    those (4h x 4w of them, tap-major) are gathered from the uint8 photo and combined in
    float64 with OpenCV's weights (:func:`cubic_taps`), horizontally then vertically, as
    OpenCV does. No float copy of the photo is made.

    Args and result as :func:`resize_whole`.
    """
    rows, row_weights = cubic_taps(image.shape[0], height)
    cols, col_weights = cubic_taps(image.shape[1], width)
    gathered = np.take(image[rows.T.ravel()], cols.T.ravel(), axis=1)  # (4h, 4w, 3) uint8
    col_weights = col_weights / 255.0
    across = gathered[:, :width] * col_weights[:, 0, None]
    for tap in range(1, 4):
        across += gathered[:, tap * width : (tap + 1) * width] * col_weights[:, tap, None]
    resized = across[:height] * row_weights[:, 0, None, None]
    for tap in range(1, 4):
        resized += across[tap * height : (tap + 1) * height] * row_weights[:, tap, None, None]
    return resized


def normalise(resized: NDArray[np.float64]) -> NDArray[np.float32]:
    """Subtract the ImageNet mean, divide by its std (float64, in place), CHW float32.

    Args:
        resized: (h, w, 3) float64 RGB in [0, 1]; overwritten.

    Returns:
        (1, 3, h, w) float32, C-contiguous.
    """
    resized -= _MEAN
    resized /= _STD
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)


def normalise_uint8(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Normalise a photo that needs no resize: one float64-computed table per channel.

    ``(value / 255 - mean) / std`` for all 256 values, in float64 and then rounded to
    float32, exactly as the official transform computes each pixel.

    Args:
        image: (h, w, 3) uint8 RGB.

    Returns:
        (1, 3, h, w) float32, C-contiguous.
    """
    out = np.empty((1, 3, image.shape[0], image.shape[1]), np.float32)
    for channel in range(3):
        np.take(_TABLE[channel], image[:, :, channel], out=out[0, channel])
    return out


_MEAN = np.array(IMAGENET_MEAN, np.float64)
_STD = np.array(IMAGENET_STD, np.float64)
_TABLE = ((np.arange(256, dtype=np.float64)[None] / 255.0 - _MEAN[:, None]) / _STD[:, None]).astype(
    np.float32
)
"""(3, 256) float32: the normalised value of each uint8 value, per channel."""


def resize_disparity(
    disparity: NDArray[np.float32], height: int, width: int
) -> NDArray[np.float32]:
    """Resize the network's disparity bicubically to ``height`` x ``width``.

    OpenCV's ``INTER_CUBIC`` on float32: the kernel, the sample positions and the clamped
    border of the official ``F.interpolate(mode="bicubic", align_corners=False)``, without
    torch (the two agree to float32 rounding, tested). Bicubic overshoot can leave small
    negative values next to zero disparity (sky); they are kept, as the official output has
    them.

    Args:
        disparity: (h, w) float32 at the network's resolution.
        height: Output rows, >= 1.
        width: Output columns, >= 1.

    Returns:
        (height, width) float32, C-contiguous.
    """
    if disparity.shape == (height, width):
        return np.ascontiguousarray(disparity, dtype=np.float32)
    resized = cv2.resize(
        np.ascontiguousarray(disparity, dtype=np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.asarray(resized, dtype=np.float32).reshape(height, width)


def check_rgb(image: Any) -> None:
    """Raise :class:`InputError` unless ``image`` is a non-empty (H, W, 3) uint8 numpy array."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got an array of shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 RGB image, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"expected a non-empty image, got shape {image.shape}")


def resize_bilinear_corners(
    values: NDArray[np.float32], height: int, width: int
) -> NDArray[np.float32]:
    """Resize as ``F.interpolate(mode="bilinear", align_corners=True)`` does, without torch.

    Output sample ``d`` of an axis of ``n`` -> ``m`` samples reads source position
    ``d * float32((n - 1) / (m - 1))`` (0 when ``m`` is 1), linear between its two neighbours,
    in float32: the rows first, then the columns.

    Args:
        values: (h, w) float32 at the network's resolution.
        height: Output rows, >= 1.
        width: Output columns, >= 1.

    Returns:
        (height, width) float32, C-contiguous.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.shape == (height, width):
        return values
    top, bottom, row_weight = _linear_corner_taps(values.shape[0], height)
    across = values[top] * (np.float32(1) - row_weight)[:, None]
    across += values[bottom] * row_weight[:, None]
    left, right, col_weight = _linear_corner_taps(values.shape[1], width)
    out = across[:, left] * (np.float32(1) - col_weight)
    out += across[:, right] * col_weight
    return np.ascontiguousarray(out, dtype=np.float32)


def _linear_corner_taps(
    source: int, target: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    scale = np.float32(source - 1) / np.float32(target - 1) if target > 1 else np.float32(0)
    position = scale * np.arange(target, dtype=np.float32)
    first = np.minimum(np.floor(position).astype(np.intp), source - 1)
    second = np.minimum(first + 1, source - 1)
    weight = np.clip(position - first.astype(np.float32), 0, 1).astype(np.float32)
    return first, second, weight
