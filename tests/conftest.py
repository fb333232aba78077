"""Shared fixtures: where the test data lives, and a model with the parity weights."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from depth2mesh.model import DepthModel

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
    from depth2mesh.errors import UnofficialWeightsWarning
    from depth2mesh.model import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        return load_model(parity_weights, device="cpu")


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with an empty torch.hub cache, no weights variable, and no downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("DEPTH2MESH_WEIGHTS", raising=False)
    monkeypatch.setenv("DEPTH2MESH_OFFLINE", "1")
    return dict(os.environ)
