"""``depth2mesh depth``: outputs, pictures, exit codes, nothing overwritten unasked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli

from depth2mesh.depth.model import DepthModel, predict_disparity
from depth2mesh.exchange.photo import read_photo

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def weights_env(parity_weights: Path, isolated_env: dict[str, str]) -> dict[str, str]:
    return {**isolated_env, "DEPTH2MESH_WEIGHTS": str(parity_weights)}


def test_version_and_help_do_not_import_torch() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from depth2mesh.apps.cli import app; "
        "r = CliRunner().invoke(app, ['--version']); print(r.output.strip()); "
        "r = CliRunner().invoke(app, ['depth', '--help']); assert r.exit_code == 0, r.output; "
        "print('torch' in sys.modules, 'timm' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    from depth2mesh import __version__

    assert result.stdout.splitlines() == [f"depth2mesh {__version__}", "False False"]


def test_help_teaches_the_weights_order() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for part in ("--weights", "DEPTH2MESH_WEIGHTS", "torch.hub", "sha256", "DEPTH2MESH_OFFLINE"):
        assert part in text


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_depth_writes_pictures_that_match_the_disparity(
    tmp_path: Path, weights_env: dict[str, str], parity_model: DepthModel
) -> None:
    photos = [SAMPLES / "chelsea.png", SAMPLES / "rocket.jpg"]
    result = run_cli("depth", *photos, "-o", tmp_path / "out", "--save-raw", env=weights_env)
    assert result.returncode == 0, result.stderr
    assert "2 converted, 0 skipped, 0 failed" in result.stdout
    assert "6 files written" in result.stdout
    assert result.stderr.count("warning:") == 1  # the parity weights are not the official ones
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "chelsea_depth.png",
        "chelsea_depth_inferno.png",
        "chelsea_disparity.npy",
        "rocket_depth.png",
        "rocket_depth_inferno.png",
        "rocket_disparity.npy",
    ]
    for photo in photos:
        expected = predict_disparity(read_photo(photo).rgb, parity_model)
        raw = np.load(tmp_path / "out" / f"{photo.stem}_disparity.npy")
        assert raw.dtype == np.float32
        np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-5)

        png16 = cv2.imread(str(tmp_path / "out" / f"{photo.stem}_depth.png"), -1)
        assert png16.dtype == np.uint16
        assert png16.shape == expected.shape
        assert png16.min() == 0
        assert png16.max() == 65535
        # near is bright: the picture is an increasing function of disparity
        scaled = (expected - expected.min()) / (expected.max() - expected.min()) * 65535
        assert np.abs(png16.astype(np.float64) - scaled).max() <= 1.0

        inferno = cv2.imread(str(tmp_path / "out" / f"{photo.stem}_depth_inferno.png"))
        assert inferno.shape == (*expected.shape, 3)
        near = np.unravel_index(np.argmax(expected), expected.shape)
        far = np.unravel_index(np.argmin(expected), expected.shape)
        assert int(inferno[near].sum()) > int(inferno[far].sum()) + 400  # yellow vs black
        assert (tmp_path / "out" / f"{photo.stem}_depth.png").stat().st_mode & 0o044  # readable


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_existing_outputs_are_kept_without_overwrite(
    tmp_path: Path, weights_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "chelsea_depth.png"
    existing.write_bytes(b"keep me")
    result = run_cli(
        "depth", SAMPLES / "chelsea.png", SAMPLES / "coffee.png", "-o", out, env=weights_env
    )
    assert result.returncode == 1
    assert existing.read_bytes() == b"keep me"
    assert "chelsea_depth.png exists already: pass --overwrite" in " ".join(result.stderr.split())
    # the rest of the batch is still processed, and nothing else was written for chelsea
    assert sorted(p.name for p in out.iterdir()) == [
        "chelsea_depth.png",
        "coffee_depth.png",
        "coffee_depth_inferno.png",
    ]
    again = run_cli("depth", SAMPLES / "chelsea.png", "-o", out, "--overwrite", env=weights_env)
    assert again.returncode == 0, again.stderr
    assert cv2.imread(str(existing), -1).dtype == np.uint16


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_bad_photos_get_one_line_each_and_the_batch_goes_on(
    tmp_path: Path, weights_env: dict[str, str]
) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    empty = tmp_path / "empty.png"
    empty.touch()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((SAMPLES / "chelsea.png").read_bytes()[:5000])
    result = run_cli(
        "depth",
        fake,
        tmp_path / "missing.png",
        empty,
        truncated,
        SAMPLES / "coffee.png",
        "-o",
        tmp_path / "out",
        env=weights_env,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 converted, 0 skipped, 4 failed" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "coffee_depth.png",
        "coffee_depth_inferno.png",
    ]


@pytest.mark.slow  # four subprocesses: over 2 s
def test_folder_input_and_usage_errors(tmp_path: Path, weights_env: dict[str, str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes((SAMPLES / "chelsea.png").read_bytes())
    (folder / "notes.txt").write_text("ignored")
    result = run_cli("depth", folder, "-o", tmp_path / "out", env=weights_env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_depth.png",
        "a_depth_inferno.png",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("depth", empty, "-o", tmp_path / "o2", env=weights_env)
    assert nothing.returncode == 1  # reported like any bad input, one line
    assert "is a folder with no photos (--recursive to include subfolders)" in nothing.stderr
    assert run_cli("depth", SAMPLES / "coffee.png", env=weights_env).returncode == 2  # no -o


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_unwritable_output_folder(tmp_path: Path, weights_env: dict[str, str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("depth", SAMPLES / "coffee.png", "-o", blocker / "out", env=weights_env)
    assert result.returncode == 1
    assert "cannot create the output folder" in result.stderr


def test_unknown_device_is_one_line(tmp_path: Path, weights_env: dict[str, str]) -> None:
    result = run_cli(
        "depth", SAMPLES / "coffee.png", "-o", tmp_path, "--device", "tpu", env=weights_env
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown device 'tpu': use one of auto, cpu, cuda, mps"
    ]
