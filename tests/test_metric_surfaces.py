"""A metric model's depth through the pipeline's other doors: ``--drop-far`` and ``evaluate``.

The weights are the random Depth Anything V2 Metric (Hypersim) fixture in the official format
(``upcast_weights``, see ``tests/conftest.py``): its output spans 0.3 to 19.8 m of its 20 m,
so a few pixels lie in the saturated band that ``drop_far`` leaves out.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import run_cli

from depth2mesh.depth.model import DepthModel, load_model, predict_depth
from depth2mesh.exchange.photo import read_photo
from depth2mesh.exchange.pictures import encode_png
from depth2mesh.pipeline.convert import (
    METRIC_SKY_MARGIN,
    ConvertOptions,
    DepthMaps,
    convert_photo,
    geometry_stage,
    metric_sky_depth,
    read_stage,
)

SIZE = 392
"""The network input size of these tests (fast; the fixtures' second size)."""


@pytest.fixture(scope="module")
def indoor(upcast_weights: dict[str, Path]) -> DepthModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        return load_model(
            upcast_weights["metric_hypersim"],
            model="dav2-metric-indoor",
            backend="torch",
            input_size=SIZE,
        )


@pytest.fixture(scope="module")
def photo(dav2_dir: Path, shared_dir: Path) -> Path:
    return shared_dir / "midas" / "images" / "astronaut.png"  # the fixtures' first image


def test_sky_depth_is_one_percent_below_max_depth() -> None:
    assert METRIC_SKY_MARGIN == 0.01
    assert metric_sky_depth(20.0) == pytest.approx(19.8)
    assert metric_sky_depth(80.0) == pytest.approx(79.2)


def test_geometry_drops_the_saturated_band_only_with_drop_far(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    path = tmp_path / "p.png"
    path.write_bytes(encode_png(image))
    photo, intrinsics = read_stage(path, ConvertOptions(grid=4))
    metres = np.full((4, 4), 5.0, np.float32)
    metres[0, :] = [19.79, 19.81, 19.95, 20.0]
    maps = DepthMaps(1 / metres, 1 / metres, metric=metres, max_depth=20.0)
    kept = geometry_stage(photo, intrinsics, maps, ConvertOptions(grid=4, edges="off")).valid
    assert kept.all()
    dropped = geometry_stage(
        photo, intrinsics, maps, ConvertOptions(grid=4, edges="off", drop_far=True)
    ).valid
    assert dropped[0].tolist() == [True, False, False, False]
    assert dropped[1:].all()
    measured = DepthMaps(1 / metres, 1 / metres, metric=metres, measured=True)  # a depth file
    file_kept = geometry_stage(
        photo, intrinsics, measured, ConvertOptions(grid=4, edges="off", drop_far=True)
    ).valid
    assert file_kept.all()


@pytest.mark.slow  # a metric model on a photo: seconds
def test_drop_far_with_a_metric_model_leaves_out_its_saturation(
    tmp_path: Path, indoor: DepthModel, photo: Path
) -> None:
    grid = 256  # 6 of its pixels are in the saturated band (none at 64: resampling)
    expected = predict_depth(read_photo(photo).rgb, indoor, size=(grid, grid))
    sky = expected >= metric_sky_depth(20.0)
    assert 0 < sky.sum() < sky.size  # the fixture has some saturated pixels, not only
    options = ConvertOptions(grid=grid, edges="off", drop_far=True)
    result = convert_photo(photo, tmp_path, model=indoor, options=options)
    import trimesh

    depths = -np.asarray(trimesh.load(result.paths["points"]).vertices)[:, 2]
    np.testing.assert_allclose(np.sort(depths), np.sort(expected[~sky]), rtol=1e-5)
    depth = json.loads(result.paths["sidecar"].read_text())["depth"]
    assert depth["drop_far"] is True
    assert depth["drop_far_from_m"] == pytest.approx(19.8)
    assert depth["max_depth_m"] == 20.0


@pytest.mark.slow  # two CLI subprocesses, one with the network
def test_evaluate_metric_scores_a_metric_models_saved_metres(
    tmp_path: Path, upcast_weights: dict[str, Path], photo: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "depth",
        photo,
        "-o",
        out,
        "--model",
        "dav2-metric-indoor",
        "--weights",
        upcast_weights["metric_hypersim"],
        "--input-size",
        str(SIZE),
        "--backend",
        "torch",
        "--save-raw",
    )
    assert result.returncode == 0, result.stderr
    metres_file = out / f"{photo.stem}_depth_metres.npy"
    metres = np.load(metres_file).astype(np.float64)
    truth_file = tmp_path / "truth.npy"
    truth = metres * 1.1  # a scene 10 % deeper than predicted: metric scoring must see it
    np.save(truth_file, truth.astype(np.float32))
    result = run_cli("evaluate", metres_file, truth_file, "--metric", "--max-depth", "30")
    assert result.returncode == 0, result.stderr
    found = re.search(r"AbsRel (\S+)\s+delta<1.25 (\S+)\s+RMSE (\S+) m", result.stdout)
    assert found is not None, result.stdout
    valid = (truth > 0.1) & (truth < 30)
    abs_rel = np.mean(np.abs(metres[valid] - truth[valid]) / truth[valid])
    rmse = np.sqrt(np.mean((metres[valid] - truth[valid]) ** 2))
    assert float(found[1]) == pytest.approx(abs_rel, abs=1e-4)  # 0.0909: not aligned away
    assert float(found[2]) == 1.0
    assert float(found[3]) == pytest.approx(rmse, abs=1e-4)
    assert "metric, not aligned" in result.stdout
