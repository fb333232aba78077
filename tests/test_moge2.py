"""MoGe-2: the network against the official outputs, the numpy infer, the checkpoint reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.moge2 import (
    CASES,
    FIXTURE_CONFIG,
    FIXTURES,
    FOV_CASES,
    PINHOLE_FOCAL,
    case_key,
    photo_seed,
    pinhole_checkpoint,
    random_state,
    synthetic_photo,
    vit_config,
)

from depth2mesh.depth.networks import moge2
from depth2mesh.depth.networks import moge2_torch as network_module
from depth2mesh.errors import InputError, WeightsError

RELEASED_BYTES = 140_550_416
"""The released moge-2-vits-normal model.pt (its sha256 79a16621...e1dc)."""


@pytest.fixture(scope="module")
def official() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "official.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def network() -> network_module.MoGe2:
    shapes = network_module.expected_state_shapes(FIXTURE_CONFIG)
    state = {key: torch.from_numpy(v) for key, v in random_state(shapes).items()}
    return network_module.build_network(FIXTURE_CONFIG, state)


def _check_case(
    network: network_module.MoGe2,
    official: dict[str, np.ndarray],
    name: str,
    height: int,
    width: int,
    tokens: int,
    fov: float | None,
) -> None:
    key = case_key(name, tokens, fov)
    photo = synthetic_photo(height, width, photo_seed(name))
    maps, scale = network_module.run_network(network, moge2.network_inputs(photo, tokens))
    got = moge2.infer(maps, scale, height, width, fov_x=fov)
    pixels = official[f"{key}/pixels"]
    mask = got.mask.reshape(-1)[pixels]
    want_mask = official[f"{key}/mask"]
    agree = mask == want_mask
    assert agree.mean() >= 0.9999, f"{key}: mask differs on {np.count_nonzero(~agree)} pixels"
    whole = int(got.mask.sum())
    assert abs(whole - int(official[f"{key}/mask_count"][0])) <= 1e-4 * height * width
    both = mask & want_mask
    # within 5e-5 of the official point map's range (max - min of its finite coordinates);
    # depth is its z (a small photo's depth range alone can be near 0)
    points_tol = 5e-5 * float(official[f"{key}/points_range"][0])
    depth_tol = points_tol
    points = got.points.reshape(-1, 3)[pixels][both]
    depth = got.depth.reshape(-1)[pixels][both]
    assert np.abs(points - official[f"{key}/points"][both]).max(initial=0) <= points_tol, key
    assert np.abs(depth - official[f"{key}/depth"][both]).max(initial=0) <= depth_tol, key
    assert got.normals is not None
    normals = got.normals.reshape(-1, 3)[pixels][both]
    assert np.abs(normals - official[f"{key}/normal"][both]).max(initial=0) <= 5e-5, key
    want_k = official[f"{key}/intrinsics"]
    np.testing.assert_allclose(got.intrinsics, want_k, rtol=1e-4, err_msg=key)
    assert np.isinf(got.points.reshape(-1, 3)[pixels][~mask]).all()
    assert (got.normals.reshape(-1, 3)[pixels][~mask] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "height", "width", "tokens"),
    [
        pytest.param(
            *case,
            marks=pytest.mark.xfail(
                strict=True,
                reason="3x2 photo, 4 valid pixels: the focal solve is so ill-conditioned that "
                "float32 rounding upstream moves the focal by 1.8e-4 (points 1.06e-4 of range)",
            ),
        )
        if case[0] == "tiny_3x2"
        else case
        for case in CASES
    ],
)
def test_matches_official_infer(
    network: network_module.MoGe2,
    official: dict[str, np.ndarray],
    name: str,
    height: int,
    width: int,
    tokens: int,
) -> None:
    _check_case(network, official, name, height, width, tokens, None)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "height", "width", "tokens", "fov"), FOV_CASES)
def test_matches_official_infer_with_known_fov(
    network: network_module.MoGe2,
    official: dict[str, np.ndarray],
    name: str,
    height: int,
    width: int,
    tokens: int,
    fov: float,
) -> None:
    _check_case(network, official, name, height, width, tokens, fov)


def test_vits_state_dict_is_the_released_size() -> None:
    size = network_module.state_bytes(FIXTURE_CONFIG)
    assert abs(size - RELEASED_BYTES) / RELEASED_BYTES < 0.002  # the rest: the pickle's names
    assert size < RELEASED_BYTES


def test_vitb_and_vitl_configurations_build() -> None:
    base = vit_config("dinov2_vitb14", 768, [2, 5, 8, 11], [768, 1])
    large = vit_config("dinov2_vitl14", 1024, [5, 11, 17, 23], [1024, 1024, 1024, 1])
    released_vitb = 419_110_160  # moge-2-vitb-normal model.pt
    assert abs(network_module.state_bytes(base) - released_vitb) / released_vitb < 0.001
    shapes = network_module.expected_state_shapes(large)
    assert shapes["encoder.backbone.blocks.23.attn.qkv.weight"] == (3072, 1024)
    assert shapes["scale_head.4.weight"] == (1, 1024)


def test_token_grid_follows_the_aspect_ratio() -> None:
    assert moge2.token_grid(480, 640, 1200) == (30, 40)
    assert moge2.token_grid(3024, 4032, 1800) == (37, 49)
    assert moge2.token_grid(1, 1, 1200) == (35, 35)
    with pytest.raises(InputError, match="too elongated"):
        moge2.token_grid(1, 100_000, 1200)
    with pytest.raises(InputError, match="1200 to 3600"):
        moge2.check_tokens(4000)
    assert moge2.check_tokens(None) == moge2.DEFAULT_TOKENS


def _pinhole(focal: float, shift: float, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(3)
    uv = moge2.normalized_view_plane_uv(height, width)
    depth = rng.uniform(1.0, 4.0, (height, width)).astype(np.float32)
    points = np.empty((height, width, 3), np.float32)
    points[..., :2] = uv * depth[..., None] / focal
    points[..., 2] = depth - shift  # the network's z lacks the shift
    return points


def test_recover_focal_shift_finds_a_pinhole_camera() -> None:
    focal, shift = moge2.recover_focal_shift(_pinhole(1.3, 0.7))
    assert focal == pytest.approx(1.3, rel=1e-4)
    assert shift == pytest.approx(0.7, rel=1e-4)
    known, only_shift = moge2.recover_focal_shift(_pinhole(1.3, 0.7), focal=1.3)
    assert known == 1.3
    assert only_shift == pytest.approx(0.7, rel=1e-4)


def test_recover_focal_shift_ignores_masked_pixels() -> None:
    points = _pinhole(0.9, -0.4)
    mask = np.ones(points.shape[:2], bool)
    mask[:, :20] = False
    points[:, :20] = 1e3  # garbage where masked
    focal, shift = moge2.recover_focal_shift(points, mask)
    assert focal == pytest.approx(0.9, rel=1e-4)
    assert shift == pytest.approx(-0.4, rel=1e-3)
    assert moge2.recover_focal_shift(points, np.zeros_like(mask)) == (1.0, 0.0)


def test_intrinsics_of_a_known_field_of_view() -> None:
    height, width = 48, 64
    maps = np.zeros((7, 16, 16), np.float32)
    maps[6] = 1.0  # every pixel valid
    got = moge2.infer(maps, 2.0, height, width, fov_x=60.0)
    assert got.fov_x == pytest.approx(60.0, abs=1e-4)
    assert got.intrinsics[0, 2] == 0.5
    assert got.intrinsics[1, 2] == 0.5
    aspect = width / height
    assert got.intrinsics[1, 1] / got.intrinsics[0, 0] == pytest.approx(aspect, rel=1e-6)
    assert got.metric_scale == 2.0


def test_a_one_pixel_photo_without_field_of_view_gets_a_camera() -> None:
    maps = np.zeros((7, 16, 16), np.float32)
    maps[6] = 1.0
    got = moge2.infer(maps, 1.0, 1, 1)
    assert np.isfinite(got.intrinsics).all()
    assert got.intrinsics[0, 0] > 0


def test_antialias_resize_matches_torch() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((75, 130, 3)).astype(np.float32)
    for size in ((42, 56), (140, 280), (75, 130)):
        want = torch.nn.functional.interpolate(
            torch.from_numpy(image).permute(2, 0, 1)[None],
            size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0].permute(1, 2, 0)
        got = moge2.resize_antialias(image, *size)
        assert np.abs(got - want.numpy()).max() <= 3e-7


def test_banded_resize_matches_torch_when_shrinking_a_photo_several_times() -> None:
    # a 12 MP photo goes to 1200 tokens at 7.2x (15 taps a side), taken block by block
    rng = np.random.default_rng(1)
    planes = rng.random((3, 433, 577)).astype(np.float32)
    for size in ((56, 84), (1, 1), (433, 33), (14, 577)):
        want = torch.nn.functional.interpolate(
            torch.from_numpy(planes)[None], size, mode="bilinear", antialias=True
        )[0]
        got = moge2.resize_antialias_planes(planes, *size)
        assert got.shape == (3, *size)
        assert np.abs(got - want.numpy()).max() <= 3e-7, size


@pytest.mark.slow  # builds and saves a ViT-S checkpoint: seconds
def test_checkpoint_round_trip_and_bad_files(tmp_path: Path) -> None:
    config = vit_config("dinov2_vits14", 64, 2, [384, 1])
    shapes = network_module.expected_state_shapes(config)
    state = {key: torch.from_numpy(v) for key, v in random_state(shapes).items()}
    state["encoder.image_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    state["encoder.image_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    path = tmp_path / "model.pt"
    torch.save({"model_config": config, "model": state}, path)
    read_config, read_state = network_module.read_checkpoint(path)
    assert read_config == config
    assert "encoder.image_mean" not in read_state
    built = network_module.build_network(read_config, read_state)
    assert math.isclose(float(built.encoder.taps[0]), 10.0)
    del state["scale_head.0.bias"]
    torch.save({"model_config": config, "model": state}, path)
    with pytest.raises(WeightsError, match="1 keys missing"):
        network_module.read_checkpoint(path)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="not a MoGe-2 checkpoint"):
        network_module.read_checkpoint(path)
    torch.save(
        {
            "model_config": {**config, "encoder": {**config["encoder"], "backbone": "x"}},
            "model": state,
        },
        path,
    )
    with pytest.raises(WeightsError, match="backbone 'x'"):
        network_module.read_checkpoint(path)


@pytest.fixture(scope="module")
def fixture_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parity weights as an official-format ``model.pt`` (ImageNet buffers included)."""
    shapes = network_module.expected_state_shapes(FIXTURE_CONFIG)
    state = {key: torch.from_numpy(v) for key, v in random_state(shapes).items()}
    state["encoder.image_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    state["encoder.image_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    path = tmp_path_factory.mktemp("moge2") / "model.pt"
    torch.save({"model_config": FIXTURE_CONFIG, "model": state}, path)
    return path


@pytest.mark.slow
def test_backends_give_the_official_points(
    fixture_checkpoint: Path,
    official: dict[str, np.ndarray],
    isolated_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import depth2mesh
    from depth2mesh.depth.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    name, height, width, tokens = "vga_480x640", 480, 640, 1200
    key = case_key(name, tokens)
    photo = synthetic_photo(height, width, photo_seed(name))
    pixels = official[f"{key}/pixels"]
    tolerance = 5e-5 * float(official[f"{key}/points_range"][0])
    for backend in ("torch", "onnxruntime", "openvino"):
        with pytest.warns(depth2mesh.UnofficialWeightsWarning):
            model = depth2mesh.load_model(fixture_checkpoint, model="moge2-small", backend=backend)
        assert model.backend == backend
        got = depth2mesh.predict_points(photo, model, tokens=tokens)
        mask = got.mask.reshape(-1)[pixels]
        assert (mask == official[f"{key}/mask"]).mean() >= 0.9999, backend
        both = mask & official[f"{key}/mask"]
        points = got.points.reshape(-1, 3)[pixels][both]
        error = np.abs(points - official[f"{key}/points"][both]).max()
        assert error <= tolerance, (backend, error, tolerance)
        np.testing.assert_allclose(
            got.intrinsics, official[f"{key}/intrinsics"], rtol=1e-4, err_msg=backend
        )
    assert any((tmp_path / "cache").rglob("moge2*.onnx"))  # the export is cached


@pytest.mark.slow
def test_the_camera_comes_from_the_photo_without_exif(
    tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    from PIL import Image

    import depth2mesh
    from depth2mesh.exchange.gltf_read import read_glb_mesh

    weights = pinhole_checkpoint(tmp_path / "model.pt")
    with pytest.warns(depth2mesh.UnofficialWeightsWarning):
        model = depth2mesh.load_model(weights, model="moge2-small", backend="torch")
    pixels = synthetic_photo(120, 160, 7)
    plain = tmp_path / "stripped.png"
    Image.fromarray(pixels).save(plain)
    got = depth2mesh.predict_points(pixels, model, tokens=1200)
    assert got.focal == pytest.approx(PINHOLE_FOCAL, rel=0.01)
    assert abs(got.shift) < 0.02
    expected_fov = math.degrees(2 * math.atan(0.8 / PINHOLE_FOCAL))  # W / diagonal = 0.8
    assert got.fov_x == pytest.approx(expected_fov, abs=0.5)
    options = depth2mesh.ConvertOptions(mesh="grid")
    result = depth2mesh.convert_photo(plain, tmp_path / "out", model=model, options=options)
    assert result.intrinsics.source == "estimated by moge2-small"
    assert result.intrinsics.hfov_deg == pytest.approx(got.fov_x, abs=1e-3)
    glb = read_glb_mesh((tmp_path / "out" / "stripped.glb").read_bytes())
    assert glb.camera is not None
    assert math.degrees(glb.camera.yfov) == pytest.approx(
        math.degrees(result.intrinsics.yfov), abs=1e-3
    )
    # the same photo with EXIF: its 35 mm focal length wins, only the shift is solved
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 50
    tagged = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(tagged, exif=exif.tobytes(), quality=95)
    result = depth2mesh.convert_photo(tagged, tmp_path / "out", model=model, options=options)
    assert result.intrinsics.source == "exif"
    fov_50mm = math.degrees(2 * math.atan(0.8 * math.hypot(36, 24) / 2 / 50))
    assert result.intrinsics.hfov_deg == pytest.approx(fov_50mm, abs=1e-6)
    known = depth2mesh.predict_points(pixels, model, tokens=1200, fov_x=fov_50mm)
    assert known.fov_x == pytest.approx(fov_50mm, abs=1e-3)
    assert abs(known.shift) > 0.05  # another focal length: the depth shift is solved for it
    sidecar = (tmp_path / "out" / "phone.json").read_text()
    assert '"source": "exif"' in sidecar
