"""Depth Anything V2 Small, as depth2mesh runs it: input size rule, preprocessing, output resize.

The official ``image2tensor``: RGB / 255 (float64) -> ``cv2.INTER_CUBIC`` resize so that the
shorter side is at least ``input_size`` (default 518) in multiples of 14 -> ImageNet
normalisation -> (1, 3, h, w) float32. The output is resized bilinearly with
``align_corners=True``. The exported graph takes the positional embedding's resampling as two
small matrices (:func:`pos_embed_matrices`), so one export serves every input size. One network
serves the relative model (disparity) and the metric ones (metres): the registry's entries say
which. The network itself is in :mod:`depth2mesh.depth.networks.dav2_small_torch`, imported
only when torch is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from depth2mesh.depth.networks.base import DepthNetwork
from depth2mesh.depth.preprocess import (
    CUBIC_A,
    check_rgb,
    preprocess_at,
    resize_bilinear_corners,
)

if TYPE_CHECKING:
    from depth2mesh.depth.registry import ModelSpec

PATCH = 14
"""Depth Anything V2's patch size: both sides of its network input are multiples of this."""


POS_GRID = 37
"""Side of the patch grid its positional embedding was trained for (518 = 37 x 14 pixels)."""


DAV2_INPUT_SIZE = 518
"""Depth Anything V2's default ``input_size``: the shorter side's least size, pixels."""


def dav2_input_size(height: int, width: int, input_size: int = DAV2_INPUT_SIZE) -> tuple[int, int]:
    """Return Depth Anything V2's network input size (h, w) for a photo of ``height`` x ``width``.

    The official ``Resize(keep_aspect_ratio=True, ensure_multiple_of=14,
    resize_method="lower_bound")``: one scale ``max(input_size / height, input_size / width)``
    for both sides (the shorter side becomes ``input_size``, small photos are upsampled), each
    side then ``np.round(scale * side / 14) * 14`` (half to even), or the ``np.ceil`` of it
    where that falls below ``input_size``.

    Args:
        height: Photo height in pixels, >= 1.
        width: Photo width in pixels, >= 1.
        input_size: The least side, a multiple of 14.

    Returns:
        (h, w), multiples of 14, each at least ``input_size``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"photo size must be at least 1x1 pixels, got {width}x{height}")
    scale = max(input_size / height, input_size / width)
    return _lower_bound_multiple(scale * height, input_size), _lower_bound_multiple(
        scale * width, input_size
    )


def _lower_bound_multiple(size: float, least: int) -> int:
    rounded = int(np.round(size / PATCH) * PATCH)
    if rounded < least:
        rounded = int(np.ceil(size / PATCH) * PATCH)
    return rounded


def preprocess_dav2(
    image: NDArray[np.uint8], input_size: int = DAV2_INPUT_SIZE
) -> NDArray[np.float32]:
    """Turn an RGB photo into Depth Anything V2's input, exactly as ``image2tensor`` does.

    RGB / 255 (float64) -> ``cv2.INTER_CUBIC`` resize (float64, no clipping: the cubic
    overshoot stays) to :func:`dav2_input_size` -> ImageNet mean and std (float64) -> CHW
    float32 (see :func:`preprocess_at`).

    Args:
        image: (H, W, 3) uint8 RGB (a gray photo as three equal channels, as ``cv2.imread``
            gives it).
        input_size: The least side of the network input, a multiple of 14.

    Returns:
        (1, 3, h, w) float32, C-contiguous; h and w multiples of 14.
    """
    check_rgb(image)
    height, width = dav2_input_size(image.shape[0], image.shape[1], input_size)
    return preprocess_at(image, height, width)


def pos_embed_weights(grid: int) -> NDArray[np.float32]:
    """The official positional-embedding resampling along one axis, as a (grid, 37) matrix.

    Row ``d`` holds the weights of torch's ``F.interpolate(mode="bicubic",
    scale_factor=(grid + 0.1) / 37, antialias=False)`` (align_corners False) at output ``d``:
    source position ``(d + 0.5) * s - 0.5`` with ``s = float32(37 / (grid + 0.1))``, cubic
    kernel ``a = -0.75`` on its fraction, the four taps clamped to [0, 36] (weights of clamped
    taps add up). torch's CPU kernel computes the position with a fused multiply-add (the
    product is not rounded) and the kernel in float32; here the position is the float32
    rounding of the exact value and the kernel is evaluated in float64, then rounded: within
    5e-7 of torch's weights (tested), where plain float32 arithmetic is 2.4e-6 away.
    Multiplying the 37 x 37 grid by these matrices on both sides is that resampling.

    Args:
        grid: Patches along the axis (the network input's side / 14), >= 1.

    Returns:
        (grid, 37) float32.
    """
    scale = np.float32(1.0 / ((grid + 0.1) / POS_GRID))
    exact = np.float64(scale) * (np.arange(grid, dtype=np.float64) + 0.5) - 0.5
    position = exact.astype(np.float32)
    index = np.minimum(np.floor(position).astype(np.intp), POS_GRID - 1)
    x = np.clip(position - index.astype(np.float32), 0.0, 1.0).astype(np.float64)
    a = CUBIC_A
    taps = np.empty((grid, 4), np.float64)
    for tap, distance in enumerate((x + 1.0, x, 1.0 - x, 2.0 - x)):
        if tap in (0, 3):  # 1 <= distance <= 2
            taps[:, tap] = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
        else:  # distance <= 1
            taps[:, tap] = ((a + 2) * distance - (a + 3)) * distance * distance + 1.0
    weights = taps.astype(np.float32)
    matrix = np.zeros((grid, POS_GRID), np.float32)
    columns = np.clip(index[:, None] + np.arange(-1, 3), 0, POS_GRID - 1)
    for tap in range(4):
        np.add.at(matrix, (np.arange(grid), columns[:, tap]), weights[:, tap])
    return matrix


def pos_embed_matrices(rows: int, cols: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The (rows, 37) and (cols, 37) resampling matrices of a ``rows`` x ``cols`` patch grid.

    Identity matrices for the 37 x 37 grid, which the official code does not resample (a
    37-patch side of another grid is resampled: the scale is 37.1 / 37, not 1); else
    :func:`pos_embed_weights` per axis.

    Returns:
        Two float32 matrices, C-contiguous.
    """
    if rows == cols == POS_GRID:
        identity = np.eye(POS_GRID, dtype=np.float32)
        return identity, identity.copy()
    return pos_embed_weights(rows), pos_embed_weights(cols)


class DepthAnythingV2SmallNetwork(DepthNetwork):
    """Depth Anything V2 Small (ViT-S/14 + DPT): any multiple of 14 from 70 to 1400 pixels.

    Two exports per weights file: bilinear resizes as ONNX ``Resize`` for OpenVINO
    ("dav2_small"), as gathers that keep torch's sample positions for ONNX Runtime
    ("dav2_small_ort"), whose ``Resize`` moved large outputs by up to 6e-5 of their range;
    each form is the one that stays closest to the official output on its runtime (tested).
    """

    name: ClassVar[str] = "dav2_small"
    size_multiple: ClassVar[int] = PATCH
    export_tag: ClassVar[str] = "opset17-posmat-v1"
    least_input_size: ClassVar[int] = 70
    largest_input_size: ClassVar[int] = 1400

    def preprocess(self, image: NDArray[np.uint8], input_size: int) -> NDArray[np.float32]:
        """:func:`preprocess_dav2` at ``input_size``."""
        return preprocess_dav2(image, input_size)

    def graph_inputs(self, network_input: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        """The positional embedding's resampling matrices of this input's patch grid."""
        return pos_embed_matrices(network_input.shape[2] // PATCH, network_input.shape[3] // PATCH)

    def resize_output(
        self, output: NDArray[np.float32], height: int, width: int
    ) -> NDArray[np.float32]:
        """Bilinear with corners aligned, as the official code."""
        return resize_bilinear_corners(output, height, width)

    def export_prefix(self, backend: str) -> str:
        """The ONNX Runtime export is "dav2_small_ort", the OpenVINO one "dav2_small"."""
        return "dav2_small_ort" if backend == "onnxruntime" else "dav2_small"

    def build(self, path: Path, spec: ModelSpec) -> Any:
        """Read and check ``path`` strictly, build the network with the model's head."""
        from depth2mesh.depth.networks import dav2_small_torch

        state = dav2_small_torch.read_checkpoint(path, spec.title)
        return dav2_small_torch.build_network(state, spec.max_depth)

    def export(self, network: Any, path: Path, *, backend: str, output_name: str) -> None:
        """:func:`~.dav2_small_torch.export_onnx`, gathered resizes for ONNX Runtime."""
        from depth2mesh.depth.networks.dav2_small_torch import export_onnx

        export_onnx(network, path, gathered=backend == "onnxruntime", output_name=output_name)


NETWORK = DepthAnythingV2SmallNetwork()
"""The one instance the registry's Depth Anything V2 Small entries share."""
