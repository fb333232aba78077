"""The lean pipeline: the photo's JPEG embedded as is, depth at the grid's size, no torch.

Each claim the speed work rests on, checked on real files and real consumers (the glTF
validator, OpenCV decoding the embedded texture).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli
from helpers.glb import GlbCheck, glb_image, glb_texture, read_cloud
from PIL import Image

from depth2mesh.depth.backends import available_backends
from depth2mesh.depth.model import DepthModel, predict_disparity
from depth2mesh.errors import UnofficialWeightsWarning
from depth2mesh.exchange.photo import EXIF_ORIENTATION, Photo, read_photo
from depth2mesh.exchange.pictures import disparity_to_png16
from depth2mesh.exchange.texture import jpeg_without_metadata, photo_texture
from depth2mesh.pipeline.convert import (
    CameraOptions,
    ConvertOptions,
    convert_photo,
    grid_size,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def embedded_image(glb: Path) -> bytes:
    """Return the bytes of the GLB's first image, which must be a JPEG."""
    data, mime = glb_image(glb)
    assert mime == "image/jpeg"
    return data


def write_jpeg(path: Path, rgb: np.ndarray, **save: object) -> Path:
    Image.fromarray(rgb).save(path, format="JPEG", quality=93, **save)
    return path


@pytest.fixture
def photo_rgb() -> np.ndarray:
    """A 120x160 photo with detail (a crop of a sample)."""
    rgb = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB"))
    return np.ascontiguousarray(rgb[:120, :160])


def flat_depth(tmp_path: Path, shape: tuple[int, int]) -> Path:
    path = tmp_path / "depth.npy"
    np.save(path, np.full(shape, 2.0, np.float32))
    return path


# --------------------------------------------------------------------------- texture


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.mark.parametrize("progressive", [False, True])
def test_upright_jpeg_is_embedded_as_it_is(
    tmp_path: Path, photo_rgb: np.ndarray, progressive: bool, assert_valid_glb: GlbCheck
) -> None:
    photo = write_jpeg(tmp_path / "photo.jpg", photo_rgb, progressive=progressive)
    convert_photo(photo, tmp_path / "out", depth_file=flat_depth(tmp_path, (120, 160)))
    # a file with no metadata but JFIF: embedded byte for byte
    assert embedded_image(tmp_path / "out" / "photo.glb") == photo.read_bytes()
    sidecar = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert sidecar["texture"] == {"mime_type": "image/jpeg", "source": "photo", "quality": None}
    assert_valid_glb(tmp_path / "out" / "photo.glb")


@pytest.mark.parametrize("progressive", [False, True])
def test_embedded_jpeg_leaves_the_metadata_out(
    tmp_path: Path, photo_rgb: np.ndarray, progressive: bool, assert_valid_glb: GlbCheck
) -> None:
    """GPS position, camera serial, comments and an appended video never reach the GLB."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber (in IFD0 here; any tag will do)
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    path = tmp_path / "tagged.jpg"
    Image.fromarray(photo_rgb).save(
        path,
        format="JPEG",
        quality=93,
        progressive=progressive,
        exif=exif.tobytes(),
        comment=b"COMMENT-SECRET",
        icc_profile=b"ICC-PROFILE-BYTES" * 10,
    )
    original = path.read_bytes()
    path.write_bytes(original + b"\x00\x00\x00\x18ftypmp42 MOTION-PHOTO-VIDEO")
    for needle in (b"SERIAL-12345", b"COMMENT-SECRET", b"MOTION-PHOTO-VIDEO", b"Exif"):
        assert needle in path.read_bytes()
    convert_photo(path, tmp_path / "out", depth_file=flat_depth(tmp_path, (120, 160)))
    texture = embedded_image(tmp_path / "out" / "tagged.glb")
    for needle in (b"SERIAL-12345", b"COMMENT-SECRET", b"MOTION-PHOTO-VIDEO", b"Exif"):
        assert needle not in texture, needle
    assert b"ICC-PROFILE-BYTES" in texture  # colour management is kept
    assert texture.endswith(b"\xff\xd9")
    np.testing.assert_array_equal(decoded(texture), decoded(original))  # the same pixels
    assert len(texture) < len(original)
    assert_valid_glb(tmp_path / "out" / "tagged.glb")


def test_real_photo_is_embedded_without_metadata_and_valid(
    tmp_path: Path, shared_dir: Path, assert_valid_glb: GlbCheck
) -> None:
    source = shared_dir / "photos" / "moge_01_HouseIndoor.jpg"
    photo = read_photo(source)
    assert photo.jpeg == source.read_bytes()
    assert photo.orientation == 1
    assert b"Exif" in photo.jpeg
    height, width = photo.rgb.shape[:2]
    convert_photo(source, tmp_path, depth_file=flat_depth(tmp_path, (height, width)))
    texture = embedded_image(tmp_path / f"{source.stem}.glb")
    assert texture == jpeg_without_metadata(photo.jpeg)
    assert b"Exif" not in texture
    assert b"Photoshop" not in texture
    np.testing.assert_array_equal(decoded(texture), decoded(photo.jpeg))
    assert_valid_glb(tmp_path / f"{source.stem}.glb")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a",
        b"\xff\xd8",  # nothing after the start
        b"\xff\xd8\xff\xe1\x00",  # a truncated length
        b"\xff\xd8\xff\xe1\x00\x40abc",  # a segment longer than the file
        b"\xff\xd8\xff\xdb\x00\x04\x00\x00\xff\xda\x00\x02scan-without-end",
        b"\xff\xd8\x00\x00",  # no marker where one must be
    ],
)
def test_jpeg_parser_refuses_what_it_cannot_follow(data: bytes) -> None:
    with pytest.raises(ValueError, match="JPEG"):
        jpeg_without_metadata(data)


def test_unparseable_jpeg_data_falls_back_to_encoding(photo_rgb: np.ndarray) -> None:
    photo = Photo(photo_rgb, Path("x.jpg"), jpeg=b"\xff\xd8garbage")
    texture = photo_texture(photo)
    assert texture.source == "encoded"
    assert texture.quality == 90
    assert np.median(np.abs(decoded(texture.data).astype(int) - photo_rgb.astype(int))) <= 3


def test_texture_is_encoded_when_the_jpeg_cannot_be_used(
    tmp_path: Path, photo_rgb: np.ndarray, assert_valid_glb: GlbCheck
) -> None:
    depth = flat_depth(tmp_path, (120, 160))
    photo = write_jpeg(tmp_path / "photo.jpg", photo_rgb)
    cases = {
        "quality": ConvertOptions(jpeg_quality=70),
        "smaller": ConvertOptions(texture_size=80),
        "png": ConvertOptions(texture_format="png"),
    }
    for name, options in cases.items():
        convert_photo(photo, tmp_path / name, depth_file=depth, options=options)
        sidecar = json.loads((tmp_path / name / "photo.json").read_text())
        assert sidecar["texture"]["source"] == "encoded", name
        assert_valid_glb(tmp_path / name / "photo.glb")
    assert json.loads((tmp_path / "quality" / "photo.json").read_text())["texture"]["quality"] == 70
    assert embedded_image(tmp_path / "quality" / "photo.glb") != photo.read_bytes()
    assert glb_texture(tmp_path / "smaller" / "photo.glb").shape == (60, 80, 3)
    assert glb_texture(tmp_path / "png" / "photo.glb").shape == (120, 160, 3)


def test_rotated_jpeg_gets_an_upright_encoded_texture(
    tmp_path: Path, photo_rgb: np.ndarray
) -> None:
    """EXIF orientation 6: the file is stored sideways, so its bytes cannot be the texture."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    stored = np.ascontiguousarray(np.rot90(photo_rgb, 1))  # 160x120, needs 90 deg clockwise
    photo = write_jpeg(tmp_path / "rotated.jpg", stored, exif=exif.tobytes())
    loaded = read_photo(photo)
    assert loaded.jpeg is None
    assert loaded.rgb.shape == (120, 160, 3)
    convert_photo(photo, tmp_path / "out", depth_file=flat_depth(tmp_path, (120, 160)))
    texture = glb_texture(tmp_path / "out" / "rotated.glb")
    assert texture.shape == (120, 160, 3)
    difference = np.abs(texture.astype(int) - loaded.rgb.astype(int))
    assert np.median(difference) <= 3


def test_only_rgb_jpegs_offer_their_bytes(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    gray = tmp_path / "gray.jpg"
    Image.fromarray(photo_rgb[:, :, 0]).save(gray, format="JPEG")
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(photo_rgb).convert("CMYK").save(cmyk, format="JPEG")
    png = tmp_path / "photo.png"
    Image.fromarray(photo_rgb).save(png)
    for path in (gray, cmyk, png):
        assert read_photo(path).jpeg is None, path.name
    rgb = write_jpeg(tmp_path / "rgb.jpg", photo_rgb)
    photo = read_photo(rgb)
    assert photo.jpeg == rgb.read_bytes()
    decoded = np.asarray(Image.open(io.BytesIO(photo.jpeg)).convert("RGB"))
    np.testing.assert_array_equal(decoded, photo.rgb)  # the bytes are the pixels it holds


# --------------------------------------------------------------------------- depth pictures


def test_depth_pictures_at_the_grid_size_or_the_photo_size(
    tmp_path: Path, parity_model: DepthModel
) -> None:
    rgb = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"))  # 400x600
    rows, cols = grid_size(*rgb.shape[:2], 256)
    for size, shape in (("grid", (rows, cols)), ("photo", rgb.shape[:2])):
        options = ConvertOptions(grid=256, depth_size=size)  # type: ignore[arg-type]
        convert_photo(SAMPLES / "coffee.png", tmp_path / size, model=parity_model, options=options)
        picture = cv2.imread(str(tmp_path / size / "coffee_depth.png"), cv2.IMREAD_UNCHANGED)
        inferno = cv2.imread(str(tmp_path / size / "coffee_depth_inferno.png"))
        expected = disparity_to_png16(predict_disparity(rgb, parity_model, size=shape))
        assert picture.dtype == np.uint16
        np.testing.assert_array_equal(picture, expected)
        assert inferno.shape == (*shape, 3)
        sidecar = json.loads((tmp_path / size / "coffee.json").read_text())
        assert (sidecar["depth_pictures"]["height"], sidecar["depth_pictures"]["width"]) == shape
    # the geometry does not depend on the size of the pictures
    for name in ("coffee.glb", "coffee_points.ply"):
        assert (tmp_path / "grid" / name).read_bytes() == (tmp_path / "photo" / name).read_bytes()


@pytest.mark.slow  # four subprocesses
def test_cli_depth_size_texture_and_quality_options(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    photo = write_jpeg(tmp_path / "photo.jpg", photo_rgb)
    depth = flat_depth(tmp_path, (120, 160))
    result = run_cli(
        "convert",
        photo,
        "-o",
        tmp_path / "out",
        "--depth",
        depth,
        "--grid",
        "40",
        "--depth-size",
        "photo",
        "--jpeg-quality",
        "60",
        "--texture-size",
        "100",
    )
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(tmp_path / "out" / "photo_depth.png"), cv2.IMREAD_UNCHANGED)
    assert picture.shape == (120, 160)
    assert glb_texture(tmp_path / "out" / "photo.glb").shape == (75, 100, 3)
    sidecar = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert sidecar["texture"]["quality"] == 60
    assert sidecar["counts"]["grid_rows"] == 30
    for args, message in (
        (["--jpeg-quality", "0"], "--jpeg-quality must be in 1..100"),
        (["--texture-size", "8"], "--texture-size must be at least 16"),
        (["--depth-size", "huge"], "--depth-size"),
    ):
        bad = run_cli("convert", photo, "-o", tmp_path / "bad", "--depth", depth, *args)
        assert bad.returncode == 2, args
        assert message in bad.stderr, bad.stderr
        assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- no torch


@pytest.mark.slow  # a subprocess and two conversions at 400x600: over 2 s
def test_cli_convert_on_a_cached_export_never_imports_torch(
    tmp_path: Path, parity_weights: Path, parity_model: DepthModel
) -> None:
    """With the export cached (the parity_model fixture made it), torch and Ray are never imported.

    OpenVINO is a required dependency, so the default backend is never eager torch here.
    """
    assert parity_model.backend in available_backends()[1:], parity_model.backend
    script = (
        "import sys\n"
        "from depth2mesh.apps.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
        "    print('cluster imported:', 'depth2mesh.pipeline.cluster' in sys.modules,\n"
        "          file=sys.stderr)\n"
        "    print('ray imported:', 'ray' in sys.modules, file=sys.stderr)\n"
    )
    arguments = ["convert", str(SAMPLES / "coffee.png"), "-o", str(tmp_path / "out")]
    arguments += ["--weights", str(parity_weights)]
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "DEPTH2MESH_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stderr
    # the local batch path (its progress included) never loads the Ray module
    assert "cluster imported: False" in result.stderr
    assert "ray imported: False" in result.stderr
    sidecar = json.loads((tmp_path / "out" / "coffee.json").read_text())
    assert sidecar["model"]["backend"] == parity_model.backend
    assert sidecar["model"]["device"] == "cpu"
    # same files as the in-process model (which has torch loaded) writes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        convert_photo(SAMPLES / "coffee.png", tmp_path / "here", model=parity_model)
    for name in ("coffee.glb", "coffee_points.ply", "coffee_depth.png"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


# --------------------------------------------------------------------------- huge photos


def test_large_jpeg_is_decoded_smaller_by_the_jpeg_decoder(
    tmp_path: Path, photo_rgb: np.ndarray
) -> None:
    big = cv2.resize(photo_rgb, (800, 600), interpolation=cv2.INTER_CUBIC)
    path = write_jpeg(tmp_path / "big.jpg", big)
    full = read_photo(path)
    assert full.size == (600, 800)
    assert full.stored_size is None
    for min_side, decoded in (
        (900, (600, 800)),
        (400, (300, 400)),
        (399, (300, 400)),
        (200, (150, 200)),
        (10, (75, 100)),
    ):
        photo = read_photo(path, min_side=min_side)
        assert photo.rgb.shape[:2] == decoded, min_side
        assert photo.size == (600, 800)
        assert (photo.jpeg is None) == (decoded != (600, 800))
        # the decoder's own scaling: close to the full decode, shrunk
        shrunk = cv2.resize(full.rgb, decoded[::-1], interpolation=cv2.INTER_AREA)
        assert np.median(np.abs(photo.rgb.astype(int) - shrunk.astype(int))) <= 2
    # a sideways-stored JPEG: the stored size is the upright one
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    sideways = write_jpeg(
        tmp_path / "sideways.jpg", np.ascontiguousarray(np.rot90(big, 1)), exif=exif.tobytes()
    )
    photo = read_photo(sideways, min_side=200)
    assert photo.size == (600, 800)
    assert photo.rgb.shape[:2] == (150, 200)
    # other formats are decoded at full size
    png = tmp_path / "big.png"
    Image.fromarray(big).save(png)
    assert read_photo(png, min_side=200).rgb.shape[:2] == (600, 800)


def test_reduced_decode_keeps_the_geometry_and_the_photo_size(
    tmp_path: Path, photo_rgb: np.ndarray, assert_valid_glb: GlbCheck
) -> None:
    big = cv2.resize(photo_rgb, (800, 600), interpolation=cv2.INTER_CUBIC)
    path = write_jpeg(tmp_path / "big.jpg", big)
    depth = tmp_path / "depth.npy"
    rows = np.linspace(1.5, 4.0, 600, dtype=np.float32)[:, None]
    np.save(depth, np.repeat(rows, 800, axis=1))
    results = {}
    for name, texture_size in (("full", 4096), ("reduced", 200)):
        options = ConvertOptions(  # no layer: the texture is the photo alone
            grid=64, texture_size=texture_size, camera=CameraOptions(fov_deg=50.0), inpaint="off"
        )
        results[name] = convert_photo(path, tmp_path / name, depth_file=depth, options=options)
        assert_valid_glb(tmp_path / name / "big.glb")
    sidecar = json.loads((tmp_path / "reduced" / "big.json").read_text())
    assert (sidecar["photo"]["width"], sidecar["photo"]["height"]) == (800, 600)
    assert (sidecar["photo"]["decoded_width"], sidecar["photo"]["decoded_height"]) == (200, 150)
    assert results["reduced"].intrinsics == results["full"].intrinsics
    assert results["full"].intrinsics.width == 800
    assert glb_texture(tmp_path / "reduced" / "big.glb").shape == (150, 200, 3)
    full_points, full_colors, _ = read_cloud(tmp_path / "full" / "big_points.ply")
    points, colors, _ = read_cloud(tmp_path / "reduced" / "big_points.ply")
    np.testing.assert_array_equal(points, full_points)  # geometry from the stored size
    assert np.median(np.abs(colors.astype(int) - full_colors.astype(int))) <= 3
