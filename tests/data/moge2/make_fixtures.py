"""Make ``official.npz``: the official MoGe-2 ``infer`` on the parity weights (run once).

Needs the official code on ``PYTHONPATH`` (microsoft/MoGe with EasternJournalist/utils3d at
3fab839 and scipy), never part of this project::

    PYTHONPATH=$PWD/tests:/path/MoGe:/path/utils3d:/path/scipy-target \\
        python tests/data/moge2/make_fixtures.py

The weights are :func:`helpers.moge2.random_state` of the official model's own state dict
shapes (its ImageNet buffers left as they are), the photos :func:`helpers.moge2.synthetic_photo`.
``infer`` runs in float32 (``use_fp16=False``), on the CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from helpers.moge2 import (
    CASES,
    FIXTURE_CONFIG,
    FIXTURES,
    FOV_CASES,
    case_key,
    photo_seed,
    random_state,
    sample_pixels,
    synthetic_photo,
)
from moge.model.v2 import MoGeModel  # the official code (not in this project)

BUFFERS = ("encoder.image_mean", "encoder.image_std")


def official_model() -> MoGeModel:
    model = MoGeModel(**FIXTURE_CONFIG)
    official = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in official.items() if k not in BUFFERS}
    values = random_state(shapes)
    state = {k: torch.from_numpy(v) for k, v in values.items()}
    for key in BUFFERS:
        state[key] = official[key]
    model.load_state_dict(state, strict=True)
    return model.eval().float()


def run_case(
    model: MoGeModel, name: str, height: int, width: int, tokens: int, fov: float | None
) -> dict[str, np.ndarray]:
    photo = synthetic_photo(height, width, photo_seed(name))
    image = torch.tensor(photo / 255, dtype=torch.float32).permute(2, 0, 1)
    out = model.infer(image, num_tokens=tokens, use_fp16=False, fov_x=fov)
    pixels = sample_pixels(height, width, photo_seed(name) + 1)
    points = out["points"].numpy().reshape(-1, 3)
    depth = out["depth"].numpy().reshape(-1)
    mask = out["mask"].numpy().reshape(-1)
    normal = out["normal"].numpy().reshape(-1, 3)
    finite = np.isfinite(depth)
    key = case_key(name, tokens, fov)
    return {
        f"{key}/pixels": pixels,
        f"{key}/points": points[pixels],
        f"{key}/depth": depth[pixels],
        f"{key}/mask": mask[pixels],
        f"{key}/normal": normal[pixels],
        f"{key}/intrinsics": out["intrinsics"].numpy(),
        f"{key}/points_range": np.array(
            [np.ptp(points[finite]) if finite.any() else 0.0], np.float32
        ),
        f"{key}/depth_range": np.array(
            [np.ptp(depth[finite]) if finite.any() else 0.0], np.float32
        ),
        f"{key}/mask_count": np.array([mask.sum()], np.int64),
    }


def main() -> None:
    torch.set_num_threads(2)
    model = official_model()
    arrays: dict[str, np.ndarray] = {}
    for name, height, width, tokens in CASES:
        arrays |= run_case(model, name, height, width, tokens, None)
        print(name, tokens, file=sys.stderr)
    for name, height, width, tokens, fov in FOV_CASES:
        arrays |= run_case(model, name, height, width, tokens, fov)
        print(name, tokens, fov, file=sys.stderr)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(FIXTURES, "official.npz"), **arrays)


if __name__ == "__main__":
    main()
