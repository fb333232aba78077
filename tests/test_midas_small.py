"""The depth stage equals the official MiDaS v2.1 small, number for number."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.parity import NAMES

from depth2mesh.depth.model import DepthModel, predict_disparity
from depth2mesh.depth.networks.midas_small import network_input_size, preprocess
from depth2mesh.depth.networks.midas_small_torch import MidasSmall, upsample_bicubic
from depth2mesh.depth.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WHOLE_RESIZE_MAX_PIXELS,
    normalise,
    normalise_uint8,
    resize_disparity,
    resize_gathered,
    resize_whole,
)
from depth2mesh.exchange.photo import read_photo


@pytest.fixture(scope="module")
def index(shared_dir: Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(
        (shared_dir / "midas" / "official_outputs" / "index.json").read_text()
    )
    return data


def _official(shared_dir: Path, name: str, kind: str) -> np.ndarray:
    return np.load(shared_dir / "midas" / "official_outputs" / f"{name}.{kind}.npy")


def _image_cv2(shared_dir: Path, name: str) -> np.ndarray:
    bgr = cv2.imread(str(shared_dir / "midas" / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_fixture_index_covers_all_names(index: dict[str, dict[str, object]]) -> None:
    assert sorted(index) == NAMES


def test_state_dict_matches_official_checkpoint_keys(shared_dir: Path) -> None:
    expected = json.loads((shared_dir / "midas" / "checkpoint_keys.json").read_text())
    state = MidasSmall().state_dict()
    assert [key for key, _, _ in expected] == list(state)
    for key, shape, dtype in expected:
        assert list(state[key].shape) == shape, key
        assert str(state[key].dtype).removeprefix("torch.") == dtype, key
    assert sum(t.numel() for t in state.values()) == 21_394_729


def test_official_file_format_loads_strictly(parity_weights: Path) -> None:
    network = MidasSmall()
    state = torch.load(parity_weights, map_location="cpu", weights_only=True)
    result = network.load_state_dict(state, strict=True)
    assert not result.missing_keys
    assert not result.unexpected_keys


@pytest.mark.parametrize("name", NAMES)
def test_network_input_size(name: str, index: dict[str, dict[str, object]]) -> None:
    height, width = index[name]["image_hw"]
    assert list(network_input_size(height, width)) == index[name]["net_input_hw"]


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_equals_official(shared_dir: Path, name: str) -> None:
    ours = preprocess(_image_cv2(shared_dir, name))
    official = _official(shared_dir, name, "input")
    assert ours.shape == official.shape
    assert ours.dtype == np.float32
    assert np.abs(ours - official).max() <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_network_equals_official(
    shared_dir: Path, eager_outputs: Callable[[str], np.ndarray], name: str
) -> None:
    official = _official(shared_dir, name, "net")
    ours = eager_outputs(name)  # parity_model.network on the official input
    value_range = float(official.max() - official.min())
    assert ours.shape == official.shape
    assert np.abs(ours - official).max() <= 1e-4 * value_range


@pytest.mark.parametrize("name", NAMES)
def test_predict_disparity_on_file_equals_official(
    shared_dir: Path, parity_model: DepthModel, name: str
) -> None:
    photo = read_photo(shared_dir / "midas" / "images" / f"{name}.png")
    ours = predict_disparity(photo.rgb, parity_model)
    official = _official(shared_dir, name, "full")
    value_range = float(official.max() - official.min())
    assert ours.dtype == np.float32
    assert ours.shape == official.shape == photo.rgb.shape[:2]
    assert np.abs(ours - official).max() <= 1e-3 * value_range


def _official_float64(image: np.ndarray) -> np.ndarray:
    """The official transform on a uint8 RGB photo: (h, w, 3) float32 normalised."""
    rows, cols = network_input_size(image.shape[0], image.shape[1])
    scaled = image.astype(np.float64) / 255.0
    whole = cv2.resize(scaled, (cols, rows), interpolation=cv2.INTER_CUBIC).reshape(rows, cols, 3)
    normalised: np.ndarray = (whole - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return normalised.astype(np.float32)


THRESHOLD_SIDE = WHOLE_RESIZE_MAX_PIXELS // 1000
"""With 1000 rows: the widest photo that is resized whole."""


@pytest.mark.parametrize(
    ("height", "width"),
    [
        (1, 1),
        (1, 5),
        (7, 300),
        (23, 37),
        (256, 256),
        (256, 192),
        (255, 257),
        (1000, 333),
        (1000, THRESHOLD_SIDE),
        (1000, THRESHOLD_SIDE + 1),
        (3024, 4032),
        (4032, 3024),
    ],
)
def test_every_preprocessing_path_equals_the_official_float64_path(height: int, width: int) -> None:
    """Whole resize, gathered taps and the no-resize table all give the official numbers."""
    image = np.random.default_rng(height * 7919 + width).integers(
        0, 256, (height, width, 3), dtype=np.uint8
    )
    expected = _official_float64(image)
    rows, cols = expected.shape[:2]
    ours = preprocess(image)
    assert ours.flags.c_contiguous
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours[0].transpose(1, 2, 0), expected, rtol=0, atol=1e-6)
    for resize in (resize_whole, resize_gathered):
        resized = normalise(resize(image, rows, cols))
        np.testing.assert_allclose(resized[0].transpose(1, 2, 0), expected, rtol=0, atol=1e-6)
    if (height, width) == (rows, cols):
        np.testing.assert_array_equal(ours[0].transpose(1, 2, 0), expected)  # bit for bit
        np.testing.assert_array_equal(normalise_uint8(image), ours)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((192, 256), (3024, 4032)),
        ((192, 256), (768, 1024)),
        ((256, 192), (1024, 768)),
        ((160, 256), (23, 37)),
        ((32, 256), (3, 300)),
        ((256, 256), (1, 1)),
        ((64, 64), (64, 64)),
    ],
)
def test_opencv_disparity_resize_equals_torch_bicubic(
    source: tuple[int, int], target: tuple[int, int]
) -> None:
    """The torch-free resize is the official F.interpolate(bicubic, align_corners=False).

    On white noise in [0, 1) (the worst case: the steepest gradients) they differ by float32
    rounding of the sample positions and weights, about 3e-5 at 12 MP.
    """
    disparity = np.random.default_rng(source[0] + target[1]).random(source, dtype=np.float32)
    ours = resize_disparity(disparity, *target)
    official = upsample_bicubic(disparity, *target)
    assert ours.shape == target
    assert ours.dtype == np.float32
    assert np.abs(ours - official).max() <= 1e-4


@pytest.mark.parametrize("name", ["coffee", "tall_strip", "tiny_37x23"])
def test_predict_disparity_at_a_grid_size(
    shared_dir: Path, parity_model: DepthModel, name: str
) -> None:
    """size= resizes the network output straight to the grid: the official output, resized."""
    photo = read_photo(shared_dir / "midas" / "images" / f"{name}.png")
    official = _official(shared_dir, name, "net")[0]
    for rows, cols in [(48, 64), (7, 5), photo.rgb.shape[:2]]:
        ours = predict_disparity(photo.rgb, parity_model, size=(rows, cols))
        expected = upsample_bicubic(official, rows, cols)
        value_range = float(official.max() - official.min())
        assert ours.shape == (rows, cols)
        assert np.abs(ours - expected).max() <= 1e-4 * value_range
    with pytest.raises(ValueError, match="at least 1x1"):
        predict_disparity(photo.rgb, parity_model, size=(0, 4))


def test_network_size_rule_edge_cases() -> None:
    assert network_input_size(1, 1) == (256, 256)
    assert network_input_size(4000, 3) == (256, 32)
    assert network_input_size(3024, 4032) == (192, 256)
    with pytest.raises(ValueError, match="at least 1x1"):
        network_input_size(0, 10)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((8, 8), np.uint8), "RGB image"),
        (np.zeros((8, 8, 4), np.uint8), "RGB image"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((0, 8, 3), np.uint8), "non-empty"),
    ],
)
def test_preprocess_rejects_bad_arrays(array: np.ndarray, message: str) -> None:
    from depth2mesh.errors import InputError

    with pytest.raises(InputError, match=message):
        preprocess(array)
