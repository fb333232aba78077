"""``camera_model`` (``--camera moge2-small``): MoGe-2's camera with another model's depth."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import run_cli
from helpers.moge2 import pinhole_checkpoint, synthetic_photo
from PIL import Image
from typer.testing import CliRunner

from depth2mesh.apps.cli import app
from depth2mesh.depth.model import DepthModel, load_camera_model, load_model
from depth2mesh.depth.registry import MODELS, camera_models
from depth2mesh.errors import ParameterError, UnofficialWeightsWarning
from depth2mesh.exchange.gltf_read import read_glb_mesh
from depth2mesh.pipeline.convert import (
    CameraOptions,
    ConvertOptions,
    camera_model_for,
    convert_photo,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _stand_in(name: str) -> DepthModel:
    """A model record of the registry's ``name`` (no network: only its name is read)."""
    return DepthModel("cpu", Path(f"{name}.pt"), "0" * 64, "argument", spec=MODELS[name])


def test_the_camera_models_are_the_registrys_point_models() -> None:
    assert camera_models() == ("moge2-small",)


def test_no_second_camera_model_when_the_depth_model_is_it() -> None:
    options = ConvertOptions(camera_model="MoGe2-Small ")
    assert camera_model_for(options, _stand_in("moge2-small"), None) is None
    assert camera_model_for(ConvertOptions(), _stand_in("midas-small"), None) is None
    camera = _stand_in("moge2-small")
    assert camera_model_for(options, _stand_in("midas-small"), None, camera) is camera
    with pytest.raises(ValueError, match=r"options\.camera_model is None"):
        camera_model_for(ConvertOptions(), _stand_in("midas-small"), None, camera)
    with pytest.raises(ParameterError, match="camera_model must be a model that estimates"):
        load_camera_model("midas-small")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dav2-small", "--camera must be a model that estimates the camera (moge2-small); "),
        ("nope", "--camera must be one of moge2-small (a model that estimates the camera), got"),
    ],
)
def test_the_command_line_refuses_a_camera_model_in_one_line(
    tmp_path: Path, name: str, message: str
) -> None:
    np.save(tmp_path / "depth.npy", np.ones((4, 4), np.float32))
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(SAMPLES / "coffee.png"),
            "-o",
            str(tmp_path / "out"),
            "--depth",
            str(tmp_path / "depth.npy"),
            "--camera",
            name,
        ],
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert message in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.fixture(scope="module")
def pinhole_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pinhole_checkpoint(tmp_path_factory.mktemp("moge2") / "model.pt")


def _quietly_load(weights: Path, **arguments: object) -> DepthModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)  # test weights
        return load_model(weights, device="cpu", backend="torch", **arguments)  # type: ignore[arg-type]


def _photos(folder: Path) -> tuple[Path, Path]:
    """The same pixels without EXIF (PNG) and with a 50 mm EXIF focal length (JPEG)."""
    pixels = synthetic_photo(120, 160, 11)
    plain = folder / "stripped.png"
    Image.fromarray(pixels).save(plain)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 50
    tagged = folder / "phone.jpg"
    Image.fromarray(pixels).save(tagged, exif=exif.tobytes(), quality=95)
    return plain, tagged


@pytest.mark.slow  # builds a ViT-S MoGe-2 and runs it beside MiDaS: seconds
def test_another_models_depth_gets_moge2s_camera(
    tmp_path: Path, pinhole_weights: Path, parity_weights: Path, isolated_env: dict[str, str]
) -> None:
    plain, tagged = _photos(tmp_path)
    moge = _quietly_load(pinhole_weights, model="moge2-small")
    midas = _quietly_load(parity_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        camera = load_camera_model("moge2-small", pinhole_weights, backend="torch")
    assert camera.input_size == 1200  # its least token count: the cheapest run
    own = convert_photo(plain, tmp_path / "moge", model=moge)
    assert own.intrinsics.source == "estimated by moge2-small"
    options = ConvertOptions(camera_model="moge2-small")
    result = convert_photo(
        plain, tmp_path / "midas", model=midas, options=options, camera_model=camera
    )
    # the same camera as moge2-small's own conversion gives, with MiDaS's depth
    assert result.intrinsics == own.intrinsics
    sidecar = json.loads(result.paths["sidecar"].read_text())
    assert sidecar["intrinsics"]["source"] == "estimated by moge2-small"
    assert sidecar["intrinsics"]["hfov_deg"] == pytest.approx(own.intrinsics.hfov_deg)
    assert sidecar["camera_model"]["model"] == "moge2-small"
    assert sidecar["model"]["model"] == "midas-small"
    assert sidecar["depth"]["kind"] == "disparity"
    glb = read_glb_mesh(result.paths["glb"].read_bytes())
    assert glb.camera is not None
    assert glb.camera.yfov == pytest.approx(result.intrinsics.yfov, abs=1e-6)
    assert result.intrinsics.hfov_deg != pytest.approx(60.0, abs=1.0)  # not the default
    # EXIF wins over the estimate, and so does an explicit field of view
    with_exif = convert_photo(
        tagged, tmp_path / "midas", model=midas, options=options, camera_model=camera
    )
    assert with_exif.intrinsics.source == "exif"
    fov_50mm = math.degrees(2 * math.atan(0.8 * math.hypot(36, 24) / 2 / 50))
    assert with_exif.intrinsics.hfov_deg == pytest.approx(fov_50mm)
    explicit = ConvertOptions(
        camera_model="moge2-small", overwrite=True, camera=CameraOptions(fov_deg=47.0)
    )
    told = convert_photo(
        plain, tmp_path / "midas", model=midas, options=explicit, camera_model=camera
    )
    assert (told.intrinsics.source, told.intrinsics.hfov_deg) == ("fov", pytest.approx(47.0))


@pytest.mark.slow  # CLI subprocesses that build a ViT-S MoGe-2: seconds
def test_the_command_line_gives_moge2s_camera_to_a_depth_file_and_accepts_it_twice(
    tmp_path: Path, pinhole_weights: Path, isolated_env: dict[str, str]
) -> None:
    plain, _ = _photos(tmp_path)
    np.save(tmp_path / "depth.npy", np.full((120, 160), 2.5, np.float32))
    env = {**isolated_env, "DEPTH2MESH_WEIGHTS_MOGE2_SMALL": str(pinhole_weights)}
    result = run_cli(
        "convert",
        plain,
        "-o",
        tmp_path / "out",
        "--depth",
        tmp_path / "depth.npy",
        "--camera",
        "moge2-small",
        "--backend",
        "torch",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "out" / "stripped.json").read_text())
    assert sidecar["intrinsics"]["source"] == "estimated by moge2-small"
    assert sidecar["depth"]["source"] == "file"
    moge = _quietly_load(pinhole_weights, model="moge2-small")
    own = convert_photo(plain, tmp_path / "moge", model=moge, options=ConvertOptions())
    assert sidecar["intrinsics"]["hfov_deg"] == pytest.approx(own.intrinsics.hfov_deg, abs=1e-9)
    # --camera moge2-small with --model moge2-small is accepted: it is the same estimate, once
    result = run_cli(
        "convert",
        plain,
        "-o",
        tmp_path / "same",
        "--model",
        "moge2-small",
        "--camera",
        "moge2-small",
        "--weights",
        pinhole_weights,
        "--backend",
        "torch",
        env=isolated_env,
    )
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "same" / "stripped.json").read_text())
    assert sidecar["intrinsics"] == json.loads(own.paths["sidecar"].read_text())["intrinsics"]
    assert sidecar["camera_model"] is None  # no second model loaded or run
