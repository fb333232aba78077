"""The MiDaS v2.1 small network in PyTorch: its modules, its checkpoint, its ONNX export.

The network is built from timm's ``tf_efficientnet_lite3`` (TF "same" padding, ReLU6,
BatchNorm eps 1e-3) plus the MiDaS decoder, laid out so that its ``state_dict`` has exactly
the key names, shapes and dtypes of the official ``midas_v21_small_256.pt``: the official
file loads with a strict ``load_state_dict``, nothing renamed.

Imported only by :class:`depth2mesh.depth.networks.midas_small.MidasSmallNetwork` when torch
is needed (to run the eager network, the parity reference, or to export it): a conversion on a
cached export of the fast backends never imports torch (about 1.3 s saved per process).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from torch import nn

from depth2mesh.depth.networks.base import INPUT_NAME
from depth2mesh.depth.networks.midas_small import NETWORK_SIZE  # the export's sample: 256x256
from depth2mesh.depth.networks.torch_common import check_state, load_tensor_file, onnx_export

# --------------------------------------------------------------------------- network


class ResidualConvUnit(nn.Module):
    """ReLU -> 3x3 conv -> ReLU -> 3x3 conv, plus the input (MiDaS ``ResidualConvUnit_custom``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, h, w) to (N, C, h, w)."""
        out: torch.Tensor = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


class FeatureFusionBlock(nn.Module):
    """Fuse a coarser path with a skip feature, upsample x2, project with a 1x1 conv.

    ``resConfUnit1`` refines the skip input (when given), which is added to the coarser path;
    ``resConfUnit2`` refines the sum; bilinear x2 upsampling (align_corners=True) follows, then
    ``out_conv`` halves the channels when ``expand`` is set.
    """

    def __init__(self, channels: int, *, expand: bool) -> None:
        super().__init__()
        out_channels = channels // 2 if expand else channels
        self.out_conv = nn.Conv2d(channels, out_channels, kernel_size=1, bias=True)
        self.resConfUnit1 = ResidualConvUnit(channels)  # checkpoint key name
        self.resConfUnit2 = ResidualConvUnit(channels)  # checkpoint key name

    def forward(self, path: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Map (N, C, h, w) [+ skip (N, C, h, w)] to (N, C or C/2, 2h, 2w)."""
        if skip is not None:
            path = path + self.resConfUnit1(skip)
        path = self.resConfUnit2(path)
        path = F.interpolate(path, scale_factor=2.0, mode="bilinear", align_corners=True)
        out: torch.Tensor = self.out_conv(path)
        return out


class Decoder(nn.Module):
    """The MiDaS small decoder (``scratch`` in the checkpoint)."""

    def __init__(self, encoder_channels: tuple[int, int, int, int], features: int = 64) -> None:
        super().__init__()
        widths = (features, features * 2, features * 4, features * 8)
        self.layer1_rn = nn.Conv2d(encoder_channels[0], widths[0], 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(encoder_channels[1], widths[1], 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(encoder_channels[2], widths[2], 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(encoder_channels[3], widths[3], 3, padding=1, bias=False)
        self.refinenet4 = FeatureFusionBlock(widths[3], expand=True)
        self.refinenet3 = FeatureFusionBlock(widths[2], expand=True)
        self.refinenet2 = FeatureFusionBlock(widths[1], expand=True)
        self.refinenet1 = FeatureFusionBlock(widths[0], expand=False)
        self.output_conv = nn.Sequential(
            nn.Conv2d(features, features // 2, kernel_size=3, padding=1),
            nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
            nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1),
            nn.ReLU(),
        )

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Map the four encoder features to disparity (N, 1, H, W)."""
        f1, f2, f3, f4 = features
        path = self.refinenet4(self.layer4_rn(f4))
        path = self.refinenet3(path, self.layer3_rn(f3))
        path = self.refinenet2(path, self.layer2_rn(f2))
        path = self.refinenet1(path, self.layer1_rn(f1))
        out: torch.Tensor = self.output_conv(path)
        return out


class Encoder(nn.Module):
    """EfficientNet-Lite3 split into the four stages MiDaS reads (``pretrained``).

    ``layer1`` = stem conv, stem BN (with its ReLU6), a placeholder where the official model
    keeps a separate activation module, blocks 0-1; ``layer2`` = block 2; ``layer3`` =
    blocks 3-4; ``layer4`` = blocks 5-6. Output channels 32, 48, 136, 384.
    """

    channels = (32, 48, 136, 384)

    def __init__(self) -> None:
        super().__init__()
        import timm  # deferred: timm's import is slow and only the network needs it

        backbone: Any = timm.create_model("tf_efficientnet_lite3", pretrained=False)
        blocks = backbone.blocks
        self.layer1 = nn.Sequential(
            backbone.conv_stem, backbone.bn1, nn.Identity(), blocks[0], blocks[1]
        )
        self.layer2 = nn.Sequential(blocks[2])
        self.layer3 = nn.Sequential(blocks[3], blocks[4])
        self.layer4 = nn.Sequential(*blocks[5:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Map a normalised image (N, 3, H, W) to features at strides 4, 8, 16, 32."""
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return f1, f2, f3, f4


class MidasSmall(nn.Module):
    """MiDaS v2.1 small: (N, 3, h, w) normalised RGB -> (N, h, w) disparity, h, w % 32 == 0."""

    def __init__(self) -> None:
        super().__init__()
        self.pretrained = Encoder()
        self.scratch = Decoder(Encoder.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return disparity (N, h, w), non-negative, at the input's size."""
        disparity: torch.Tensor = self.scratch(self.pretrained(x))
        return disparity.squeeze(1)


# --------------------------------------------------------------------------- weights


def expected_state_shapes() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return ``{key: (shape, dtype)}`` of the network's state dict (= the official file's)."""
    return {key: (tuple(value.shape), value.dtype) for key, value in _template().items()}


_TEMPLATE: dict[str, torch.Tensor] | None = None


def _template() -> dict[str, torch.Tensor]:
    global _TEMPLATE  # built once, on the meta device
    if _TEMPLATE is None:
        with torch.device("meta"):
            _TEMPLATE = dict(MidasSmall().state_dict())
    return _TEMPLATE


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a MiDaS checkpoint safely and check it against the network.

    ``torch.load(..., weights_only=True)``: a .pt file is a pickle, and this never executes
    code from it. A ``{"model": ..., "optimizer": ...}`` training checkpoint is unwrapped as
    the official loader does.

    Args:
        path: A ``.pt`` file.

    Returns:
        The state dict, with every key, shape and dtype of the official checkpoint.

    Raises:
        WeightsError: Unreadable, truncated or not a checkpoint; keys, shapes or dtypes differ.
    """
    path = Path(path)
    release = "midas_v21_small_256.pt"
    state = load_tensor_file(path, release=release, kind="MiDaS ", unwrap_training=True)
    check_state(path, state, expected_state_shapes(), "MiDaS v2.1 small", release)
    return state


# --------------------------------------------------------------------------- export


class _StaticSameConv2d(nn.Conv2d):
    """A TF "same" strided convolution with its padding fixed for inputs divisible by the stride.

    timm's ``Conv2dSame`` computes its padding from the input size at every call, which an
    exported graph has to carry as shape arithmetic. For an input size ``n`` divisible by the
    stride ``s``, the total padding ``max((k - 1) * d + 1 - s, 0)`` does not depend on ``n``;
    network inputs are multiples of 32, so every strided convolution sees such sizes and the
    padding is a constant (left/top gets the smaller half, as TensorFlow does).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            stride=conv.stride,  # type: ignore[arg-type]
            padding=0,
            dilation=conv.dilation,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        self.load_state_dict(conv.state_dict())
        pads: list[int] = []
        for axis in (1, 0):  # F.pad lists the last axis (width) first
            total = max(
                (self.kernel_size[axis] - 1) * self.dilation[axis] + 1 - self.stride[axis], 0
            )
            pads += [total // 2, total - total // 2]
        self.same_pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad with zeros, then convolve without padding."""
        out: torch.Tensor = self._conv_forward(F.pad(x, self.same_pads), self.weight, self.bias)
        return out


def exportable_network(network: MidasSmall) -> MidasSmall:
    """Return a CPU copy of the network with every "same" padding fixed, for export.

    Equal to ``network`` on every input whose sides are multiples of 32 (all network inputs).
    """
    from timm.layers.conv2d_same import Conv2dSame

    copy = MidasSmall()
    copy.load_state_dict(network.state_dict())
    for module in list(copy.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv2dSame):
                setattr(module, name, _StaticSameConv2d(child))
    return copy.eval()


def export_onnx(
    network: MidasSmall, destination: str | Path, *, output_name: str = "disparity"
) -> None:
    """Write the network as an ONNX graph (opset 17) with dynamic height and width.

    TorchScript-based exporter (``dynamo=False``): a few seconds, where the dynamo exporter
    takes minutes on this network. Input ``input`` (1, 3, h, w) float32, output
    ``output_name`` (1, h, w) float32; h and w multiples of 32.

    Args:
        network: The loaded network (any device; exported from a CPU copy).
        destination: The ``.onnx`` file to write (one file, weights included).
        output_name: The graph's output name.
    """
    sample = torch.zeros(1, 3, NETWORK_SIZE, NETWORK_SIZE)
    onnx_export(
        exportable_network(network), {INPUT_NAME: sample}, destination, output_name=output_name
    )


def build_network(state: Mapping[str, torch.Tensor]) -> MidasSmall:
    """Return the network in eval mode on the CPU, holding the tensors of ``state`` themselves.

    Built on the meta device and filled with ``load_state_dict(strict=True, assign=True)``:
    no random initialisation and no second copy of the 85 MB of weights.

    Args:
        state: A checked state dict (see :func:`read_checkpoint`).
    """
    with torch.device("meta"):
        network = MidasSmall()
    network.load_state_dict(state, strict=True, assign=True)
    if any(tensor.is_meta for tensor in (*network.parameters(), *network.buffers())):
        network = MidasSmall()  # a tensor the state dict does not hold: build it for real
        network.load_state_dict(state, strict=True)
    return network.eval()


def upsample_bicubic(
    disparity: NDArray[np.float32], height: int, width: int
) -> NDArray[np.float32]:
    """Resize disparity with torch's bicubic interpolation (``align_corners=False``).

    The official MiDaS resize, kept as the reference that
    :func:`depth2mesh.depth.model.resize_disparity` (OpenCV, no torch) is tested against.

    Args:
        disparity: (h, w) float32.
        height: Output rows.
        width: Output columns.

    Returns:
        (height, width) float32.
    """
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(disparity, dtype=np.float32))[None, None]
        out = F.interpolate(tensor, size=(height, width), mode="bicubic", align_corners=False)
        return np.asarray(out[0, 0].numpy(), dtype=np.float32)
