"""The seam for depth networks (depth2mesh.depth.networks) and the package's layering.

A new network is one module (a ``DepthNetwork`` and its torch code) and one registry entry:
the toy network below is added through that seam alone, inside this test file, and converts a
photo on the eager and the exported runtimes. No module outside the networks and the registry
compares anything with a network's or a model's name, and nothing imports upwards.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import NDArray

from depth2mesh.depth import registry
from depth2mesh.depth.networks.base import DepthNetwork
from depth2mesh.depth.preprocess import preprocess_at, resize_bilinear_corners
from depth2mesh.depth.registry import MODELS, ModelSpec

PACKAGE = Path(__file__).resolve().parents[1] / "depth2mesh"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "coffee.png"

# --------------------------------------------------------------------------- a toy network


def _toy_module() -> Any:
    """A few layers of torch: (1, 3, h, w) -> (1, h, w) positive 'disparity'."""
    import torch
    from torch import nn

    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hidden = torch.relu(self.conv1(x))
            return torch.nn.functional.softplus(self.conv2(hidden))[:, 0]

    return Toy()


class ToyNetwork(DepthNetwork):
    """The toy's description: 64 pixels on the short side, multiples of 16."""

    name: ClassVar[str] = "toy_net"
    size_multiple: ClassVar[int] = 16
    export_tag: ClassVar[str] = "toy-v1"
    least_input_size: ClassVar[int] = 32
    largest_input_size: ClassVar[int] = 256

    def preprocess(self, image: NDArray[np.uint8], input_size: int) -> NDArray[np.float32]:
        scale = input_size / min(image.shape[:2])
        height, width = (max(16, round(side * scale / 16) * 16) for side in image.shape[:2])
        return preprocess_at(image, height, width)

    def resize_output(
        self, output: NDArray[np.float32], height: int, width: int
    ) -> NDArray[np.float32]:
        return resize_bilinear_corners(output, height, width)

    def build(self, path: Path, spec: ModelSpec) -> Any:
        from depth2mesh.depth.networks.torch_common import (
            check_state,
            load_tensor_file,
            state_shapes,
        )

        network = _toy_module()
        state = load_tensor_file(path, release="toy.pt")
        check_state(path, state, state_shapes(network), spec.title, "toy.pt")
        network.load_state_dict(state, strict=True)
        return network.eval()

    def export(self, network: Any, path: Path, *, backend: str, output_name: str) -> None:
        import torch

        from depth2mesh.depth.networks.base import INPUT_NAME
        from depth2mesh.depth.networks.torch_common import onnx_export

        sample = {INPUT_NAME: torch.zeros(1, 3, 64, 80)}
        onnx_export(network.cpu(), sample, path, output_name=output_name)


TOY = ModelSpec(
    name="toy",
    title="Toy network",
    network=ToyNetwork(),
    url="https://example.invalid/toy.pt",
    sha256=None,
    size_bytes=None,
    licence="MIT",
    output="disparity",
    max_depth=None,
    input_size=64,
    weights_env="DEPTH2MESH_WEIGHTS_TOY",
    summary="a toy for the seam's test",
)


@pytest.fixture
def toy_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy registered (for this test only) and a checkpoint of random values."""
    import torch

    monkeypatch.setitem(MODELS, TOY.name, TOY)
    monkeypatch.setenv("DEPTH2MESH_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    path = tmp_path / "toy.pt"
    torch.save(_toy_module().state_dict(), path)
    return path


@pytest.mark.slow  # exports and converts three times: several seconds
def test_a_new_network_needs_only_its_module_and_a_registry_entry(
    toy_weights: Path, tmp_path: Path
) -> None:
    from depth2mesh import convert_photo, load_model, predict_disparity, read_photo
    from depth2mesh.depth.backends import available_backends
    from depth2mesh.depth.cache import cache_entries

    rgb = read_photo(SAMPLE).rgb
    runtimes = list(dict.fromkeys(["torch", *available_backends()]))
    assert len(runtimes) >= 2, "an exported runtime (OpenVINO or ONNX Runtime) must be installed"
    results = {}
    for backend in runtimes:
        model = load_model(toy_weights, model="toy", backend=backend)
        assert model.backend == backend
        results[backend] = predict_disparity(rgb, model, size=(48, 64))
        result = convert_photo(SAMPLE, tmp_path / backend, model=model)
        sidecar = json.loads(result.paths["sidecar"].read_text())
        assert sidecar["model"]["model"] == "toy"
        assert sidecar["model"]["backend"] == backend
        assert result.paths["glb"].stat().st_size > 0
    reference = results["torch"]
    assert reference.shape == (48, 64)
    assert float(reference.min()) > 0
    for backend in runtimes[1:]:
        spread = float(reference.max() - reference.min())
        assert float(np.abs(results[backend] - reference).max()) <= 1e-4 * spread
    names = [entry.path.name for entry in cache_entries()]
    assert any(name.startswith("toy_net-") and "-toy-v1-" in name for name in names), names


def test_a_network_that_refuses_an_input_size_says_which_sizes_it_takes(
    toy_weights: Path,
) -> None:
    from depth2mesh.errors import ParameterError

    with pytest.raises(ParameterError, match="multiple of 16 from 32 to 256"):
        registry.check_input_size(TOY, 40)
    assert registry.check_input_size(TOY, 48) == 48
    assert "toy: a toy for the seam's test" in registry.model_help()


# --------------------------------------------------------------------------- no names outside


def _names() -> set[str]:
    names = set(MODELS)
    for spec in MODELS.values():
        names.add(spec.network.name)
        names.update(spec.network.export_prefixes())
    return names


def _literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [value for item in node.elts for value in _literals(item)]
    return []


def test_no_module_outside_the_networks_and_the_registry_compares_a_network_name() -> None:
    names = _names()
    assert {"midas-small", "midas_small", "dav2_small", "dav2-small"} <= names
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("depth/networks/") or relative == "depth/registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            compared: list[str] = []
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    compared += _literals(operand)
            elif isinstance(node, ast.Subscript):
                compared += _literals(node.slice)
            elif isinstance(node, ast.match_case):
                compared += _literals(getattr(node.pattern, "value", ast.Constant(None)))
            found += [f"{relative}:{node.lineno}: {text!r}" for text in compared if text in names]
    assert found == []


def test_the_check_finds_a_comparison_it_is_meant_to_find() -> None:
    tree = ast.parse('if spec.architecture == "dav2_small":\n    pass\nMODELS["midas-small"]\n')
    hits = [
        text
        for node in ast.walk(tree)
        for operand in (
            (node.left, *node.comparators)
            if isinstance(node, ast.Compare)
            else (node.slice,)
            if isinstance(node, ast.Subscript)
            else ()
        )
        for text in _literals(operand)
        if text in _names()
    ]
    assert hits == ["dav2_small", "midas-small"]


# --------------------------------------------------------------------------- layers

LAYERS = {
    "_version": 0,
    "errors": 0,
    "atomic": 1,
    "depth": 2,
    "geometry": 2,
    "exchange": 3,
    "pipeline": 4,
    "apps": 5,
}
"""Each top-level part of the package and its layer: a part imports only lower layers."""


def _imports() -> list[tuple[str, str, int]]:
    """(importing part, imported part, line) for every import between parts of the package."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                pieces = target.split(".")
                if pieces[0] == "depth2mesh" and len(pieces) > 1 and pieces[1] != part:
                    edges.append((part, pieces[1], node.lineno))
    return edges


def test_the_subpackages_exist_and_nothing_imports_upwards() -> None:
    for package in ("depth", "depth/networks", "geometry", "exchange", "pipeline", "apps"):
        assert (PACKAGE / package / "__init__.py").is_file(), package
    upward = []
    for part, imported, line in _imports():
        if part in ("__init__", "__main__") or imported not in LAYERS:
            continue
        if LAYERS[imported] >= LAYERS[part]:
            upward.append(f"{part} (line {line}) imports {imported}")
    assert upward == []
    assert {(part, imported) for part, imported, _ in _imports()} >= {("pipeline", "depth")}
