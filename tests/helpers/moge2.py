"""MoGe-2 parity fixtures: the configuration, deterministic random weights, the test photos.

Nothing here is official code. The weights are made the same way in the tests and in
``tests/data/moge2/make_fixtures.py`` (which ran the official MoGe code once on them):
a seeded numpy generator over the state dict's keys, in order, each tensor scaled so that the
random network's activations stay of order one (see :func:`random_state`).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "moge2"
"""Where the official outputs are stored (``official.npz``; README.md says how)."""

SEED = 20250722
"""Seed of the random weights."""


def _stack(dims: list[int], outputs: list[int | None], blocks: list[int]) -> dict[str, Any]:
    return {
        "dim_in": dims,
        "dim_out": outputs,
        "dim_res_blocks": dims,
        "num_res_blocks": blocks,
        "res_block_in_norm": "none",
        "res_block_hidden_norm": "none",
        "resamplers": ["conv_transpose", "conv_transpose", "conv_transpose", "bilinear"],
    }


def vit_config(backbone: str, width: int, taps: Any, scale_dims: list[int]) -> dict[str, Any]:
    """A MoGe-2 ``model_config`` in the released ``-normal`` models' layout.

    Args:
        backbone: "dinov2_vits14", "dinov2_vitb14" or "dinov2_vitl14".
        width: ``encoder.dim_out`` and the first level's width.
        taps: ``intermediate_layers``.
        scale_dims: ``scale_head.dims``.
    """
    levels = [width, 256, 128, 64, 32]
    return {
        "encoder": {"backbone": backbone, "intermediate_layers": taps, "dim_out": width},
        "neck": _stack([width + 2, 2, 2, 2, 2], [None] * 5, [0, 1, 1, 1, 0])
        | {"dim_res_blocks": levels},
        "points_head": _stack(levels, [None, None, None, None, 3], [0, 1, 1, 1, 0]),
        "normal_head": _stack(levels, [None, None, None, None, 3], [0, 1, 1, 1, 0]),
        "mask_head": _stack(levels, [None, None, None, None, 1], [0, 1, 1, 1, 0]),
        "scale_head": {"dims": scale_dims},
        "remap_output": "exp",
        "num_tokens_range": [1200, 3600],
    }


FIXTURE_CONFIG = vit_config("dinov2_vits14", 384, [2, 5, 8, 11], [384, 1])
"""The ViT-S configuration of the parity fixtures (its float32 state dict: 140.4 MB, the
released ``moge-2-vits-normal`` file's 140.55 MB less the pickle's 0.14 MB of names)."""


def random_state(
    shapes: dict[str, tuple[int, ...]], seed: int = SEED
) -> dict[str, NDArray[np.float32]]:
    """Deterministic random float32 values for a state dict's ``{key: shape}``, keys sorted.

    Matrices and kernels: normal, standard deviation ``gain / sqrt(fan_in)`` (fan_in = the
    product of all but the first axis; gain 0.9, 0.3 for the heads' last 1x1 convolutions);
    biases: normal 0.02 (1 for the normal head's last one, so that its raw normals are not
    near zero, where normalising them would amplify float32 noise); norm weights
    1 + normal 0.1; LayerScale gains 0.1 + normal 0.02;
    the positional embedding and tokens: normal 0.2.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    state: dict[str, NDArray[np.float32]] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        normal = rng.standard_normal(shape)
        if key.endswith("gamma"):
            values = 0.1 + 0.02 * normal
        elif "norm" in key.rsplit(".", 2)[-2] and key.endswith("weight"):
            values = 1.0 + 0.1 * normal
        elif key == "normal_head.output_blocks.4.bias":
            values = normal  # unit-scale normals, as a trained network gives
        elif key.endswith("bias"):
            values = 0.02 * normal
        elif len(shape) >= 2 and key.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            gain = 0.3 if ".output_blocks.4." in key else 0.9
            values = normal * (gain / np.sqrt(fan_in))
        else:
            values = 0.2 * normal
        state[key] = values.astype(np.float32)
    return state


def synthetic_photo(height: int, width: int, seed: int) -> NDArray[np.uint8]:
    """A deterministic (height, width, 3) uint8 test picture: smooth colour fields plus noise."""
    rng = np.random.Generator(np.random.PCG64(seed))
    v = np.linspace(0.0, 1.0, height, dtype=np.float64)[:, None, None]
    u = np.linspace(0.0, 1.0, width, dtype=np.float64)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (1, 1, 3))
    freq = rng.uniform(1.0, 6.0, (2, 3))
    field = 0.5 + 0.35 * np.sin(freq[0] * 2 * np.pi * u + phase) * np.cos(freq[1] * 3 * v)
    noise = rng.normal(0.0, 0.06, (height, width, 3))
    photo: NDArray[np.uint8] = np.clip(np.rint((field + noise) * 255), 0, 255).astype(np.uint8)
    return photo


DEFAULT = 1800
"""The fixtures' second token count (the first: the default, ``moge2.DEFAULT_TOKENS``, 1200)."""

CASES: tuple[tuple[str, int, int, int], ...] = (
    ("tiny_2x3", 2, 3, 1200),
    ("thin_9x301", 9, 301, 1200),
    ("vga_480x640", 480, 640, 1200),
    ("vga_480x640", 480, 640, DEFAULT),
    ("portrait_1000x750", 1000, 750, DEFAULT),
    ("tiny_3x2", 3, 2, DEFAULT),
    ("wide_360x1280", 360, 1280, DEFAULT),
    ("photo_3024x4032", 3024, 4032, 1200),
    ("photo_3024x4032", 3024, 4032, DEFAULT),
)
"""(name, height, width, tokens) of the stored official outputs."""

FOV_CASES: tuple[tuple[str, int, int, int, float], ...] = (
    ("vga_480x640", 480, 640, DEFAULT, 55.0),
    ("portrait_1000x750", 1000, 750, 1200, 70.0),
    ("square_1x1", 1, 1, 1200, 60.0),
    ("square_1x1", 1, 1, DEFAULT, 60.0),
)
"""Cases run with a known horizontal field of view (degrees): only the shift is solved.

A 1x1 photo is only here: without a field of view the official code fails on it (every
view-plane coordinate is 0, the least-squares focal length is 0, the intrinsics singular)."""

SAMPLES = 4096
"""Pixels kept per case (all of them for smaller photos)."""


def case_key(name: str, tokens: int, fov: float | None = None) -> str:
    """The fixture key of a case."""
    key = f"{name}_t{tokens}"
    return key if fov is None else f"{key}_fov{fov:g}"


def photo_seed(name: str) -> int:
    """The seed of a case's test photo."""
    return zlib.crc32(name.encode())


def sample_pixels(height: int, width: int, seed: int) -> NDArray[np.intp]:
    """The flat pixel indices a case keeps: all, or :data:`SAMPLES` drawn without replacement."""
    if height * width <= SAMPLES:
        return np.arange(height * width, dtype=np.intp)
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.sort(rng.choice(height * width, SAMPLES, replace=False)).astype(np.intp)


PINHOLE_FOCAL = 1.2
"""Focal length (relative to half the diagonal) of the designed pinhole weights."""


def pinhole_checkpoint(path: Path, *, normal: tuple[float, float, float] | None = None) -> Path:
    """A ``model.pt`` whose network outputs an exact pinhole point map, all valid, scale 2.

    The random fixture weights with the last level rewired: the neck passes the view-plane
    (u, v) straight through, the points head turns it into ``x = u / f``, ``y = v / f`` and a
    tilted ``log z = 0.2 + 0.5 v``, so ``x / z = u / f`` (focal ``f``, shift 0); the mask head
    says valid everywhere; the scale head gives 2. With ``normal`` (OpenCV camera frame, any
    length), the normal head gives that direction at every pixel (its last convolution's
    weights zero, its bias ``normal``); otherwise its random weights' normals.
    """
    import torch

    from depth2mesh.depth.networks import moge2_torch

    shapes = moge2_torch.expected_state_shapes(FIXTURE_CONFIG)
    state = {key: torch.from_numpy(v) for key, v in random_state(shapes).items()}
    for stack in ("neck", "points_head", "mask_head"):
        state[f"{stack}.resamplers.3.1.weight"].zero_()
        state[f"{stack}.resamplers.3.1.bias"].zero_()
    for stack in ("neck", "points_head"):
        conv = state[f"{stack}.input_blocks.4.weight"].zero_()
        conv[0, 0], conv[1, 1] = 1.0, 1.0
        state[f"{stack}.input_blocks.4.bias"].zero_()
    out = state["points_head.output_blocks.4.weight"].zero_()
    out[0, 0], out[1, 1], out[2, 1] = 1 / PINHOLE_FOCAL, 1 / PINHOLE_FOCAL, 0.5
    state["points_head.output_blocks.4.bias"][:] = torch.tensor([0.0, 0.0, 0.2])
    state["mask_head.output_blocks.4.weight"].zero_()
    state["mask_head.output_blocks.4.bias"][:] = 10.0
    if normal is not None:
        state["normal_head.output_blocks.4.weight"].zero_()
        state["normal_head.output_blocks.4.bias"][:] = torch.tensor(normal)
    state["scale_head.0.weight"].zero_()
    state["scale_head.0.bias"][:] = float(np.log(2.0))
    state["encoder.image_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    state["encoder.image_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.save({"model_config": FIXTURE_CONFIG, "model": state}, path)
    return path
