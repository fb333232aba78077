"""Depth Anything V2 Small in PyTorch: its modules, its checkpoint, its ONNX export.

The network is written here from the published description (DINOv2 ViT-S/14 encoder, DPT head;
see docs/architecture.md): nothing comes from timm, whose DINOv2 resamples the positional
embedding differently. Its ``state_dict`` has exactly the key names, shapes and order of the
official ``depth_anything_v2_vits.pth`` (``pretrained.mask_token`` included, which inference
never reads), so the official files load with a strict ``load_state_dict``, nothing renamed.

One class serves the relative model (ReLU head, output >= 0, relative inverse depth) and the
metric ones (Sigmoid head times ``max_depth``, metres): the checkpoints hold the same tensors.

The positional embedding. It is trained for a 37 x 37 patch grid (518 x 518 pixels). Any other
grid of ``gh`` x ``gw`` patches gets the 37 x 37 grid resampled bicubically (a = -0.75, clamped
border, no antialiasing) with the scale factors ``(g + 0.1) / 37``, as the official
``interpolate_pos_encoding`` does: output index ``d`` samples source position
``(d + 0.5) * 37 / (g + 0.1) - 0.5``, not ``(d + 0.5) * 37 / g - 0.5``. The eager network calls
``F.interpolate`` exactly so. The ONNX export instead takes that resampling as two small
matrices (:func:`depth2mesh.depth.networks.dav2_small.pos_embed_matrices`, computed in numpy), so
one export serves every input size with the official numbers.

Imported only by :class:`depth2mesh.depth.networks.dav2_small.DepthAnythingV2SmallNetwork`
when torch is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from depth2mesh.depth.networks.base import INPUT_NAME
from depth2mesh.depth.networks.dav2_small import PATCH, POS_GRID, pos_embed_matrices
from depth2mesh.depth.networks.torch_common import (
    check_state,
    load_tensor_file,
    onnx_export,
    state_shapes,
)

EMBED_DIM = 384
"""Token width of ViT-S."""

HEADS = 6
"""Attention heads (64 channels each)."""

DEPTH = 12
"""Transformer blocks."""

TAPPED_BLOCKS = (2, 5, 8, 11)
"""Blocks whose outputs (after the final LayerNorm) feed the DPT head (0-based)."""

HEAD_FEATURES = 64
"""Channels of the DPT head's fusion path (``features``)."""

HEAD_CHANNELS = (48, 96, 192, 384)
"""Channels of the four projected encoder outputs (``out_channels``)."""

POS_OFFSET = 0.1
"""``interpolate_offset`` of the official DINOv2: added to the grid size in the scale factor."""

# --------------------------------------------------------------------------- encoder


class PatchEmbed(nn.Module):
    """14 x 14 patches -> tokens: a stride-14 convolution, flattened to (N, h*w, 384)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, EMBED_DIM, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, H, W) to (N, (H/14)(W/14), 384), row-major over the patch grid."""
        out: torch.Tensor = self.proj(x)
        return out.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention: ``softmax(q k^T / 8) v`` per head, then a projection.

    Args:
        fused: Use ``F.scaled_dot_product_attention`` (faster and lighter in eager torch; it
            differs from the explicit form by float32 rounding, about 1e-6 of the output
            range) instead of the official explicit matmul-softmax-matmul.
    """

    def __init__(self, *, fused: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Linear(EMBED_DIM, 3 * EMBED_DIM)
        self.proj = nn.Linear(EMBED_DIM, EMBED_DIM)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, 384) to (N, T, 384)."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, HEADS, channels // HEADS).permute(2, 0, 3, 1, 4)
        if self.fused:
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        else:
            q = qkv[0] * (channels // HEADS) ** -0.5
            weights = (q @ qkv[1].transpose(-2, -1)).softmax(dim=-1)
            out = weights @ qkv[2]
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(batch, tokens, channels))
        return projected


class Mlp(nn.Module):
    """384 -> 1536 -> 384 with the exact (erf) GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(EMBED_DIM, 4 * EMBED_DIM)
        self.fc2 = nn.Linear(4 * EMBED_DIM, EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, 384) to (N, T, 384)."""
        out: torch.Tensor = self.fc2(F.gelu(self.fc1(x)))
        return out


class LayerScale(nn.Module):
    """Multiply each channel by a learnt gain (``gamma``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(EMBED_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, 384) to (N, T, 384)."""
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale: ``x + ls1(attn(norm1(x)))``, then the MLP."""

    def __init__(self, *, fused: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        self.attn = Attention(fused=fused)
        self.ls1 = LayerScale()
        self.norm2 = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        self.mlp = Mlp()
        self.ls2 = LayerScale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, T, 384) to (N, T, 384)."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        out: torch.Tensor = x + self.ls2(self.mlp(self.norm2(x)))
        return out


class Dinov2Small(nn.Module):
    """DINOv2 ViT-S/14 as Depth Anything V2 uses it (``pretrained`` in the checkpoint)."""

    def __init__(self, *, fused: bool = False) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, EMBED_DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + POS_GRID * POS_GRID, EMBED_DIM))
        self.mask_token = nn.Parameter(torch.zeros(1, EMBED_DIM))  # in the file, never used
        self.patch_embed = PatchEmbed()
        self.blocks = nn.ModuleList(Block(fused=fused) for _ in range(DEPTH))
        self.norm = nn.LayerNorm(EMBED_DIM, eps=1e-6)

    def position_embedding(
        self,
        rows: int,
        cols: int,
        matrices: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Return the positional embedding of a ``rows`` x ``cols`` patch grid, class slot first.

        Without ``matrices``: the official ``interpolate_pos_encoding``: the stored embedding
        itself for a 37 x 37 grid, else ``F.interpolate(scale_factor=((rows + 0.1) / 37,
        (cols + 0.1) / 37), mode="bicubic", antialias=False)`` of its 37 x 37 grid. With
        ``matrices`` (``(rows, 37)`` and ``(cols, 37)`` float32 from
        :func:`depth2mesh.depth.networks.dav2_small.pos_embed_matrices`): the same resampling as two
        matrix products (what the ONNX export does, for any size).

        Returns:
            (1, 1 + rows * cols, 384) float32.
        """
        if matrices is None and rows == cols == POS_GRID:
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(POS_GRID, POS_GRID, EMBED_DIM)
        if matrices is None:
            resampled = F.interpolate(
                grid.permute(2, 0, 1)[None],
                scale_factor=((rows + POS_OFFSET) / POS_GRID, (cols + POS_OFFSET) / POS_GRID),
                mode="bicubic",
                antialias=False,
            )
            patches = resampled[0].permute(1, 2, 0).reshape(1, -1, EMBED_DIM)
        else:
            row_weights, col_weights = matrices
            across = torch.einsum("ia,abc->ibc", row_weights, grid)  # (rows, 37, 384)
            patches = torch.einsum("jb,ibc->ijc", col_weights, across).reshape(1, -1, EMBED_DIM)
        return torch.cat((self.pos_embed[:, :1], patches), dim=1)

    def forward(
        self, x: torch.Tensor, matrices: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Map (N, 3, H, W) to the normalised patch tokens of :data:`TAPPED_BLOCKS`.

        Returns:
            Four (N, (H/14)(W/14), 384) tensors (class token dropped).
        """
        rows, cols = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.position_embedding(rows, cols, matrices)
        tapped = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in TAPPED_BLOCKS:
                tapped.append(self.norm(tokens)[:, 1:])
        return tapped


# --------------------------------------------------------------------------- DPT head


def resize_corners(
    x: torch.Tensor, size: tuple[Any, Any] | None, *, gathered: bool
) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` of (N, C, h, w) to ``size`` (None: 2h x 2w).

    ``gathered=False``: ``F.interpolate``, the official call (``scale_factor=2`` without a
    size). ``gathered=True``: the same arithmetic written as plain operations (what the ONNX
    export holds): output sample ``d`` of an axis of ``n`` -> ``m`` samples reads source
    position ``d * float32((n - 1) / (m - 1))`` computed in float32, as torch's kernel does,
    and mixes its two neighbours. ONNX Runtime's own ``Resize`` places its samples more
    exactly than torch does, which moved the output of large inputs by up to 6e-5 of its
    range; this form keeps torch's positions.
    """
    if not gathered:
        if size is None:
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    if size is None:
        size = (x.shape[2] * 2, x.shape[3] * 2)
    return _resize_axis(_resize_axis(x, 2, size[0]), 3, size[1])


def _resize_axis(x: torch.Tensor, dim: int, target: Any) -> torch.Tensor:
    source = torch.arange(x.shape[dim], device=x.device)
    outputs = torch.arange(target, device=x.device)
    scale = source[-1:].float() / outputs[-1:].float()  # float32 (n - 1) / (m - 1)
    position = outputs.float() * scale
    first = position.floor().long()
    second = torch.minimum(first + 1, source[-1:])
    weight = (position - first.float()).clamp(0.0, 1.0)
    shape = [1, 1, 1, 1]
    shape[dim] = -1
    weight = weight.reshape(shape)
    low = x.index_select(dim, first)
    high = x.index_select(dim, second)
    return low * (1.0 - weight) + high * weight


class ResidualConvUnit(nn.Module):
    """ReLU -> 3x3 conv -> ReLU -> 3x3 conv, plus the input (no BatchNorm)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(HEAD_FEATURES, HEAD_FEATURES, 3, padding=1)
        self.conv2 = nn.Conv2d(HEAD_FEATURES, HEAD_FEATURES, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, 64, h, w) to (N, 64, h, w)."""
        out: torch.Tensor = self.conv2(F.relu(self.conv1(F.relu(x))))
        return out + x


class FusionBlock(nn.Module):
    """``x (+ resConfUnit1(skip))`` -> ``resConfUnit2`` -> bilinear resize -> 1x1 ``out_conv``.

    The resize (align_corners=True) goes to the next skip's size, or doubles without one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(HEAD_FEATURES, HEAD_FEATURES, 1)
        self.resConfUnit1 = ResidualConvUnit()  # checkpoint key name
        self.resConfUnit2 = ResidualConvUnit()  # checkpoint key name
        self.gathered = False  # see resize_corners

    def forward(
        self,
        x: torch.Tensor,
        skip: torch.Tensor | None = None,
        size: tuple[int, int] | torch.Size | None = None,
    ) -> torch.Tensor:
        """Map (N, 64, h, w) [+ skip] to (N, 64, *size) (or 2h x 2w without ``size``)."""
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = resize_corners(x, None if size is None else (size[0], size[1]), gathered=self.gathered)
        out: torch.Tensor = self.out_conv(x)
        return out


class Scratch(nn.Module):
    """The head's fusion path (``depth_head.scratch``)."""

    def __init__(self, *, metric: bool) -> None:
        super().__init__()
        for index, channels in enumerate(HEAD_CHANNELS, start=1):
            conv = nn.Conv2d(channels, HEAD_FEATURES, 3, padding=1, bias=False)
            self.add_module(f"layer{index}_rn", conv)
        for index in range(1, 5):
            self.add_module(f"refinenet{index}", FusionBlock())
        self.output_conv1 = nn.Conv2d(HEAD_FEATURES, HEAD_FEATURES // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(HEAD_FEATURES // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 1),
            nn.Sigmoid() if metric else nn.ReLU(),
            nn.Identity(),
        )


class DptHead(nn.Module):
    """The DPT head (``depth_head``): four token maps -> one (N, 1, 14 gh, 14 gw) map."""

    def __init__(self, *, metric: bool) -> None:
        super().__init__()
        self.projects = nn.ModuleList(nn.Conv2d(EMBED_DIM, c, 1) for c in HEAD_CHANNELS)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(HEAD_CHANNELS[0], HEAD_CHANNELS[0], 4, stride=4),
                nn.ConvTranspose2d(HEAD_CHANNELS[1], HEAD_CHANNELS[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(HEAD_CHANNELS[3], HEAD_CHANNELS[3], 3, stride=2, padding=1),
            ]
        )
        self.scratch = Scratch(metric=metric)
        self.gathered = False  # see resize_corners

    def forward(self, tapped: list[torch.Tensor], rows: int, cols: int) -> torch.Tensor:
        """Map four (N, rows*cols, 384) token maps to (N, 1, 14 rows, 14 cols)."""
        scratch: Any = self.scratch
        layers = []
        for index, tokens in enumerate(tapped):
            x = tokens.permute(0, 2, 1).reshape(tokens.shape[0], EMBED_DIM, rows, cols)
            x = self.resize_layers[index](self.projects[index](x))
            layers.append(getattr(scratch, f"layer{index + 1}_rn")(x))
        l1, l2, l3, l4 = layers
        path = scratch.refinenet4(l4, size=l3.shape[2:])
        path = scratch.refinenet3(path, l3, size=l2.shape[2:])
        path = scratch.refinenet2(path, l2, size=l1.shape[2:])
        path = scratch.refinenet1(path, l1)
        out = scratch.output_conv1(path)
        out = resize_corners(out, (rows * PATCH, cols * PATCH), gathered=self.gathered)
        result: torch.Tensor = scratch.output_conv2(out)
        return result


class DepthAnythingV2Small(nn.Module):
    """Depth Anything V2 Small: (N, 3, H, W) normalised RGB -> (N, H, W), H and W % 14 == 0.

    Args:
        max_depth: None for the relative model (output: relative inverse depth, >= 0); the
            metric models' depth range in metres (20 indoor, 80 outdoor): output
            ``sigmoid * max_depth``, metres in (0, max_depth).
        fused_attention: See :class:`Attention`.
    """

    def __init__(self, max_depth: float | None = None, *, fused_attention: bool = False) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.pretrained = Dinov2Small(fused=fused_attention)
        self.depth_head = DptHead(metric=max_depth is not None)

    def forward(
        self,
        x: torch.Tensor,
        row_weights: torch.Tensor | None = None,
        col_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return (N, H, W): relative inverse depth (>= 0) or metres.

        Args:
            x: (N, 3, H, W) float32 normalised RGB.
            row_weights: Optional (H/14, 37) positional-embedding resampling matrix; None
                (with ``col_weights``): the official ``F.interpolate``.
            col_weights: Optional (W/14, 37) matrix, given with ``row_weights``.
        """
        rows, cols = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        matrices = None
        if row_weights is not None and col_weights is not None:
            matrices = (row_weights, col_weights)
        head: torch.Tensor = self.depth_head(self.pretrained(x, matrices), rows, cols)
        if self.max_depth is None:
            return F.relu(head).squeeze(1)
        return (head * self.max_depth).squeeze(1)


# --------------------------------------------------------------------------- weights


def expected_state_shapes() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return ``{key: (shape, dtype)}`` of the state dict (= the official file's), in order."""
    with torch.device("meta"):
        return state_shapes(DepthAnythingV2Small())


def read_checkpoint(path: str | Path, title: str) -> dict[str, torch.Tensor]:
    """Read a Depth Anything V2 Small checkpoint safely and check it against the network.

    ``torch.load(..., weights_only=True)`` never executes code from the pickle. Every key of
    the official file must be there (``pretrained.mask_token`` included), nothing else, each
    with its shape, as float32.

    Args:
        path: A ``.pth`` file.
        title: The model's name for messages ("Depth Anything V2 Small").

    Returns:
        The state dict.

    Raises:
        WeightsError: Unreadable or not a checkpoint; keys, shapes or dtypes differ (one line
            naming the first difference and the count of the others).
    """
    path = Path(path)
    state = load_tensor_file(path, release=f"{title} release")
    check_state(path, state, expected_state_shapes(), title, f"the official {title} release")
    return state


def build_network(
    state: Mapping[str, torch.Tensor],
    max_depth: float | None = None,
    *,
    fused_attention: bool = True,
) -> DepthAnythingV2Small:
    """Return the network in eval mode on the CPU, holding the tensors of ``state``.

    Built on the meta device and filled with ``load_state_dict(strict=True, assign=True)``.

    Args:
        state: A checked state dict (see :func:`read_checkpoint`).
        max_depth: None (relative) or the metric model's ``max_depth``.
        fused_attention: See :class:`Attention`: True (default) for the eager network.
    """
    with torch.device("meta"):
        network = DepthAnythingV2Small(max_depth, fused_attention=fused_attention)
    network.load_state_dict(state, strict=True, assign=True)
    return network.eval()


# --------------------------------------------------------------------------- export

ROWS_NAME = "pos_rows"
"""Name of the export's second input: (H/14, 37) float32 resampling matrix."""

COLS_NAME = "pos_cols"
"""Name of the export's third input: (W/14, 37) float32 resampling matrix."""


def exportable_network(
    network: DepthAnythingV2Small, *, gathered: bool = False
) -> DepthAnythingV2Small:
    """A CPU copy for export: explicit attention; with ``gathered``, resizes as gathers.

    The explicit attention is what the exporter writes anyway; gathered resizes keep torch's
    sample positions (see :func:`resize_corners`).
    """
    copy = DepthAnythingV2Small(network.max_depth, fused_attention=False)
    copy.load_state_dict(network.state_dict())
    for module in copy.modules():
        if isinstance(module, FusionBlock | DptHead):
            module.gathered = gathered
    return copy.eval()


def export_onnx(
    network: DepthAnythingV2Small,
    destination: str | Path,
    *,
    gathered: bool = False,
    output_name: str = "disparity",
) -> None:
    """Write the network as one ONNX graph (opset 17) for every input size.

    Inputs: ``input`` (1, 3, H, W) float32 with H and W multiples of 14, ``pos_rows``
    (H/14, 37) and ``pos_cols`` (W/14, 37) float32, the positional embedding's resampling
    (:func:`depth2mesh.depth.networks.dav2_small.pos_embed_matrices`). Output
    ``output_name`` (1, H, W): disparity, or metres for the metric models.

    Args:
        network: The loaded network (any device; exported from a CPU copy).
        destination: The ``.onnx`` file to write (one file, weights included).
        gathered: Write the bilinear resizes as gathers (for ONNX Runtime, see
            :func:`resize_corners`) instead of ONNX ``Resize`` (for OpenVINO).
        output_name: The graph's output name.
    """
    rows, cols = 37, 40  # any sample size that is not 37 x 37
    row_weights, col_weights = (torch.from_numpy(m) for m in pos_embed_matrices(rows, cols))
    onnx_export(
        exportable_network(network, gathered=gathered),
        {
            INPUT_NAME: torch.zeros(1, 3, rows * PATCH, cols * PATCH),
            ROWS_NAME: row_weights,
            COLS_NAME: col_weights,
        },
        destination,
        {ROWS_NAME: {0: "patch_rows"}, COLS_NAME: {0: "patch_cols"}},
        output_name=output_name,
    )
