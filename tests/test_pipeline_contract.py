"""The pipeline's contract in one place: its stages, its file names, and who follows them.

``convert.STAGES`` names the stages that ``convert_photo`` announces and times;
``convert.output_paths`` names every file, in the order they are written. The web page's
progress, the CLI, the cluster, the preview and the Blender add-on take them from there.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from depth2mesh.depth import model as model_module
from depth2mesh.depth.model import DepthModel, predict_disparities, predict_disparity
from depth2mesh.errors import UnofficialWeightsWarning
from depth2mesh.exchange.gltf import encode_glb, pack_glb, split_glb
from depth2mesh.geometry.camera import DEFAULT_FOV_DEG, Intrinsics
from depth2mesh.pipeline.convert import (
    EXTRA_FORMATS,
    STAGES,
    ConvertOptions,
    StageTimer,
    convert_photo,
    depth_paths,
    output_paths,
    sidecar_path,
)

ADDON = Path(__file__).resolve().parents[1] / "blender_addon"
ADDON_RUNNER = ADDON / "runner.py"


def _photo(path: Path, width: int = 96, height: int = 64) -> Path:
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    image = np.stack([ramp, ramp[::-1, ::-1], np.full_like(ramp, 90)], axis=-1)
    cv2.imwrite(str(path), image.astype(np.uint8))
    return path


def _runner() -> ModuleType:
    return _addon_module("runner")


def _addon_module(name: str) -> ModuleType:
    """One of the add-on's modules without bpy (``runner``, ``sidecar``), loaded by path."""
    spec = importlib.util.spec_from_file_location(f"d2m_addon_{name}", ADDON / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_stage_has_one_web_progress_entry() -> None:
    from depth2mesh.apps.web import STAGE_PROGRESS

    assert list(STAGE_PROGRESS) == list(STAGES)
    fractions = [fraction for fraction, _ in STAGE_PROGRESS.values()]
    assert fractions == sorted(fractions)
    assert 0 < fractions[0] < fractions[-1] < 1


@pytest.mark.parametrize("mesh", ["grid", "both"])
def test_convert_announces_and_times_each_stage_and_writes_in_output_paths_order(
    tmp_path: Path, parity_model: DepthModel, mesh: Any
) -> None:
    photo = _photo(tmp_path / "ramp.png")
    steps: list[str] = []
    options = ConvertOptions(mesh=mesh, grid=48, formats=("obj",), poisson_depth=5)
    result = convert_photo(
        photo, tmp_path / "out", model=parity_model, options=options, step=steps.append
    )

    wanted = [s for s in STAGES if mesh == "both" or s != "poisson_mesh"]
    assert steps == wanted
    assert list(result.timings_s) == [*wanted[:-1], "total"]  # the sidecar holds these
    paths = output_paths(tmp_path / "out", "ramp", mesh, formats=("obj",))
    assert result.paths == paths
    assert result.files == list(paths.values())
    sidecar = json.loads(paths["sidecar"].read_text())
    assert sidecar["files"] == [path.name for path in result.files[:-1]]
    assert sidecar["timings_s"] == result.timings_s


def test_stage_timer_knows_only_the_stages() -> None:
    timer = StageTimer()
    with timer.stage("read"):
        pass
    assert set(timer.total()) == {"read", "total"}
    with pytest.raises(ValueError, match="stage must be one of"), timer.stage("depth images"):
        pass


@pytest.mark.parametrize("mesh", ["grid", "poisson", "both"])
@pytest.mark.parametrize("formats", [(), EXTRA_FORMATS])
@pytest.mark.parametrize("texture_format", ["jpeg", "png"])
def test_blender_addon_expects_the_files_of_output_paths(
    tmp_path: Path, mesh: Any, formats: tuple[str, ...], texture_format: str
) -> None:
    expected = _runner().expected_files(str(tmp_path), str(tmp_path / "a.b.jpg"), mesh)
    paths = output_paths(tmp_path, "a.b", mesh, formats=formats, texture_format=texture_format)
    roles = {"grid": "glb", "points": "points", "sidecar": "sidecar", "poisson": "poisson_glb"}
    assert {roles[role]: Path(path) for role, path in expected.items()} == {
        kind: paths[kind] for kind in roles.values() if kind in paths
    }


@pytest.mark.parametrize("stem", ["photo", "photo_points", "a_depth", "x.y"])
def test_blender_addon_finds_the_sidecar_of_output_paths(tmp_path: Path, stem: str) -> None:
    """The add-on's own sidecar lookup (it cannot import the package) agrees with sidecar_path."""
    find = _addon_module("sidecar").sidecar_path
    paths = output_paths(tmp_path, stem, "both")
    paths["sidecar"].write_text("{}")
    for kind in ("glb", "points", "poisson_glb", "poisson_ply"):
        assert Path(find(str(paths[kind]))) == sidecar_path(paths[kind]), kind


@pytest.mark.parametrize("stem", ["photo", "photo_points", "a_depth", "x.y"])
def test_every_output_finds_its_sidecar(tmp_path: Path, stem: str) -> None:
    for texture_format in ("jpeg", "png"):
        paths = output_paths(
            tmp_path, stem, "both", formats=EXTRA_FORMATS, texture_format=texture_format
        )
        for path in [*paths.values(), *depth_paths(tmp_path, stem, save_raw=True).values()]:
            assert sidecar_path(path) == tmp_path / f"{stem}.json", path.name


def test_the_depth_command_names_are_output_paths_names(tmp_path: Path) -> None:
    raw = depth_paths(tmp_path, "p", save_raw=True)
    assert [raw["depth"], raw["inferno"]] == [
        output_paths(tmp_path, "p")[k] for k in ("depth", "inferno")
    ]
    assert raw["disparity"] == tmp_path / "p_disparity.npy"
    assert "disparity" not in depth_paths(tmp_path, "p")


def test_predict_disparities_runs_the_network_once(
    monkeypatch: pytest.MonkeyPatch, parity_model: DepthModel
) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    calls: list[int] = []
    real = model_module.run_network

    def counted(model: DepthModel, network_input: Any) -> Any:
        calls.append(1)
        return real(model, network_input)

    monkeypatch.setattr(model_module, "run_network", counted)
    sizes = [(30, 50), (120, 200), (7, 3)]
    results = predict_disparities(rgb, parity_model, sizes)
    assert len(calls) == 1
    for size, result in zip(sizes, results, strict=True):
        np.testing.assert_array_equal(result, predict_disparity(rgb, parity_model, size=size))
    with pytest.raises(ValueError, match="at least 1x1"):
        predict_disparities(rgb, parity_model, [(4, 4), (0, 4)])
    assert len(calls) == 1 + len(sizes)  # a bad size is refused before the network runs


def test_glb_pack_and_split_are_inverse() -> None:
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    data = encode_glb(positions, np.array([[0, 1, 2]]), name="é")
    document, binary = split_glb(data)
    assert document["meshes"][0]["name"] == "é"
    assert len(binary) == document["buffers"][0]["byteLength"]
    assert pack_glb(document, binary) == data
    assert split_glb(pack_glb({"asset": {"version": "2.0"}}, b"")) == (
        {"asset": {"version": "2.0"}},
        b"",
    )
    truncated = bytearray(data)
    at = 20 + int.from_bytes(data[12:16], "little")
    truncated[at : at + 4] = (len(binary) + 4).to_bytes(4, "little")
    with pytest.raises(ValueError, match="complete binary chunk"):
        split_glb(bytes(truncated))


def test_resized_takes_the_size_by_name() -> None:
    k = Intrinsics(100.0, 100.0, 49.5, 24.5, 100, 50)
    with pytest.raises(TypeError):
        k.resized(50, 25)  # type: ignore[misc]
    assert (k.resized(width=50, height=25).width, k.resized(width=50, height=25).height) == (50, 25)
    assert Intrinsics.from_dict(k.to_dict()) == k


def test_preview_without_camera_uses_the_default_fov(tmp_path: Path) -> None:
    from depth2mesh.apps.preview import view_camera

    camera = view_camera(tmp_path / "cloud.ply", long_side=400)
    assert camera.fx == pytest.approx(
        camera.width / (2 * math.tan(math.radians(DEFAULT_FOV_DEG) / 2))
    )


def test_cluster_worker_gives_its_threads_to_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, parity_model: DepthModel
) -> None:
    """Needs ``load_model(..., threads=...)`` (the model engineer's change)."""
    import torch

    from depth2mesh.pipeline import cluster

    seen: dict[str, Any] = {}

    def load_model(**keywords: Any) -> DepthModel:
        seen.update(keywords)
        return parity_model

    monkeypatch.setattr(model_module, "load_model", load_model)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads(), cv2.getNumThreads()
    settings = cluster._Settings(
        out_dir=str(tmp_path),
        options=ConvertOptions(),
        cwd=str(tmp_path),
        weights=None,
        device="cpu",
        threads=3,
        model_options={"backend": "torch"},
        attempts_per_photo=1,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnofficialWeightsWarning)
            worker = cluster.PhotoConverter(settings=settings, attempts=None)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    assert worker.model is parity_model
    assert seen == {"weights": None, "device": "cpu", "threads": 3, "backend": "torch"}
