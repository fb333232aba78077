"""Library errors name Python parameters; the CLI says them as options, the page as labels."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from helpers.cli import run_cli

from depth2mesh.errors import ParameterError
from depth2mesh.geometry.camera import resolve_intrinsics
from depth2mesh.geometry.mesh import check_poisson_options
from depth2mesh.pipeline.batch import run_batch
from depth2mesh.pipeline.convert import ConvertOptions

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.parametrize(
    ("make", "parameter", "text"),
    [
        (lambda: ConvertOptions(near=0).check(), "near", "near must be at least"),
        (lambda: ConvertOptions(near=5, far=2).check(), "far", "far must be greater than near"),
        (lambda: ConvertOptions(poisson_depth=3).check(), "poisson_depth", "poisson_depth must"),
        (lambda: ConvertOptions(formats=("fbx",)).check(), "formats", "formats must be one of"),
        (lambda: resolve_intrinsics(9, 9, fov_deg=200), "fov_deg", "fov_deg must be between"),
        (lambda: resolve_intrinsics(9, 9, cx=3), "fx", "fx is required with cx, got no fx"),
        (lambda: resolve_intrinsics(9, 9, focal_px=-1), "focal_px", "focal_px must be a pos"),
        (lambda: run_batch([], lambda item: None, jobs=0), "jobs", "jobs must be at least 1"),
        (
            lambda: ConvertOptions(camera_model="dav2-small").check(),
            "camera_model",
            "camera_model must be a model that estimates the camera (moge2-small); dav2-small",
        ),
        (
            lambda: ConvertOptions(camera_model="moge").check(),
            "camera_model",
            "camera_model must be one of moge2-small (a model that estimates the camera), got",
        ),
        (
            lambda: check_poisson_options(depth=13, density_quantile=0, face_budget=None),
            "depth",
            "depth must be between 5 and 12",
        ),
    ],
)
def test_library_errors_name_the_parameter(make: object, parameter: str, text: str) -> None:
    with pytest.raises(ParameterError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(text)
    assert "--" not in str(caught.value)
    assert "\n" not in str(caught.value)
    copy = pickle.loads(pickle.dumps(caught.value))  # crosses process boundaries (Ray) intact
    assert (str(copy), copy.parameter) == (str(caught.value), parameter)


def test_render_names_each_parameter_its_own_way() -> None:
    error = ParameterError("{far} must be greater than {near} ({x}), got {'a'}", "far", "near")
    assert str(error) == "far must be greater than near ({x}), got {'a'}"
    assert error.render(lambda name: f"--{name}") == (
        "--far must be greater than --near ({x}), got {'a'}"
    )


@pytest.mark.slow  # a CLI subprocess per case
@pytest.mark.parametrize(
    ("arguments", "flag_text"),
    [
        (["--fov", "200"], "--fov must be between 0 and 180"),
        (["--cy", "3"], "--fx is required with --cy, got no --fx"),
        (["--format", "fbx"], "--format must be one of obj"),
        (["--poisson-depth", "3"], "--poisson-depth must be between 5 and 12"),
    ],
)
def test_cli_says_parameters_as_its_options(
    tmp_path: Path, arguments: list[str], flag_text: str
) -> None:
    result = run_cli("convert", SAMPLES / "coffee.png", "-o", tmp_path, *arguments)
    assert result.returncode == 2, result.stderr
    assert flag_text in " ".join(result.stderr.split()), result.stderr


@pytest.mark.slow  # CLI subprocesses
def test_serve_says_its_own_options() -> None:
    result = run_cli("serve", "--max-upload-mb", "0")
    assert result.returncode == 2, result.stderr
    assert "--max-upload-mb must be positive" in " ".join(result.stderr.split()), result.stderr
