"""MiDaS v2.1 small, as depth2mesh runs it: its input size rule, preprocessing and output resize.

The official ``small_transform``: RGB photo (uint8) -> /255 in float64 -> bicubic resize so
that the long side is 256 and both sides are multiples of 32 -> ImageNet normalisation ->
(1, 3, h, w) float32. The network's (h, w) disparity is resized back bicubically (torch's
``bicubic``, ``align_corners=False``, reproduced with OpenCV). The network itself (timm's
``tf_efficientnet_lite3`` and the MiDaS decoder) is in
:mod:`depth2mesh.depth.networks.midas_small_torch`, imported only when torch is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from depth2mesh.depth.networks.base import DepthNetwork
from depth2mesh.depth.preprocess import check_rgb, preprocess_at, resize_disparity

if TYPE_CHECKING:
    from depth2mesh.depth.registry import ModelSpec

NETWORK_SIZE = 256
"""The network's input size: the longer side is resized to this many pixels."""


SIZE_MULTIPLE = 32
"""Both sides of the network input are multiples of this."""


def network_input_size(height: int, width: int) -> tuple[int, int]:
    """Return the network input size (h, w) for a photo of ``height`` x ``width`` pixels.

    The official rule: scale to fit 256x256 keeping the aspect ratio (the longer side becomes
    256, small photos are upsampled), then round each side to the nearest multiple of 32,
    rounding down instead where that would exceed 256, and up where it would give 0.

    Args:
        height: Photo height in pixels, >= 1.
        width: Photo width in pixels, >= 1.

    Returns:
        (h, w), both multiples of 32 in [32, 256].
    """
    if height < 1 or width < 1:
        raise ValueError(f"photo size must be at least 1x1 pixels, got {width}x{height}")
    scale = min(NETWORK_SIZE / height, NETWORK_SIZE / width)
    return _round_to_multiple(scale * height), _round_to_multiple(scale * width)


def _round_to_multiple(size: float) -> int:
    rounded = round(size / SIZE_MULTIPLE) * SIZE_MULTIPLE
    if rounded > NETWORK_SIZE:
        rounded = math.floor(size / SIZE_MULTIPLE) * SIZE_MULTIPLE
    if rounded < SIZE_MULTIPLE:
        rounded = math.ceil(size / SIZE_MULTIPLE) * SIZE_MULTIPLE
    return int(max(rounded, SIZE_MULTIPLE))


def preprocess(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Turn an RGB photo into the network input, exactly as the official ``small_transform``.

    RGB / 255 (float64) -> bicubic resize (``cv2.INTER_CUBIC``) to
    :func:`network_input_size` -> subtract the ImageNet mean, divide by its std -> CHW
    float32 (:func:`depth2mesh.depth.preprocess.preprocess_at`, which picks the cheapest of
    three exact ways there by photo size).

    Args:
        image: (H, W, 3) uint8 RGB.

    Returns:
        (1, 3, h, w) float32, C-contiguous.
    """
    check_rgb(image)
    height, width = network_input_size(image.shape[0], image.shape[1])
    return preprocess_at(image, height, width)


class MidasSmallNetwork(DepthNetwork):
    """MiDaS v2.1 small: 256 pixels on the long side, multiples of 32; one export per file."""

    name: ClassVar[str] = "midas_small"
    size_multiple: ClassVar[int] = SIZE_MULTIPLE
    export_tag: ClassVar[str] = "opset17-v1"
    fixed_input_size: ClassVar[bool] = True

    def preprocess(self, image: NDArray[np.uint8], input_size: int) -> NDArray[np.float32]:
        """:func:`preprocess` (the input size is fixed at 256)."""
        del input_size
        return preprocess(image)

    def resize_output(
        self, output: NDArray[np.float32], height: int, width: int
    ) -> NDArray[np.float32]:
        """Bicubic, as the official code (:func:`depth2mesh.depth.preprocess.resize_disparity`)."""
        return resize_disparity(output, height, width)

    def export_prefix(self, backend: str) -> str:
        """``midas_v21_small``: one export for both backends."""
        del backend
        return "midas_v21_small"

    def build(self, path: Path, spec: ModelSpec) -> Any:
        """Read and check ``path`` (:func:`~.midas_small_torch.read_checkpoint`), build it."""
        del spec
        from depth2mesh.depth.networks.midas_small_torch import build_network, read_checkpoint

        return build_network(read_checkpoint(path))

    def export(self, network: Any, path: Path, *, backend: str, output_name: str) -> None:
        """:func:`~.midas_small_torch.export_onnx` (the same graph for both backends)."""
        del backend
        from depth2mesh.depth.networks.midas_small_torch import export_onnx

        export_onnx(network, path, output_name=output_name)


NETWORK = MidasSmallNetwork()
"""The one instance the registry's MiDaS entries share."""
