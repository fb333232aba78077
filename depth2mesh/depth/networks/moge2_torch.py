"""MoGe-2 in PyTorch: the network built from a checkpoint's ``model_config``, and its export.

Written from the published description (Wang et al., 2025, "MoGe-2"; microsoft/MoGe, MIT):

- encoder: a DINOv2 ViT/14 (``dinov2_vits14``, ``_vitb14`` or ``_vitl14``) on the photo
  resized to ``14 rows`` x ``14 cols`` pixels; the normalised tokens of a few of its blocks
  (``intermediate_layers``: a count of last blocks, or a list of indices), each projected by a
  1x1 convolution to ``dim_out`` channels, are summed into one (dim_out, rows, cols) map;
- neck: a stack of five levels, each twice the resolution of the one before; level 0 gets the
  encoder's map plus the two view-plane coordinate channels (u, v), levels 1-4 get (u, v) at
  their resolution; each level: a 1x1 input convolution, residual blocks (norm, activation,
  3x3 convolution, twice, plus a skip), then a resampler to the next level (a 2x2 transposed
  convolution or a 2x upsampling, then a 3x3 convolution; "replicate" padding throughout);
- heads (points, normal, mask): the same kind of stack over the neck's five outputs, the last
  level's 1x1 output convolution giving 3, 3 and 1 channels at ``16 rows`` x ``16 cols``;
- scale head: an MLP (Linear, ReLU, ..., Linear) on the last tapped block's normalised class
  token; ``exp`` of it is the metric scale.

The module names match the official ones, so the released files' ``model`` state dicts load
with a strict ``load_state_dict`` (:func:`read_checkpoint` checks keys and shapes first).
What :class:`MoGe2` computes here ends before the official ``forward`` resizes the maps to the
photo's size and remaps them: that, and the official ``infer`` after it, is torch-free numpy in
:mod:`depth2mesh.depth.networks.moge2` (so a 12 MP photo's full-size maps never pass through
the exported graph).

The positional embedding (trained for 37 x 37 patches) is resampled like Depth Anything V2's,
by the same two matrices (:func:`depth2mesh.depth.preprocess.pos_embed_matrices`), so that one
ONNX export serves every token grid with the official numbers.

Imported only when torch is needed.
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from depth2mesh.depth.networks.base import INPUT_NAME
from depth2mesh.depth.networks.dav2_small import PATCH, POS_GRID, pos_embed_matrices
from depth2mesh.depth.networks.torch_common import load_tensor_file
from depth2mesh.errors import WeightsError

BACKBONES: dict[str, tuple[int, int, int]] = {
    "dinov2_vits14": (384, 12, 6),
    "dinov2_vitb14": (768, 12, 12),
    "dinov2_vitl14": (1024, 24, 16),
}
"""DINOv2 backbones MoGe-2 uses: name -> (token width, blocks, attention heads)."""

LEVELS = 5
"""Resolution levels of the neck and heads (the token grid times 1, 2, 4, 8, 16)."""

HEADS = ("points_head", "normal_head", "mask_head")
"""The dense heads, in the order their channels are stacked in the network's ``maps`` output."""

HEAD_CHANNELS = {"points_head": 3, "normal_head": 3, "mask_head": 1}
"""Output channels of each dense head."""

INPUT_NAMES = (INPUT_NAME, "pos_rows", "pos_cols", "view_span")
"""Names of the export's inputs (see :meth:`MoGe2.forward`)."""

OUTPUT_NAMES = ("maps", "metric_scale")
"""Names of the export's outputs (see :meth:`MoGe2.forward`)."""

# --------------------------------------------------------------------------- encoder


class _Attention(nn.Module):
    """Multi-head self-attention (``F.scaled_dot_product_attention``, as the official code)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, dim) to (N, T, dim)."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1, 3).reshape(x.shape)
        projected: torch.Tensor = self.proj(out)
        return projected


class _Mlp(nn.Module):
    """dim -> 4 dim -> dim with the exact (erf) GELU."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, dim) to (N, T, dim)."""
        out: torch.Tensor = self.fc2(F.gelu(self.fc1(x)))
        return out


class _LayerScale(nn.Module):
    """A learnt per-channel gain (``gamma``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, dim) to (N, T, dim)."""
        return x * self.gamma


class _Block(nn.Module):
    """Pre-norm transformer block with LayerScale."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, dim) to (N, T, dim)."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        out: torch.Tensor = x + self.ls2(self.mlp(self.norm2(x)))
        return out


class _PatchEmbed(nn.Module):
    """14 x 14 patches -> tokens (a stride-14 convolution), row-major over the patch grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, 14 r, 14 c) to (N, r c, dim)."""
        out: torch.Tensor = self.proj(x)
        return out.flatten(2).transpose(1, 2)


class Dinov2(nn.Module):
    """A DINOv2 ViT/14 without registers (``encoder.backbone`` in the checkpoint)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        dim, depth, heads = BACKBONES[name]
        self.dim = dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + POS_GRID * POS_GRID, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # in the file, never used
        self.patch_embed = _PatchEmbed(dim)
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(
        self, x: torch.Tensor, pos_rows: torch.Tensor, pos_cols: torch.Tensor, taps: Sequence[int]
    ) -> list[torch.Tensor]:
        """Return the normalised tokens (class token first) of the blocks ``taps``.

        Args:
            x: (N, 3, 14 r, 14 c) float32 normalised RGB.
            pos_rows: (r, 37) float32 positional-embedding resampling matrix.
            pos_cols: (c, 37) float32, the same along the columns.
            taps: Block indices, ascending.

        Returns:
            One (N, 1 + r c, dim) tensor per tap.
        """
        grid = self.pos_embed[:, 1:].reshape(POS_GRID, POS_GRID, self.dim)
        across = torch.einsum("ia,abc->ibc", pos_rows, grid)
        patches = torch.einsum("jb,ibc->ijc", pos_cols, across).reshape(1, -1, self.dim)
        position = torch.cat((self.pos_embed[:, :1], patches), dim=1)
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + position
        tapped = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in taps:
                tapped.append(self.norm(tokens))
        return tapped


class Encoder(nn.Module):
    """``encoder``: the backbone and one 1x1 projection per tapped block, summed.

    Args:
        backbone: "dinov2_vits14", "dinov2_vitb14" or "dinov2_vitl14".
        intermediate_layers: How many last blocks to tap, or their indices.
        dim_out: Channels of the projected map.
    """

    def __init__(
        self, backbone: str, intermediate_layers: int | Sequence[int], dim_out: int
    ) -> None:
        super().__init__()
        self.backbone = Dinov2(backbone)
        depth = len(self.backbone.blocks)
        if isinstance(intermediate_layers, int):
            self.taps = tuple(range(depth - intermediate_layers, depth))
        else:
            self.taps = tuple(sorted(int(i) for i in intermediate_layers))
        self.output_projections = nn.ModuleList(
            nn.Conv2d(self.backbone.dim, dim_out, kernel_size=1) for _ in self.taps
        )

    def forward(
        self, x: torch.Tensor, pos_rows: torch.Tensor, pos_cols: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (N, dim_out, r, c) feature map and the last tap's (N, dim) class token."""
        rows, cols = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        tapped = self.backbone(x, pos_rows, pos_cols, self.taps)
        total: torch.Tensor | None = None
        for projection, tokens in zip(self.output_projections, tapped, strict=True):
            grid = tokens[:, 1:].permute(0, 2, 1).reshape(tokens.shape[0], -1, rows, cols)
            projected: torch.Tensor = projection(grid)
            total = projected if total is None else total + projected
        assert total is not None  # at least one tap (checked when the config is read)
        return total, tapped[-1][:, 0]


# --------------------------------------------------------------------------- neck and heads

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}


def _activation(name: str) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=0.2)
    return _ACTIVATIONS[name]()


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group_norm":
        return nn.GroupNorm(channels // 32, channels)
    if kind == "layer_norm":
        return nn.GroupNorm(1, channels)
    if kind == "instance_norm":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


def _conv3(channels_in: int, channels_out: int) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1, padding_mode="replicate")


class ResidualConvBlock(nn.Module):
    """(norm, activation, 3x3 conv) twice plus the input (``layers``, ``skip_connection``)."""

    def __init__(
        self, channels: int, hidden: int, activation: str, in_norm: str, hidden_norm: str
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _norm(in_norm, channels),
            _activation(activation),
            _conv3(channels, hidden),
            _norm(hidden_norm, hidden),
            _activation(activation),
            _conv3(hidden, channels),
        )
        self.skip_connection = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, h, w) to (N, C, h, w)."""
        out: torch.Tensor = self.layers(x)
        return out + x


def _resampler(kind: str, channels_in: int, channels_out: int) -> nn.Sequential:
    """Twice the resolution: a 2x2 transposed convolution or an upsampling, then a 3x3 conv."""
    if kind == "conv_transpose":
        first: nn.Module = nn.ConvTranspose2d(channels_in, channels_out, 2, stride=2)
        return nn.Sequential(first, _conv3(channels_out, channels_out))
    if kind in ("bilinear", "nearest"):
        align = False if kind == "bilinear" else None
        first = nn.Upsample(scale_factor=2, mode=kind, align_corners=align)
        return nn.Sequential(first, _conv3(channels_in, channels_out))
    raise ValueError(f"resampler {kind!r} is not supported (conv_transpose, bilinear, nearest)")


def _per_level(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value] * LEVELS


class ConvStack(nn.Module):
    """``neck`` or a head: five levels of input conv, residual blocks, output conv, resampler.

    The arguments are the checkpoint's ``model_config`` entries (lists per level, or one value
    for all levels; None for no input or no output convolution at that level).
    """

    def __init__(
        self,
        dim_in: Any,
        dim_res_blocks: Sequence[int],
        dim_out: Any,
        resamplers: Any,
        dim_times_res_block_hidden: int = 1,
        num_res_blocks: Any = 1,
        res_block_in_norm: str = "layer_norm",
        res_block_hidden_norm: str = "group_norm",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        widths = list(dim_res_blocks)
        inputs, outputs = _per_level(dim_in), _per_level(dim_out)
        kinds, counts = _per_level(resamplers), _per_level(num_res_blocks)

        def conv1(channels_in: int | None, channels_out: int) -> nn.Module:
            if channels_in is None:
                return nn.Identity()
            return nn.Conv2d(channels_in, channels_out, 1)

        self.input_blocks = nn.ModuleList(conv1(i, w) for i, w in zip(inputs, widths, strict=False))
        self.resamplers = nn.ModuleList(
            _resampler(kind, a, b)
            for a, b, kind in zip(widths[:-1], widths[1:], kinds, strict=False)
        )
        hidden = dim_times_res_block_hidden
        self.res_blocks = nn.ModuleList(
            nn.Sequential(
                *(
                    ResidualConvBlock(
                        width, hidden * width, activation, res_block_in_norm, res_block_hidden_norm
                    )
                    for _ in range(count)
                )
            )
            for width, count in zip(widths, counts, strict=False)
        )
        self.output_blocks = nn.ModuleList(
            nn.Identity() if o is None else nn.Conv2d(w, o, 1)
            for o, w in zip(outputs, widths, strict=False)
        )

    def forward(self, features: Sequence[torch.Tensor], *, last_only: bool) -> list[torch.Tensor]:
        """Run the levels; return every level's output (or only the last one's)."""
        results = []
        x: torch.Tensor | None = None
        levels = len(self.res_blocks)
        for level in range(levels):
            entered = self.input_blocks[level](features[level])
            x = entered if x is None else x + entered
            x = self.res_blocks[level](x)
            if not last_only or level == levels - 1:
                results.append(self.output_blocks[level](x))
            if level < levels - 1:
                x = self.resamplers[level](x)
        return results


class Mlp(nn.Sequential):
    """``scale_head``: Linear and ReLU pairs, then a last Linear (``dims`` = widths)."""

    def __init__(self, dims: Sequence[int]) -> None:
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(dims[:-1]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(dims[-2], dims[-1]))
        super().__init__(*layers)


# --------------------------------------------------------------------------- the network


def view_plane_uv(
    rows: Any, cols: Any, view_span: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The official ``normalized_view_plane_uv`` of a ``rows`` x ``cols`` grid, as (1, 2, r, c).

    Pixel centres from ``-span (n - 1) / n`` to ``+span (n - 1) / n`` (a linspace), where
    ``view_span`` = (span_x, span_y) = (a, 1) / sqrt(1 + a^2) for the photo's aspect a = W/H.
    """
    device = view_span.device
    u_index = torch.arange(cols, device=device, dtype=dtype)
    v_index = torch.arange(rows, device=device, dtype=dtype)
    cols_f = u_index.shape[0] * torch.ones((), device=device, dtype=dtype)
    rows_f = v_index.shape[0] * torch.ones((), device=device, dtype=dtype)
    u = view_span[0] * ((2.0 * u_index + 1.0) / cols_f - 1.0)
    v = view_span[1] * ((2.0 * v_index + 1.0) / rows_f - 1.0)
    grid_u = u[None, :].expand(v.shape[0], -1)
    grid_v = v[:, None].expand(-1, u.shape[0])
    return torch.stack((grid_u, grid_v), dim=0)[None]


class MoGe2(nn.Module):
    """MoGe-2 (``MoGeModel`` version 2) from its ``model_config``, up to the raw head maps.

    Args:
        config: The checkpoint's ``model_config``: ``encoder``, ``neck``, the heads present
            (``points_head``, ``normal_head``, ``mask_head``), ``scale_head``,
            ``remap_output``, ``num_tokens_range``.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        encoder = dict(config["encoder"])
        self.encoder = Encoder(
            encoder["backbone"], encoder["intermediate_layers"], int(encoder["dim_out"])
        )
        self.neck = ConvStack(**config["neck"])
        self.heads = tuple(h for h in HEADS if config.get(h) is not None)
        for head in self.heads:
            self.add_module(head, ConvStack(**config[head]))
        self.has_scale = config.get("scale_head") is not None
        if self.has_scale:
            self.scale_head = Mlp(config["scale_head"]["dims"])

    def forward(
        self,
        image: torch.Tensor,
        pos_rows: torch.Tensor,
        pos_cols: torch.Tensor,
        view_span: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the heads' raw maps and the metric scale.

        Args:
            image: (1, 3, 14 r, 14 c) float32, the photo resized to the token grid and
                ImageNet-normalised.
            pos_rows: (r, 37) float32 positional-embedding resampling matrix.
            pos_cols: (c, 37) float32.
            view_span: (2,) float32 (span_x, span_y) of the photo's aspect (see
                :func:`view_plane_uv`).

        Returns:
            maps: (1, C, 16 r, 16 c) float32: the present heads' raw outputs stacked in
                :data:`HEADS` order (points: affine xyz before the remap; normal:
                unnormalised; mask: logits).
            metric_scale: (1,) float32, ``exp`` of the scale head (1 without one).
        """
        rows, cols = image.shape[-2] // PATCH, image.shape[-1] // PATCH
        features, class_token = self.encoder(image, pos_rows, pos_cols)
        levels = [torch.cat((features, view_plane_uv(rows, cols, view_span)), dim=1)]
        for level in range(1, LEVELS):
            levels.append(view_plane_uv(rows * 2**level, cols * 2**level, view_span))
        neck = self.neck(levels, last_only=False)
        maps = [getattr(self, head)(neck, last_only=True)[-1] for head in self.heads]
        if self.has_scale:
            scale = self.scale_head(class_token)[:, 0].exp()
        else:
            scale = torch.ones(1, dtype=image.dtype, device=image.device)
        return torch.cat(maps, dim=1), scale


# --------------------------------------------------------------------------- checkpoint

CONSTANT_BUFFERS = {
    "encoder.image_mean": (0.485, 0.456, 0.406),
    "encoder.image_std": (0.229, 0.224, 0.225),
}
"""Buffers of the official model that hold the ImageNet normalisation (done in numpy here)."""


def check_config(config: Any, path: Path | str = "the checkpoint") -> dict[str, Any]:
    """Return ``config`` as a dict if it describes a MoGe-2 network this module can build.

    Raises:
        WeightsError: Not a mapping, a backbone or resampler that is not supported, no points
            head, no tapped block (one line).
    """
    if not isinstance(config, Mapping):
        raise WeightsError(
            f"{path} has no MoGe-2 model_config (found {type(config).__name__}); pass an "
            "official MoGe-2 model.pt"
        )
    config = dict(config)
    try:
        backbone = config["encoder"]["backbone"]
        taps = config["encoder"]["intermediate_layers"]
        neck = config["neck"]
    except (KeyError, TypeError) as error:
        raise WeightsError(
            f"{path} has an incomplete MoGe-2 model_config (no {error}); pass an official "
            "MoGe-2 model.pt"
        ) from error
    if backbone not in BACKBONES:
        raise WeightsError(
            f"{path} uses the backbone {backbone!r}; supported: {', '.join(BACKBONES)}"
        )
    if config.get("points_head") is None or not neck:
        raise WeightsError(f"{path} has no points head: it is not a MoGe-2 point-map model")
    if (isinstance(taps, int) and taps < 1) or (not isinstance(taps, int) and not taps):
        raise WeightsError(f"{path} taps no encoder block (intermediate_layers={taps!r})")
    stacks = [neck] + [config[h] for h in HEADS if config.get(h) is not None]
    for stack in stacks:
        for kind in _per_level(stack.get("resamplers")):
            if kind not in ("conv_transpose", "bilinear", "nearest"):
                raise WeightsError(f"{path} uses the resampler {kind!r}, which is not supported")
    checked: dict[str, Any] = config
    remap = checked.get("remap_output", "linear")
    if remap != "exp":  # every MoGe-2 release; the exported graph's maps are remapped so
        raise WeightsError(f"{path} has remap_output={remap!r}; MoGe-2 models use 'exp'")
    return checked


def expected_state_shapes(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Return ``{key: shape}`` of the network's state dict for ``config``, in order."""
    with torch.device("meta"):
        state = MoGe2(config).state_dict()
    return {key: tuple(value.shape) for key, value in state.items()}


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a MoGe-2 ``model.pt`` safely: its ``model_config`` and its checked state dict.

    ``torch.load(..., weights_only=True)`` never runs code from the pickle. The file is
    ``{"model_config": {...}, "model": {name: tensor}}``, as the official training saves it.
    The official normalisation buffers (``encoder.image_mean``/``image_std``) may be there or
    not; they must hold the ImageNet constants and are dropped (the numpy side normalises).
    Every other key of the network must be there, nothing else, each with its shape.

    Returns:
        (model_config, state dict without the constant buffers), float32.

    Raises:
        WeightsError: Unreadable, no ``model_config``/``model``, or keys, shapes or
            constants that differ (one line).
    """
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        loaded = None
    if not isinstance(loaded, Mapping) or "model" not in loaded or "model_config" not in loaded:
        load_tensor_file(path, release="MoGe-2 model.pt")  # its message for unreadable files
        raise WeightsError(
            f"{path} is not a MoGe-2 checkpoint (no 'model_config' and 'model' entries); "
            "pass an official MoGe-2 model.pt"
        )
    config = check_config(loaded["model_config"], path)
    raw = loaded["model"]
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{path}: 'model' is not a state dict of tensors")
    state = {str(key): value for key, value in raw.items()}
    for key, constant in CONSTANT_BUFFERS.items():
        if key in state:
            value = state.pop(key).double().flatten()
            if value.shape[0] != 3 or not torch.allclose(value, torch.tensor(constant).double()):
                raise WeightsError(f"{path}: {key} is not the ImageNet constant {constant}")
    check_state(path, state, config)
    return config, {key: value.float() for key, value in state.items()}


def check_state(path: Path, state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> None:
    """Raise one :class:`WeightsError` unless ``state`` has exactly the keys and shapes."""
    expected = expected_state_shapes(config)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise WeightsError(
            f"{path} does not fit its own MoGe-2 model_config: {len(missing)} keys missing, "
            f"{len(unexpected)} unexpected (e.g. {example!r}); pass an official MoGe-2 model.pt"
        )
    wrong = [key for key, shape in expected.items() if tuple(state[key].shape) != shape]
    if wrong:
        key = wrong[0]
        raise WeightsError(
            f"{path} does not fit its MoGe-2 model_config: {key} is "
            f"{tuple(state[key].shape)}, expected {expected[key]} ({len(wrong)} tensors differ)"
        )


def build_network(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> MoGe2:
    """Return the network in eval mode on the CPU, holding the tensors of ``state``.

    Built on the meta device and filled with ``load_state_dict(strict=True, assign=True)``.
    """
    with torch.device("meta"):
        network = MoGe2(config)
    network.load_state_dict(state, strict=True, assign=True)
    return network.eval()


def state_bytes(config: Mapping[str, Any]) -> int:
    """Bytes of the float32 state dict ``config`` describes (the official buffers included)."""
    shapes = expected_state_shapes(config)
    count = sum(int(torch.Size(shape).numel()) for shape in shapes.values())
    return 4 * (count + sum(len(c) for c in CONSTANT_BUFFERS.values()))


def run_network(
    network: MoGe2, network_inputs: Sequence[Any], device: str = "cpu"
) -> tuple[Any, Any]:
    """Run the eager network on numpy inputs (see :meth:`MoGe2.forward`) under inference mode.

    Returns:
        (maps (C, 16 r, 16 c), metric_scale float) as float32 numpy.
    """
    import numpy as np

    with torch.inference_mode():
        tensors = [
            torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device) for x in network_inputs
        ]
        maps, scale = network(*tensors)
        return maps[0].float().cpu().numpy(), float(scale[0])


# --------------------------------------------------------------------------- export


def export_onnx(network: MoGe2, destination: str | Path) -> None:
    """Write the network as one ONNX graph (opset 17, TorchScript exporter) for every grid.

    Inputs :data:`INPUT_NAMES` (the image's height and width, the matrices' rows dynamic),
    outputs :data:`OUTPUT_NAMES` (see :meth:`MoGe2.forward`).

    Args:
        network: The loaded network (any device; exported from a CPU copy).
        destination: The ``.onnx`` file to write (one file, weights included).
    """
    rows, cols = 30, 40  # any sample grid that is not 37 x 37
    copy = MoGe2(network.config)
    copy.load_state_dict(network.state_dict())
    copy.eval()
    pos_rows, pos_cols = (torch.from_numpy(m) for m in pos_embed_matrices(rows, cols))
    sample = (
        torch.zeros(1, 3, rows * PATCH, cols * PATCH),
        pos_rows,
        pos_cols,
        torch.tensor([0.8, 0.6]),
    )
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    axes = {
        INPUT_NAMES[0]: {2: "height", 3: "width"},
        INPUT_NAMES[1]: {0: "rows"},
        INPUT_NAMES[2]: {0: "cols"},
        OUTPUT_NAMES[0]: {2: "map_height", 3: "map_width"},
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices, not actionable here
        torch.onnx.export(
            copy,
            sample,
            str(destination),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            **options,
        )
