"""Shared fixtures: where the test data lives, a model with the parity weights, GLB checks.

Two commands:

- ``pytest -m "not slow"``: the inner loop (about a minute on two cores): no Blender, browser,
  X server, node, cluster or root, no subprocess per case, nothing over about 2 s.
- ``pytest``: the full suite, what CI runs (``.ci/run``); ``slow`` tests included.

Helpers shared by several modules live in ``tests/helpers/`` (``from helpers.glb import ...``;
``tests/`` is on ``sys.path`` through ``pythonpath`` in ``pyproject.toml``). The model fixture
exports the network once per weights file into the cache folder (``depth2mesh.depth.cache``), so
only the first run on a machine pays for the export.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers.dav2 import DAV2_FILES
from helpers.glb import GlbCheck, check_glb
from helpers.gltf_validator import assert_khronos_valid

from depth2mesh.depth.model import DepthModel

REPO = Path(__file__).resolve().parents[1]


def _shared_root() -> Path:
    return Path(os.environ.get("DEPTH2MESH_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared test data (``$DEPTH2MESH_SHARED``, default ``../shared``).

    Missing data fails the test under CI (``CI`` set) and skips it elsewhere.
    """
    root = _shared_root()
    if not (root / "midas").is_dir():
        message = f"shared test data not found at {root} (set DEPTH2MESH_SHARED)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def parity_weights(shared_dir: Path) -> Path:
    """The official-format checkpoint with random values (not the official sha256)."""
    return shared_dir / "midas" / "midas_small_random_init.pt"


@pytest.fixture(scope="session")
def parity_model(parity_weights: Path) -> DepthModel:
    """MiDaS small loaded on the CPU with the parity weights."""
    from depth2mesh.depth.model import load_model
    from depth2mesh.errors import UnofficialWeightsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        return load_model(parity_weights, device="cpu")


@pytest.fixture(scope="session")
def eager_outputs(shared_dir: Path, parity_model: DepthModel) -> Callable[[str], np.ndarray]:
    """The eager network's output (``parity_model.network``) on the official input of a parity
    image (``shared/midas/official_outputs/<name>.input.npy``), computed once per session."""
    import torch

    outputs: dict[str, np.ndarray] = {}

    def output(name: str) -> np.ndarray:
        if name not in outputs:
            path = shared_dir / "midas" / "official_outputs" / f"{name}.input.npy"
            with torch.inference_mode():
                outputs[name] = parity_model.network(torch.from_numpy(np.load(path))).numpy()
        return outputs[name]

    return output


@pytest.fixture(scope="session")
def dav2_dir(shared_dir: Path) -> Path:
    folder = shared_dir / "depth_anything_v2"
    if not folder.is_dir():
        message = f"Depth Anything V2 fixtures not found at {folder}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def upcast_weights(dav2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The float32 upcast of each fixture, saved under the official file name (session-wide)."""
    folder = tmp_path_factory.mktemp("dav2-weights")
    import torch

    paths = {}
    for kind, (stored, official) in DAV2_FILES.items():
        state = torch.load(dav2_dir / stored, map_location="cpu", weights_only=True)
        path = folder / official
        torch.save({key: value.float() for key, value in state.items()}, path)
        paths[kind] = path
    return paths


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with an empty torch.hub cache, no weights variables, and no downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    from depth2mesh.depth.registry import MODELS

    for spec in MODELS.values():  # DEPTH2MESH_WEIGHTS and each Depth Anything model's
        monkeypatch.delenv(spec.weights_env, raising=False)
    monkeypatch.setenv("DEPTH2MESH_OFFLINE", "1")
    return dict(os.environ)


@pytest.fixture(params=["parser", pytest.param("khronos", marks=pytest.mark.slow)])
def glb_validator(request: pytest.FixtureRequest) -> str:
    """Which GLB check a test runs: "parser" (our own, fast) or "khronos" (node, slow).

    A test that takes this fixture (or ``assert_valid_glb``) runs twice in the full suite: once
    with our own structural checks plus trimesh, once more with the Khronos validator as well.
    """
    variant: str = request.param
    return variant


@pytest.fixture
def assert_valid_glb(glb_validator: str) -> GlbCheck:
    """Check a GLB file: ``helpers.glb.check_glb``; in the "khronos" variant the validator too.

    The callable returns a report whose ``info`` holds at least ``totalVertexCount`` and
    ``totalTriangleCount``.
    """
    return check_glb if glb_validator == "parser" else assert_khronos_valid
