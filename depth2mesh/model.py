"""The depth stage: MiDaS v2.1 small on timm, its preprocessing, weights and inference.

This is the only module that imports torch. The network is built from timm's
``tf_efficientnet_lite3`` (TF "same" padding, ReLU6, BatchNorm eps 1e-3) plus the MiDaS
decoder, laid out so that its ``state_dict`` has exactly the key names, shapes and dtypes of
the official ``midas_v21_small_256.pt``: the official file loads with a strict
``load_state_dict``, nothing renamed.

Output convention: the network predicts **disparity**, relative inverse depth (larger is
nearer, 0 for sky, unknown scale and shift). It is never called depth here.

Backends: the eager network here is the reference ("torch"); :func:`load_model` can also
export it to ONNX once (:func:`export_onnx`, cached by :mod:`depth2mesh.backends`) and run
it on ONNX Runtime or OpenVINO, which are several times faster on CPUs. ``backend="auto"``
picks the fastest one installed.
"""

from __future__ import annotations

import inspect
import math
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from torch import nn

from depth2mesh import backends
from depth2mesh.backends import NetworkRunner
from depth2mesh.errors import DeviceError, InputError, UnofficialWeightsWarning, WeightsError
from depth2mesh.weights import (
    OFFICIAL_SHA256,
    ProgressCallback,
    cache_file,
    file_sha256,
    resolve_weights,
)

NETWORK_SIZE = 256
"""The network's input size: the longer side is resized to this many pixels."""

SIZE_MULTIPLE = 32
"""Both sides of the network input are multiples of this."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEVICES = ("auto", "cpu", "cuda", "mps")
"""Accepted values of ``device``; "auto" picks cuda, then mps, then cpu."""


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


# --------------------------------------------------------------------------- preprocessing


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
    :func:`network_input_size` -> subtract the ImageNet mean, divide by its std -> CHW.

    Args:
        image: (H, W, 3) uint8 RGB.

    Returns:
        (1, 3, h, w) float32, C-contiguous.
    """
    _check_rgb(image)
    height, width = network_input_size(image.shape[0], image.shape[1])
    scaled = image.astype(np.float64) / 255.0
    resized = cv2.resize(scaled, (width, height), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    chw = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
    return chw


def _check_rgb(image: Any) -> None:
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got an array of shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 RGB image, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"expected a non-empty image, got shape {image.shape}")


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
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe pickle"
        raise WeightsError(
            f"{path} was refused: it is not a plain tensor checkpoint and loading it would run "
            f"code ({first[:160]}); use the official midas_v21_small_256.pt"
        ) from error
    except Exception as error:  # torch.load on arbitrary bytes raises many kinds of errors
        if isinstance(error, PermissionError):
            raise WeightsError(f"{path} cannot be read: permission denied") from error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint (truncated or another kind of file: "
            f"{reason[:160]}); download it again or pass another --weights"
        ) from error
    if isinstance(loaded, Mapping) and "model" in loaded and "optimizer" in loaded:
        loaded = loaded["model"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, not a MiDaS state dict of tensors; "
            "pass the official midas_v21_small_256.pt"
        )
    state = {str(key): value for key, value in loaded.items()}
    _check_state(path, state)
    return state


def _check_state(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    expected = expected_state_shapes()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise WeightsError(
            f"{path} is not a MiDaS v2.1 small checkpoint: {len(missing)} keys missing, "
            f"{len(unexpected)} unexpected (e.g. {example!r}); pass midas_v21_small_256.pt"
        )
    for key, (shape, dtype) in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise WeightsError(
                f"{path} does not fit MiDaS v2.1 small: {key} is {tuple(tensor.shape)} "
                f"{tensor.dtype}, expected {shape} {dtype}; pass midas_v21_small_256.pt"
            )


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


def export_onnx(network: MidasSmall, destination: str | Path) -> None:
    """Write the network as an ONNX graph (opset 17) with dynamic height and width.

    TorchScript-based exporter (``dynamo=False``): a few seconds, where the dynamo exporter
    takes minutes on this network. Input ``input`` (1, 3, h, w) float32, output
    ``disparity`` (1, h, w) float32; h and w multiples of 32.

    Args:
        network: The loaded network (any device; exported from a CPU copy).
        destination: The ``.onnx`` file to write (one file, weights included).
    """
    copy = exportable_network(network)
    sample = torch.zeros(1, 3, NETWORK_SIZE, NETWORK_SIZE)
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices, not actionable here
        torch.onnx.export(
            copy,
            (sample,),
            str(destination),
            input_names=[backends.INPUT_NAME],
            output_names=[backends.OUTPUT_NAME],
            dynamic_axes={
                backends.INPUT_NAME: {2: "height", 3: "width"},
                backends.OUTPUT_NAME: {1: "height", 2: "width"},
            },
            opset_version=17,
            do_constant_folding=True,
            **options,
        )


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class DepthModel:
    """A loaded MiDaS small network: its backend, and where its weights came from.

    Attributes:
        device: The torch device it runs on.
        weights_path: The checkpoint file.
        weights_sha256: Its sha256 (hex).
        weights_origin: "argument", "environment", "cache" or "download".
        backend: What runs :func:`predict_disparity`: "torch" (:attr:`network` itself),
            "onnxruntime" or "openvino" (``runner``, compiled from ``export_path``).
        runner: The compiled network of an exported backend; None for "torch".
        export_path: The cached ONNX export the runner was compiled from; None for "torch".
    """

    device: torch.device
    weights_path: Path
    weights_sha256: str
    weights_origin: str
    backend: str = "torch"
    runner: NetworkRunner | None = field(default=None, repr=False, compare=False)
    export_path: Path | None = None
    eager_network: MidasSmall | None = field(default=None, repr=False, compare=False)
    """The eager network once built (always for "torch"); use :attr:`network`."""

    @property
    def official(self) -> bool:
        """Whether the weights are the official release (by sha256)."""
        return self.weights_sha256 == OFFICIAL_SHA256

    @property
    def network(self) -> MidasSmall:
        """The eager PyTorch network, in eval mode, on ``device``.

        Exported backends do not need it once their export is cached, so for them it is read
        from ``weights_path`` on first use (after checking that the file still has
        ``weights_sha256``).

        Raises:
            WeightsError: The weights file changed or vanished since :func:`load_model`.
        """
        network = self.eager_network
        if network is None:
            try:
                digest = file_sha256(self.weights_path)
            except OSError as error:
                raise WeightsError(
                    f"{self.weights_path} cannot be read any more ({error.strerror or error}); "
                    "load the model again"
                ) from error
            if digest != self.weights_sha256:
                raise WeightsError(
                    f"{self.weights_path} changed since the model was loaded (sha256 "
                    f"{digest[:12]}..., loaded {self.weights_sha256[:12]}...); load it again"
                )
            network = build_network(read_checkpoint(self.weights_path)).to(self.device)
            object.__setattr__(self, "eager_network", network)  # a cache, not a new state
        return network


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


def resolve_device(device: str) -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:N" or "mps" into a present torch device.

    Args:
        device: The requested device; "auto" is cuda if present, else mps, else cpu.

    Returns:
        The device.

    Raises:
        DeviceError: Unknown name, or the device is not present on this machine.
    """
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":", 1)[0]
    if kind not in DEVICES or (":" in name and kind != "cuda"):
        raise DeviceError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was requested but no CUDA GPU is usable here "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            "device 'mps' was requested but Apple's Metal backend is not available here; "
            "use --device cpu or --device auto"
        )
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"invalid device {device!r}: {error}") from error


def load_model(
    weights: str | Path | None = None,
    *,
    device: str = "cpu",
    backend: str = "auto",
    progress: ProgressCallback | None = None,
) -> DepthModel:
    """Load MiDaS v2.1 small, finding or downloading its weights, on the chosen backend.

    Weights are found as :func:`depth2mesh.weights.resolve_weights` describes: ``weights``,
    ``DEPTH2MESH_WEIGHTS``, the torch.hub cache, then a verified download. A file whose
    sha256 is not the official one still loads when its keys and shapes match, with one
    :class:`~depth2mesh.errors.UnofficialWeightsWarning`.

    For "onnxruntime" and "openvino", the network is exported to ONNX the first time these
    weights are used (a few seconds) and the export is cached beside the weights file (else
    in ``~/.cache/depth2mesh``), keyed by the weights' sha256 (see
    :mod:`depth2mesh.backends`); later loads compile the cached file. The eager network is
    always loaded too (``DepthModel.network``).

    Args:
        weights: Path of a checkpoint, or None to search.
        device: "cpu" (default), "cuda", "cuda:N", "mps" or "auto".
        backend: "auto" (default: on the CPU the fastest installed of OpenVINO and ONNX
            Runtime, else torch; on a GPU torch), "torch", "onnxruntime" or "openvino".
        progress: Download progress callback ``(bytes_done, bytes_total | None)``.

    Returns:
        The model, ready for :func:`predict_disparity`.

    Raises:
        WeightsError: No usable weights (the message says how to get them).
        DeviceError: The device or backend is unknown, absent, or they do not go together.
    """
    target = resolve_device(device)
    chosen = backends.choose_backend(backend, target.type)
    hub_cache = cache_file(torch.hub.get_dir())
    found = resolve_weights(weights, cache_path=hub_cache, progress=progress)
    digest = file_sha256(found.path)
    network: MidasSmall | None = None
    export_path: Path | None = None
    dirs = backends.export_dirs(found.path)
    if chosen != "torch":
        export_path = backends.find_export(digest, dirs)
    if export_path is None:  # the eager network is needed: to run, or to export
        network = build_network(read_checkpoint(found.path)).to(target)
    if digest != OFFICIAL_SHA256:
        warnings.warn(
            f"{found.path} is not the official MiDaS v2.1 small release (sha256 "
            f"{digest[:12]}..., official {OFFICIAL_SHA256[:12]}...); its keys and shapes fit, "
            "so it is used as is",
            UnofficialWeightsWarning,
            stacklevel=2,
        )
    loaded = DepthModel(target, found.path, digest, found.origin, eager_network=network)
    if chosen == "torch":
        return loaded

    def export(path: Path) -> None:
        export_onnx(loaded.network, path)

    cuda_index = None
    if target.type == "cuda":
        cuda_index = target.index if target.index is not None else torch.cuda.current_device()
    try:
        if export_path is None:
            export_path, _ = backends.cached_export(digest, export, dirs)
        runner = backends.create_runner(chosen, export_path, cuda_device=cuda_index)
    except Exception as error:  # the exporter and the runtimes raise many kinds of errors
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
        if backends.check_backend(backend) == "auto":
            warnings.warn(
                f"the {chosen} backend is unusable here ({reason}); the network runs on "
                "eager torch instead (slower)",
                UserWarning,
                stacklevel=2,
            )
            return loaded
        if isinstance(error, DeviceError):
            raise
        raise DeviceError(
            f"backend {chosen!r} could not export the network ({reason}); use --backend torch"
        ) from error
    return DepthModel(
        target,
        found.path,
        digest,
        found.origin,
        chosen,
        runner,
        export_path,
        eager_network=network,
    )


def _forward(model: DepthModel, network_input: NDArray[np.float32]) -> torch.Tensor:
    """Run the model's backend on (1, 3, h, w) float32; return (1, h, w) on ``model.device``.

    Call under ``torch.inference_mode()``.
    """
    if model.runner is None:
        tensor = torch.from_numpy(np.ascontiguousarray(network_input, dtype=np.float32))
        out: torch.Tensor = model.network(tensor.to(model.device))
        return out
    return torch.from_numpy(model.runner(network_input)).to(model.device)


def run_network(model: DepthModel, network_input: NDArray[np.float32]) -> NDArray[np.float32]:
    """Run the network on a preprocessed input, on the model's backend.

    Args:
        model: From :func:`load_model`.
        network_input: (1, 3, h, w) float32 from :func:`preprocess`.

    Returns:
        (h, w) float32 disparity at the network's resolution.
    """
    with torch.inference_mode():
        out = _forward(model, network_input)
        return np.asarray(out[0].float().cpu().numpy(), dtype=np.float32)


def predict_disparity(image: NDArray[np.uint8], model: DepthModel) -> NDArray[np.float32]:
    """Predict MiDaS disparity for a photo, at the photo's own resolution.

    Preprocess as the official transform does, run the network on the model's backend
    (the eager network under ``torch.inference_mode()``, or its compiled export),
    upsample bicubically (``align_corners=False``) to the photo's size. Bicubic overshoot
    can leave small negative values next to zero disparity (sky); they are kept, as the
    official output has them.

    Args:
        image: (H, W, 3) uint8 RGB, already upright (EXIF orientation applied).
        model: From :func:`load_model`.

    Returns:
        (H, W) float32 disparity: relative inverse depth, larger is nearer.
    """
    network_input = preprocess(image)
    with torch.inference_mode():
        out = _forward(model, network_input)
        full = F.interpolate(
            out[:, None], size=image.shape[:2], mode="bicubic", align_corners=False
        )
        return np.asarray(full[0, 0].float().cpu().numpy(), dtype=np.float32)
