from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from depth2mesh.apps.cli import app
from depth2mesh.depth.evaluate import (
    EvalResult,
    evaluate_depth,
    evaluate_disparity,
    load_ground_truth_depth,
    load_ground_truth_disparity,
)


def _readme_figures(shared_dir: Path) -> list[tuple[str, float, float]]:
    """The (id, AbsRel, delta1) rows of the table in real_midas/README.txt."""
    text = (shared_dir / "real_midas" / "README.txt").read_text()
    rows = re.findall(r"^\s*(\d{5})\s+(\d\.\d{3})\s+(\d\.\d{3})\s*$", text, flags=re.MULTILINE)
    return [(frame, float(abs_rel), float(delta1)) for frame, abs_rel, delta1 in rows]


def test_reproduces_the_real_midas_figures(shared_dir: Path) -> None:
    folder = shared_dir / "real_midas"
    figures = _readme_figures(shared_dir)
    assert len(figures) == 6
    for frame, abs_rel, delta1 in figures:
        disparity = np.load(folder / "midas_small_outputs" / f"disparity_{frame}.npy")
        gt = load_ground_truth_depth(folder / f"depth_{frame}.npy")
        assert disparity.shape == (192, 256)
        assert gt.shape == (480, 640)
        result = evaluate_disparity(disparity, gt, min_depth=0.1, max_depth=10.0)
        assert round(result.abs_rel, 3) == pytest.approx(abs_rel, abs=1e-9), frame
        assert round(result.delta1, 3) == pytest.approx(delta1, abs=1e-9), frame
        assert result.scale > 0  # larger disparity is nearer
        expected_valid = np.count_nonzero((gt > 0.1) & (gt < 10.0))
        assert result.valid_pixels == expected_valid


def test_exact_affine_disparity_scores_perfectly() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 9.0, size=(30, 40))
    disparity = 3.0 / gt + 0.5
    result = evaluate_disparity(disparity, gt)
    assert isinstance(result, EvalResult)
    assert result.abs_rel == pytest.approx(0.0, abs=1e-12)
    assert result.delta1 == 1.0
    assert result.scale == pytest.approx(1 / 3, rel=1e-10)
    assert result.shift == pytest.approx(-1 / 6, rel=1e-10)
    assert result.valid_pixels == 30 * 40
    assert result.rmse == pytest.approx(0.0, abs=1e-9)


def test_three_point_fit_by_hand() -> None:
    # 1/gt = 1, 1/2, 1/4 against disparity 0, 1, 2: the least-squares line is
    # s = -3/8, t = 23/24, so the aligned disparities are 23/24, 14/24, 5/24.
    gt = np.array([[1.0, 2.0, 4.0]])
    disparity = np.array([[0.0, 1.0, 2.0]])
    result = evaluate_disparity(disparity, gt)
    assert result.scale == pytest.approx(-3 / 8)
    assert result.shift == pytest.approx(23 / 24)
    # Depths 24/23, 12/7, 4.8: relative errors 1/23, 1/7, 1/5; all ratios below 1.25.
    assert result.abs_rel == pytest.approx((1 / 23 + 1 / 7 + 1 / 5) / 3)
    assert result.delta1 == 1.0
    # Capped at max_depth = 4.5 m: the last depth becomes 4.5 (error 1/8), ratio still < 1.25.
    capped = evaluate_disparity(disparity, gt, max_depth=4.5)
    assert capped.abs_rel == pytest.approx((1 / 23 + 1 / 7 + 1 / 8) / 3)


def test_out_of_range_and_masked_pixels_are_not_evaluated() -> None:
    gt = np.array([[0.0, 0.05, 1.0, 2.0, 4.0, 12.0, np.nan]])
    disparity = np.array([[5.0, 5.0, 1.0, 0.5, 0.25, 9.0, 1.0]])
    result = evaluate_disparity(disparity, gt)
    assert result.valid_pixels == 3
    assert result.abs_rel == pytest.approx(0.0, abs=1e-12)
    valid = np.array([[True, True, True, True, False, True, True]])
    assert evaluate_disparity(disparity, gt, valid=valid).valid_pixels == 2
    wide = evaluate_disparity(disparity, gt, min_depth=0.0, max_depth=20.0)
    assert wide.valid_pixels == 5


def test_evaluate_rejects_bad_input() -> None:
    gt = np.ones((4, 4))
    with pytest.raises(ValueError, match="2-D"):
        evaluate_disparity(np.ones((4, 4, 1)), gt)
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        evaluate_disparity(np.ones((4, 4)), gt, min_depth=5.0, max_depth=2.0)
    with pytest.raises(ValueError, match="at least 2 valid pixels"):
        evaluate_disparity(np.ones((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="valid"):
        evaluate_disparity(np.ones((4, 4)), gt, valid=np.ones((2, 2), dtype=bool))


# --------------------------------------------------------------------------- metric depth


def test_metric_depth_is_scored_as_it_is() -> None:
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 9.0, size=(30, 40))
    exact = evaluate_depth(gt, gt)
    assert (exact.abs_rel, exact.delta1, exact.rmse) == (0.0, 1.0, 0.0)
    assert (exact.scale, exact.shift, exact.valid_pixels) == (1.0, 0.0, 30 * 40)
    # 10 % too far everywhere: AbsRel 0.1, all within 25 %, RMSE 0.1 * rms(gt)
    far = evaluate_depth(1.1 * gt, gt, max_depth=20.0)
    assert far.abs_rel == pytest.approx(0.1, rel=1e-12)
    assert far.delta1 == 1.0
    assert far.rmse == pytest.approx(0.1 * np.sqrt(np.mean(gt**2)), rel=1e-12)
    # alignment would make 1.1 * gt perfect: the disparity protocol forgives the scale
    assert evaluate_disparity(1 / (1.1 * gt), gt, max_depth=20.0).abs_rel < 1e-12
    # 30 % too near on the left half, exact on the right: delta1 exactly one half
    half = gt.copy()
    half[:, :20] *= 0.7
    mixed = evaluate_depth(half, gt, max_depth=20.0)
    assert mixed.delta1 == 0.5
    assert mixed.abs_rel == pytest.approx(0.15, rel=1e-12)


def test_metric_depth_cap_holes_and_resize() -> None:
    gt = np.array([[1.0, 2.0, 4.0, 5.0, 8.0]])
    prediction = np.array([[1.0, np.nan, 0.0, 20.0, 8.0]])  # a hole, no depth, far too far
    result = evaluate_depth(prediction, gt)  # 20 m is capped at 10: error 1 at gt 5
    assert result.valid_pixels == 3
    assert result.abs_rel == pytest.approx(1 / 3)
    assert result.rmse == pytest.approx(np.sqrt(25 / 3))
    # a prediction at half the size is resized bilinearly: a plane stays the plane
    v, u = np.mgrid[0:40, 0:60]
    plane = 2.0 + 0.01 * u + 0.02 * v
    small = cv2.resize(plane.astype(np.float32), (30, 20), interpolation=cv2.INTER_AREA)
    assert evaluate_depth(small, plane).abs_rel < 1e-3
    with pytest.raises(ValueError, match="at least 2 valid pixels"):
        evaluate_depth(np.zeros((4, 4)), np.ones((4, 4)))


def test_cli_evaluate_metric(tmp_path: Path, shared_dir: Path) -> None:
    gt = np.load(shared_dir / "real_midas" / "depth_00065.npy").astype(np.float32)
    truth = tmp_path / "truth.npy"
    np.save(truth, gt)
    prediction = tmp_path / "prediction.png"  # 16-bit millimetres, 10 % too far
    cv2.imwrite(str(prediction), np.round(gt * 1100).astype(np.uint16))
    result = CliRunner().invoke(app, ["evaluate", str(prediction), str(truth), "--metric"])
    assert result.exit_code == 0, result.stderr
    words = result.stdout.split()
    valid = (gt > 0.1) & (gt < 10) & (np.round(gt * 1100) > 0)
    expected = evaluate_depth(np.round(gt * 1100) / 1000, gt)
    assert float(words[1]) == pytest.approx(0.1, abs=1e-4)
    assert float(words[1]) == pytest.approx(expected.abs_rel, abs=5e-5)
    assert float(words[3]) == pytest.approx(expected.delta1, abs=5e-5)
    assert float(words[5]) == pytest.approx(expected.rmse, abs=5e-5)
    assert f"({np.count_nonzero(valid):,} valid pixels, metric, not aligned)" in result.stdout


# --------------------------------------------------------------------------- loaders


def test_nyu_png_is_millimetres(shared_dir: Path, tmp_path: Path) -> None:
    for frame in ("00000", "00050", "00100"):
        path = shared_dir / "eval" / "nyu_metric3d" / f"sync_depth_{frame}.png"
        depth = load_ground_truth_depth(path, encoding="nyu_png")
        assert depth.shape == (480, 640)
        assert depth.dtype == np.float32
        valid = depth > 0
        assert 0.66 < valid.mean() < 0.76  # README: 67-75 %
        # README says ~1.7 to 8.3 m; the nearest pixels are in fact 0.7-1.4 m. Metres, not mm:
        assert depth[valid].min() > 0.5
        assert depth[valid].max() < 8.4
    written = tmp_path / "d.png"
    cv2.imwrite(str(written), np.array([[0, 1234], [65535, 1]], dtype=np.uint16))
    np.testing.assert_allclose(
        load_ground_truth_depth(written, encoding="nyu_png"), [[0, 1.234], [65.535, 0.001]]
    )
    np.testing.assert_allclose(
        load_ground_truth_depth(written, encoding="kitti_png"),
        [[0, 1234 / 256], [65535 / 256, 1 / 256]],
    )
    with pytest.raises(ValueError, match="encoding"):
        load_ground_truth_depth(written)


def test_kitti_png_is_sparse_lidar(shared_dir: Path) -> None:
    for frame in ("0000000005", "0000000050", "0000000100"):
        path = shared_dir / "eval" / "kitti_metric3d" / f"depth_{frame}.png"
        depth = load_ground_truth_depth(path, encoding="kitti_png")
        assert depth.shape == (375, 1242)
        valid = depth > 0
        assert 0.17 < valid.mean() < 0.22  # README: 18-21 %
        assert depth[valid].min() > 4.0  # README: ~6-85 m (5.1 m in fact)
        assert depth[valid].max() < 90.0
        rows = np.nonzero(valid)[0]
        assert rows.mean() > 375 / 2  # the LiDAR covers the lower part of the image


def test_npy_metres_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array([[1.5, 0.0], [np.nan, -2.0]], dtype=np.float16))
    depth = load_ground_truth_depth(path)
    assert depth.dtype == np.float32
    assert depth.tolist() == [[1.5, 0.0], [0.0, 0.0]]


def test_middlebury_disparity_against_itself(shared_dir: Path) -> None:
    folder = shared_dir / "eval" / "middlebury2003_cones"
    disparity = load_ground_truth_disparity(folder / "disp2.png")
    assert disparity.shape == (375, 450)
    known = disparity > 0
    assert 0.95 < known.mean() < 0.99  # README: about 97 % valid
    assert disparity.max() <= 255 / 4
    # Disparity is inverse depth: 1 / disparity is depth in units of focal * baseline.
    depth = np.where(known, 1.0 / np.where(known, disparity, 1.0), 0.0)
    result = evaluate_disparity(disparity, depth, min_depth=0.0, max_depth=10.0)
    assert result.abs_rel == pytest.approx(0.0, abs=1e-6)
    assert result.delta1 == 1.0
    assert result.valid_pixels == np.count_nonzero(known)
