"""The Python API: lazy imports, devices, photo loading, depth pictures, atomic writes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.photos import STORE
from PIL import Image

import depth2mesh
from depth2mesh.atomic import atomic_write
from depth2mesh.depth.model import DepthModel, gpu_possible, resolve_device, torch_hub_dir
from depth2mesh.errors import DeviceError, InputError, OutputError
from depth2mesh.exchange.photo import read_photo
from depth2mesh.exchange.pictures import colorize_disparity, disparity_to_png16, normalize_disparity

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_import_is_light() -> None:
    code = "import sys, depth2mesh; print('torch' in sys.modules, depth2mesh.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", depth2mesh.__version__]


def test_public_api_names_resolve() -> None:
    for name in depth2mesh.__all__:
        assert getattr(depth2mesh, name) is not None
    with pytest.raises(AttributeError):
        _ = depth2mesh.not_a_thing  # type: ignore[attr-defined]


def test_readme_api_example(parity_model: DepthModel) -> None:
    photo = depth2mesh.read_photo(SAMPLES / "coffee.png")
    disparity = depth2mesh.predict_disparity(photo.rgb, parity_model)
    assert photo.rgb.dtype == np.uint8
    assert disparity.shape == photo.rgb.shape[:2] == (400, 600)
    assert disparity.dtype == np.float32


def test_predict_disparity_is_deterministic_and_input_is_untouched(
    parity_model: DepthModel,
) -> None:
    rgb = read_photo(SAMPLES / "chelsea.png").rgb
    before = rgb.copy()
    first = depth2mesh.predict_disparity(rgb, parity_model)
    second = depth2mesh.predict_disparity(rgb, parity_model)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(rgb, before)


def test_devices() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    expected = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto") == expected
    assert torch.device(resolve_device("auto")).type == expected.split(":")[0]
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("cpu:1")


def test_gpu_possible_reads_the_device_files(tmp_path: Path) -> None:
    """Without /dev/nvidia* or /dev/kfd, torch cannot see a GPU, so "auto" skips torch."""
    if not sys.platform.startswith("linux"):
        assert gpu_possible(tmp_path)
        return
    assert not gpu_possible(tmp_path)
    (tmp_path / "nvidia0").touch()
    assert gpu_possible(tmp_path)
    (tmp_path / "nvidia0").unlink()
    (tmp_path / "kfd").touch()
    assert gpu_possible(tmp_path)
    if torch.cuda.is_available():  # the real /dev agrees with torch wherever a GPU is seen
        assert gpu_possible()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"TORCH_HOME": "/opt/models/torch"},
        {"XDG_CACHE_HOME": "/var/cache/someone"},
        {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": "/x"},
        {"XDG_CACHE_HOME": ""},
        {"TORCH_HOME": ""},
    ],
)
@pytest.mark.slow  # a subprocess per case
def test_torch_hub_dir_without_torch_is_torchs_rule(environ: dict[str, str]) -> None:
    """The hub folder found without importing torch is the one torch.hub.get_dir() gives."""
    keys = ("TORCH_HOME", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in keys} | environ
    script = "import sys, torch; print(torch.hub.get_dir())"
    answer = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert torch_hub_dir(env) == Path(answer.stdout.strip())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_absent_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="no CUDA GPU is usable here"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(parity_weights: Path) -> None:
    import warnings

    rgb = read_photo(SAMPLES / "coffee.png").rgb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = depth2mesh.load_model(parity_weights, device="cpu")
        gpu = depth2mesh.load_model(parity_weights, device="cuda")
    a = depth2mesh.predict_disparity(rgb, cpu)
    b = depth2mesh.predict_disparity(rgb, gpu)
    assert np.abs(a - b).max() <= 1e-3 * (a.max() - a.min())


# --------------------------------------------------------------------------- photos


def _stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(STORE[orientation](upright))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_photo(tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    upright = rng.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)
    image = Image.fromarray(_stored(upright, orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    image.save(path, exif=exif.tobytes())
    photo = read_photo(path)
    assert photo.orientation == orientation
    np.testing.assert_array_equal(photo.rgb, upright)


def test_focal_length_35mm_is_read(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, exif=exif.tobytes())
    assert read_photo(path).focal_length_35mm == 26.0


def test_grayscale_16bit_and_rgba(tmp_path: Path) -> None:
    gray16 = tmp_path / "g16.png"
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(gray16)
    rgb = read_photo(gray16).rgb
    assert rgb.shape == (5, 7, 3)
    assert (rgb == 255).all()
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 3), (10, 20, 30, 128)).save(rgba)
    photo = read_photo(rgba)
    # composited on white: 10 * 128/255 + 255 * 127/255 = 132.0
    assert photo.rgb[0, 0].tolist() == [132, 137, 142]
    assert photo.alpha is not None
    assert (photo.alpha == 128).all()


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "truncated"])
def test_bad_photo_is_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "photo.jpg"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("hello")
    elif kind == "truncated":
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="JPEG")
        path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(InputError) as caught:
        read_photo(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- depth pictures


def test_normalize_is_min_max_and_safe() -> None:
    disparity = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    np.testing.assert_allclose(normalize_disparity(disparity), [[0, 0.25], [0.5, 1]])
    assert (normalize_disparity(np.full((3, 3), 7.0)) == 0).all()
    with_nan = np.array([[np.nan, 1.0], [np.inf, 3.0]])
    np.testing.assert_allclose(normalize_disparity(with_nan), [[0, 0], [0, 1]])
    assert (normalize_disparity(np.full((2, 2), np.nan)) == 0).all()


def test_png16_and_inferno_ordering() -> None:
    ramp = np.linspace(-0.1, 5.0, 256, dtype=np.float32)[None].repeat(4, axis=0)
    png = disparity_to_png16(ramp)
    assert png.dtype == np.uint16
    assert png[0, 0] == 0
    assert png[0, -1] == 65535
    assert (np.diff(png[0].astype(int)) > 0).all()
    colour = colorize_disparity(ramp)
    assert colour.shape == (4, 256, 3)
    assert colour[0, 0].sum() < 10  # inferno starts black
    assert colour[0, -1, 0] > 240  # and ends pale yellow
    assert colour[0, -1, 1] > 240


def test_atomic_write_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "result.bin"

    def crash(stream: io.BufferedWriter) -> None:  # type: ignore[type-arg]
        stream.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    atomic_write(target, lambda s: s.write(b"one") and None)
    with pytest.raises(OutputError, match="exists already"):
        atomic_write(target, lambda s: s.write(b"two") and None)
    assert target.read_bytes() == b"one"
    atomic_write(target, lambda s: s.write(b"three") and None, overwrite=True)
    assert target.read_bytes() == b"three"
    assert [p.name for p in tmp_path.iterdir()] == ["result.bin"]


@pytest.mark.slow  # about 10 s
def test_readme_convert_example(tmp_path: Path, parity_model: DepthModel) -> None:
    options = depth2mesh.ConvertOptions(near=1.0, far=8.0, mesh="both")
    result = depth2mesh.convert_photo(
        SAMPLES / "coffee.png", tmp_path, model=parity_model, options=options
    )
    assert [p.name for p in result.files] == [
        "coffee_depth.png",
        "coffee_depth_inferno.png",
        "coffee_points.ply",
        "coffee.glb",
        "coffee_poisson.glb",
        "coffee_poisson.ply",
        "coffee.json",
    ]
    assert all(p.is_file() for p in result.files)
    assert isinstance(result.intrinsics, depth2mesh.Intrinsics)
