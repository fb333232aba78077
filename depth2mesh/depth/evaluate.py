"""Accuracy of relative disparity against ground-truth depth (the affine-invariant protocol).

A model like MiDaS predicts disparity up to an unknown scale and shift, so it is first aligned
to the ground truth in inverse-depth space, then compared as depth. The protocol, the one
``shared/real_midas/README.txt`` reports its figures with:

1. Upsample the disparity to the ground truth's size with bicubic interpolation
   (OpenCV's ``cv2.resize(..., INTER_CUBIC)`` on float32).
2. Valid pixels: ``min_depth < gt < max_depth`` (NYU: 0.1 and 10 m), and finite disparity.
3. ``s, t`` = least squares of ``s * disparity + t ~= 1 / gt`` over the valid pixels.
4. ``depth = 1 / max(s * disparity + t, 1 / max_depth)``: the aligned disparity is clamped,
   which caps the depth at ``max_depth`` and never divides by zero.
5. ``AbsRel = mean(|depth - gt| / gt)`` and ``delta1 = mean(max(depth / gt, gt / depth) < 1.25)``
   over the valid pixels, and ``RMSE = sqrt(mean((depth - gt)^2))`` in metres. No crop.

Metric depth (a metric model's output, a depth file in metres, a pinned mesh's depth) is
scored by :func:`evaluate_depth` with the same valid pixels, cap and metrics but without any
alignment (steps 3 and 4 become ``depth = min(prediction, max_depth)``): a wrong scale counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from PIL import Image

DEFAULT_MIN_DEPTH: Final = 0.1
"""Ground truth at or below this depth, metres, is not evaluated (NYU protocol)."""

DEFAULT_MAX_DEPTH: Final = 10.0
"""Ground truth at or above this depth, metres, is not evaluated, and predictions are capped
here (NYU protocol; KITTI usually uses 80)."""

DELTA1_THRESHOLD: Final = 1.25
"""A pixel counts for ``delta1`` when ``max(pred / gt, gt / pred)`` is below this."""

"""The Keys cubic kernel parameter OpenCV's ``INTER_CUBIC`` uses."""

DepthEncoding = Literal["nyu_png", "kitti_png", "npy"]
"""How a ground-truth depth file is encoded: ``"nyu_png"`` 16-bit PNG in millimetres,
``"kitti_png"`` 16-bit PNG in 1/256 metres, ``"npy"`` a numpy array in metres; 0 is invalid in
all three."""


@dataclass(frozen=True)
class EvalResult:
    """The accuracy of one prediction.

    Attributes:
        abs_rel: Mean absolute relative depth error, ``mean(|depth - gt| / gt)`` (unitless).
        delta1: Fraction of valid pixels with ``max(depth / gt, gt / depth) < 1.25``, in [0, 1].
        scale: The fitted scale ``s`` (1/metres per disparity unit); 1 for metric depth,
            which is not aligned (its disparity ``1 / depth`` is taken as it is).
        shift: The fitted shift ``t`` (1/metres); 0 for metric depth.
        valid_pixels: How many pixels were evaluated.
        rmse: Root mean square depth error, metres.
    """

    abs_rel: float
    delta1: float
    scale: float
    shift: float
    valid_pixels: int
    rmse: float


def evaluate_disparity(
    disparity: npt.ArrayLike,
    gt_depth: npt.ArrayLike,
    *,
    valid: npt.ArrayLike | None = None,
    min_depth: float = DEFAULT_MIN_DEPTH,
    max_depth: float = DEFAULT_MAX_DEPTH,
) -> EvalResult:
    """Evaluate relative disparity against ground-truth depth (see the module docstring).

    Args:
        disparity: (h, w) any real dtype, relative inverse depth (larger = nearer). Resized to
            the ground truth's size with bicubic interpolation when the sizes differ.
        gt_depth: (H, W) any real dtype, ground-truth depth in metres; 0, negative or
            non-finite values are invalid.
        valid: (H, W) bool, optional: further restricts the evaluated pixels.
        min_depth: Ground truth must be above this, metres (0 <= min_depth < max_depth).
        max_depth: Ground truth must be below this, metres; predictions are capped here.

    Returns:
        The metrics and the fitted alignment.

    Raises:
        ValueError: Bad shapes, a bad depth range, or fewer than two valid pixels.
    """
    d, gt, mask = _prepare(disparity, gt_depth, valid, min_depth, max_depth, cv2.INTER_CUBIC)
    x = d[mask]
    target = 1.0 / gt[mask]
    design = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, target, rcond=None)
    aligned = np.maximum(scale * x + shift, 1.0 / max_depth)
    return _scores(1.0 / aligned, gt[mask], float(scale), float(shift))


def evaluate_depth(
    depth: npt.ArrayLike,
    gt_depth: npt.ArrayLike,
    *,
    valid: npt.ArrayLike | None = None,
    min_depth: float = DEFAULT_MIN_DEPTH,
    max_depth: float = DEFAULT_MAX_DEPTH,
) -> EvalResult:
    """Evaluate metric depth against ground-truth depth, without any alignment.

    The same protocol as :func:`evaluate_disparity` (valid pixels, predictions capped at
    ``max_depth``, the same metrics) but the prediction is taken as it is: metres against
    metres, so a wrong scale or shift counts in full. Pixels where the prediction is not a
    positive finite number (a hole of a depth file) are not evaluated.

    Args:
        depth: (h, w) any real dtype, predicted depth in metres. Resized to the ground
            truth's size with bilinear interpolation when the sizes differ.
        gt_depth: (H, W) ground-truth metres, as for :func:`evaluate_disparity`.
        valid: (H, W) bool, optional, as for :func:`evaluate_disparity`.
        min_depth: Ground truth must be above this, metres.
        max_depth: Ground truth must be below this, metres; predictions are capped here.

    Returns:
        The metrics, with ``scale`` 1 and ``shift`` 0 (no alignment).

    Raises:
        ValueError: Bad shapes, a bad depth range, or fewer than two valid pixels.
    """
    z, gt, mask = _prepare(depth, gt_depth, valid, min_depth, max_depth, cv2.INTER_LINEAR)
    with np.errstate(invalid="ignore"):
        mask &= z > 0
    _check_count(mask, min_depth, max_depth)
    return _scores(np.minimum(z[mask], max_depth), gt[mask], 1.0, 0.0)


def _prepare(
    prediction: npt.ArrayLike,
    gt_depth: npt.ArrayLike,
    valid: npt.ArrayLike | None,
    min_depth: float,
    max_depth: float,
    interpolation: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Check the inputs; return the prediction at the truth's size, the truth and the mask.

    The mask holds the pixels with ground truth in (min_depth, max_depth), a finite
    prediction, and ``valid``; at least two of them.
    """
    d = np.asarray(prediction)
    gt = np.asarray(gt_depth)
    if d.ndim != 2 or gt.ndim != 2:
        raise ValueError(
            f"prediction and gt_depth must be 2-D arrays, got shapes {d.shape} and {gt.shape}"
        )
    if d.size == 0 or gt.size == 0:
        raise ValueError(f"prediction and gt_depth must not be empty, got {d.shape}, {gt.shape}")
    if not (math.isfinite(min_depth) and math.isfinite(max_depth) and 0 <= min_depth < max_depth):
        raise ValueError(
            "depth range must satisfy 0 <= min_depth < max_depth, both finite, got "
            f"{min_depth} and {max_depth}"
        )
    gt = gt.astype(np.float64)
    if d.shape != gt.shape:
        d = cv2.resize(d.astype(np.float32), gt.shape[::-1], interpolation=interpolation)
    d = d.astype(np.float64)

    with np.errstate(invalid="ignore"):
        mask = (gt > min_depth) & (gt < max_depth) & np.isfinite(d)
    if valid is not None:
        extra = np.asarray(valid)
        if extra.shape != gt.shape:
            raise ValueError(
                f"valid must have the ground truth's shape {gt.shape}, got {extra.shape}"
            )
        mask &= extra.astype(bool)
    _check_count(mask, min_depth, max_depth)
    return d, gt, mask


def _check_count(mask: NDArray[np.bool_], min_depth: float, max_depth: float) -> None:
    count = int(mask.sum())
    if count < 2:
        raise ValueError(
            f"need at least 2 valid pixels ({min_depth} < gt < {max_depth} m), got {count}"
        )


def _scores(
    depth: NDArray[np.float64], truth: NDArray[np.float64], scale: float, shift: float
) -> EvalResult:
    """The metrics of depth against truth (both (N,) metres, over the valid pixels)."""
    abs_rel = float(np.mean(np.abs(depth - truth) / truth))
    delta1 = float(np.mean(np.maximum(depth / truth, truth / depth) < DELTA1_THRESHOLD))
    rmse = float(np.sqrt(np.mean((depth - truth) ** 2)))
    return EvalResult(abs_rel, delta1, scale, shift, int(truth.size), rmse)


def load_ground_truth_depth(
    path: str | Path, *, encoding: DepthEncoding | None = None
) -> NDArray[np.float32]:
    """Read a ground-truth depth file as metres.

    Args:
        path: The file.
        encoding: ``"nyu_png"`` (16-bit PNG, millimetres: NYU Depth V2 / BTS ``sync_depth``),
            ``"kitti_png"`` (16-bit PNG, value / 256 = metres: KITTI depth benchmark, sparse)
            or ``"npy"`` (a 2-D numpy array in metres). None: ``"npy"`` for a ``.npy`` file;
            a PNG must say which, since both PNG encodings look alike.

    Returns:
        (H, W) float32 depth in metres, 0 where there is no measurement.

    Raises:
        ValueError: Unknown or missing encoding, or the content does not fit it.
    """
    path = Path(path)
    if encoding is None:
        if path.suffix.lower() != ".npy":
            raise ValueError(
                f"say how {path.name} is encoded: encoding='nyu_png' (millimetres) or "
                "'kitti_png' (1/256 metres), got none"
            )
        encoding = "npy"
    if encoding == "npy":
        depth = np.load(path, allow_pickle=False)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
            raise ValueError(
                f"{path.name} must hold a 2-D array of depths in metres, got {depth.dtype} "
                f"{depth.shape}"
            )
        metres: NDArray[np.float32] = depth.astype(np.float32)
        with np.errstate(invalid="ignore"):
            metres[~(np.isfinite(metres) & (metres > 0))] = 0.0
        return metres
    if encoding in ("nyu_png", "kitti_png"):
        raw = _read_16bit_png(path)
        divisor = 1000.0 if encoding == "nyu_png" else 256.0
        return (raw.astype(np.float64) / divisor).astype(np.float32)
    raise ValueError(f"encoding must be 'nyu_png', 'kitti_png' or 'npy', got {encoding!r}")


def load_ground_truth_disparity(path: str | Path, *, scale: float = 4.0) -> NDArray[np.float32]:
    """Read a Middlebury 2003 8-bit ground-truth disparity PNG as disparity in pixels.

    Disparity is inverse depth (``depth = f * B / disparity`` for focal length ``f`` and
    baseline ``B``), so ``1 / disparity`` can serve as ``gt_depth`` for
    :func:`evaluate_disparity` in units of ``f * B`` (set ``min_depth``/``max_depth`` in the
    same units).

    Args:
        path: The PNG (``disp2.png``, ``disp6.png``).
        scale: Stored value per pixel of disparity: 4 for the quarter-size images.

    Returns:
        (H, W) float32 disparity in pixels, 0 where unknown.

    Raises:
        ValueError: The scale is not positive or the file is not an 8-bit single-channel image.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    with Image.open(path) as image:
        if image.mode != "L":
            raise ValueError(f"{Path(path).name} must be an 8-bit grayscale PNG, got {image.mode}")
        raw = np.asarray(image, dtype=np.uint8)
    return (raw.astype(np.float64) / scale).astype(np.float32)


def _read_16bit_png(path: Path) -> NDArray[np.uint16]:
    with Image.open(path) as image:
        if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(
                f"{path.name} must be a 16-bit single-channel PNG, got mode {image.mode}"
            )
        raw = np.asarray(image)
    if raw.ndim != 2 or raw.min(initial=0) < 0 or raw.max(initial=0) > 65535:
        raise ValueError(f"{path.name} must hold 16-bit depth values, got {raw.dtype} {raw.shape}")
    return raw.astype(np.uint16)
