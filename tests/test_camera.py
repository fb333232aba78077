from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from depth2mesh.geometry.camera import (
    DEFAULT_FOV_DEG,
    Intrinsics,
    intrinsics_from_focal_35mm,
    intrinsics_from_focal_px,
    intrinsics_from_fov,
    resolve_intrinsics,
)


def test_fov_90_degrees_gives_half_width_focal_and_centred_principal_point() -> None:
    k = intrinsics_from_fov(640, 480, 90.0)
    # tan(45 deg) = 1, so the focal length is half the width.
    assert k.fx == pytest.approx(320.0, rel=1e-12)
    assert k.fy == pytest.approx(320.0, rel=1e-12)
    assert (k.cx, k.cy) == (319.5, 239.5)
    assert (k.width, k.height, k.source) == (640, 480, "fov")
    assert k.hfov_deg == pytest.approx(90.0, rel=1e-12)
    # Vertical half-angle: tan = (480 / 2) / 320 = 0.75.
    assert math.tan(k.yfov / 2) == pytest.approx(0.75, rel=1e-12)
    assert k.aspect_ratio == pytest.approx(4 / 3)


def test_default_fov_is_60_degrees() -> None:
    assert DEFAULT_FOV_DEG == 60.0
    k = intrinsics_from_fov(100, 50)
    # tan(30 deg) = 1 / sqrt(3): fx = 50 * sqrt(3).
    assert k.fx == pytest.approx(50.0 * math.sqrt(3.0), rel=1e-12)


def test_35mm_equivalent_uses_the_diagonal() -> None:
    # A 3600 x 2400 image is the 36 x 24 mm frame at 100 px/mm: 50 mm is 5000 px.
    k = intrinsics_from_focal_35mm(3600, 2400, 50.0)
    assert k.fx == pytest.approx(5000.0, rel=1e-12)
    assert k.fy == pytest.approx(5000.0, rel=1e-12)
    assert k.source == "focal_35mm"
    # The horizontal field of view of a 50 mm lens on 36 mm film: 2 * atan(18 / 50).
    assert k.hfov_deg == pytest.approx(math.degrees(2 * math.atan(18 / 50)), rel=1e-12)
    # A 4:3 sensor keeps the diagonal field of view: 4000 x 3000 has a 5000 px diagonal.
    k43 = intrinsics_from_focal_35mm(4000, 3000, 26.0)
    assert k43.fx == pytest.approx(26.0 * 5000.0 / math.sqrt(36.0**2 + 24.0**2), rel=1e-12)
    diagonal_fov = 2 * math.atan(2500.0 / k43.fx)
    assert diagonal_fov == pytest.approx(2 * math.atan(math.hypot(18, 12) / 26.0), rel=1e-12)


def test_focal_px() -> None:
    k = intrinsics_from_focal_px(641, 481, 700.0)
    assert (k.fx, k.fy, k.cx, k.cy, k.source) == (700.0, 700.0, 320.0, 240.0, "focal_px")


def test_resolve_precedence_explicit_wins_and_defaults_fill_in() -> None:
    k = resolve_intrinsics(640, 480, fx=500.0, focal_px=900.0, fov_deg=30.0, exif_focal_35mm=28.0)
    assert (k.fx, k.fy, k.cx, k.cy, k.source) == (500.0, 500.0, 319.5, 239.5, "explicit")
    k = resolve_intrinsics(640, 480, fx=500.0, fy=510.0, cx=300.0, cy=200.0)
    assert (k.fx, k.fy, k.cx, k.cy) == (500.0, 510.0, 300.0, 200.0)


def test_resolve_precedence_order() -> None:
    w, h = 3600, 2400
    assert resolve_intrinsics(w, h, focal_px=900.0, fov_deg=30.0, exif_focal_35mm=28.0).fx == 900
    k = resolve_intrinsics(w, h, focal_35mm=50.0, fov_deg=30.0, exif_focal_35mm=28.0)
    assert k.source == "focal_35mm"
    assert k.fx == pytest.approx(5000.0)
    k = resolve_intrinsics(w, h, fov_deg=90.0, exif_focal_35mm=28.0)
    assert k.source == "fov"
    assert k.fx == pytest.approx(1800.0)
    k = resolve_intrinsics(w, h, exif_focal_35mm=25.0)
    assert k.source == "exif"
    assert k.fx == pytest.approx(2500.0)
    k = resolve_intrinsics(w, h)
    assert k.source == "default"
    assert k.hfov_deg == pytest.approx(60.0)


@pytest.mark.parametrize("exif", [0.0, -3.0, math.nan, math.inf])
def test_unusable_exif_focal_falls_back_to_the_default(exif: float) -> None:
    k = resolve_intrinsics(640, 480, exif_focal_35mm=exif)
    assert k.source == "default"
    assert k.hfov_deg == pytest.approx(DEFAULT_FOV_DEG)


def test_fov_message_names_the_option_and_the_value() -> None:
    with pytest.raises(
        ValueError,
        match=r"^fov_deg must be between 0 and 180 degrees \(at least 0.001, below 180\), got -5$",
    ):
        resolve_intrinsics(640, 480, fov_deg=-5)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"fov_deg": 180.0}, "fov_deg"),
        ({"fov_deg": 0.0}, "fov_deg"),
        ({"fov_deg": math.nan}, "fov_deg"),
        ({"fx": 0.0}, "fx"),
        ({"fx": -1.0}, "fx"),
        ({"fx": math.inf}, "fx"),
        ({"fx": 500.0, "fy": math.nan}, "fy"),
        ({"fx": 500.0, "cx": math.inf}, "cx"),
        ({"focal_px": 0.0}, "focal_px"),
        ({"focal_35mm": -24.0}, "focal_35mm"),
        ({"fy": 500.0}, "fx"),
        ({"cx": 10.0, "cy": 10.0}, "fx"),
        ({"focal_px": 500.0, "focal_35mm": 24.0}, "focal_35mm"),
        # A bad value is refused even when a higher-precedence option is given.
        ({"fx": 500.0, "fov_deg": 200.0}, "fov_deg"),
    ],
)
def test_resolve_rejects_bad_options(options: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        resolve_intrinsics(640, 480, **options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("width", "height"), [(0, 480), (640, 0), (-1, 5), (64.0, 48), (True, 4)])
def test_sizes_must_be_positive_integers(width: object, height: object) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        resolve_intrinsics(width, height)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        intrinsics_from_fov(width, height)  # type: ignore[arg-type]


def test_size_one_is_accepted() -> None:
    k = resolve_intrinsics(1, 1)
    assert (k.cx, k.cy) == (0.0, 0.0)


def test_intrinsics_validate_and_are_frozen() -> None:
    with pytest.raises(ValueError, match="fx"):
        Intrinsics(fx=0.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2)
    with pytest.raises(ValueError, match="source"):
        Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2, source="guess")
    k = Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.fx = 2.0  # type: ignore[misc]


def test_resized_keeps_projections_on_the_same_image_content() -> None:
    k = Intrinsics(fx=518.0, fy=519.0, cx=325.5, cy=253.7, width=640, height=480, source="exif")
    small = k.resized(width=256, height=192)
    assert small.source == "exif"
    assert (small.width, small.height) == (256, 192)
    sx, sy = 256 / 640, 192 / 480
    point = np.array([0.3, -0.2, 2.0])
    u = k.fx * point[0] / point[2] + k.cx
    v = k.fy * point[1] / point[2] + k.cy
    u_small = small.fx * point[0] / point[2] + small.cx
    v_small = small.fy * point[1] / point[2] + small.cy
    # The outer image edge (-0.5) stays the edge: pixel centre u maps to (u + 0.5) * s - 0.5.
    assert u_small == pytest.approx((u + 0.5) * sx - 0.5, rel=1e-12)
    assert v_small == pytest.approx((v + 0.5) * sy - 0.5, rel=1e-12)
    # The field of view does not change.
    assert small.hfov_deg == pytest.approx(k.hfov_deg, rel=1e-12)
    assert small.yfov == pytest.approx(k.yfov, rel=1e-12)


def test_resized_round_trip_and_centre() -> None:
    k = intrinsics_from_fov(640, 480, 70.0)
    half = k.resized(width=320, height=240)
    assert (half.cx, half.cy) == (159.5, 119.5)  # still the image centre
    back = k.resized(width=1000, height=333).resized(width=640, height=480)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(back, name) == pytest.approx(getattr(k, name), rel=1e-12)
    with pytest.raises(ValueError, match="width"):
        k.resized(width=0, height=10)


def test_to_dict_is_json_ready() -> None:
    k = resolve_intrinsics(640, 480, fx=500.0)
    data = json.loads(json.dumps(k.to_dict()))
    assert data["fx"] == 500.0
    assert data["source"] == "explicit"
    assert (data["width"], data["height"]) == (640, 480)
    assert data["hfov_deg"] == pytest.approx(math.degrees(2 * math.atan(640 / 1000)))


def test_matrix() -> None:
    k = Intrinsics(fx=2.0, fy=3.0, cx=4.0, cy=5.0, width=9, height=11)
    np.testing.assert_array_equal(k.matrix(), [[2, 0, 4], [0, 3, 5], [0, 0, 1]])
