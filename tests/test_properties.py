"""Property-based tests (hypothesis) of the pure geometry functions.

Random shapes (1x1 to 40x40), dtypes, intrinsics, near/far pairs and maps mixing NaN, +-inf,
zeros, negatives, huge and tiny values. Every call must either raise the ValueError its
docstring documents or return the documented shape and dtype with the documented properties.

The ``@example`` inputs are the minimal failing cases these properties once found (NaN
normals, extreme float64 scales, near/far and fields of view beyond float's range); they stay
as regression tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from depth2mesh.geometry.camera import (
    DEFAULT_FOV_DEG,
    FILM_35MM_DIAGONAL_MM,
    MIN_FOV_DEG,
    SOURCES,
    Intrinsics,
    intrinsics_from_fov,
    resolve_intrinsics,
)
from depth2mesh.geometry.mesh import grid_mesh, grid_uvs
from depth2mesh.geometry.points import (
    DEFAULT_EDGE_THRESHOLD,
    UNIT_TOLERANCE,
    camera_facing_normals,
    depth_edge_faces,
    depth_to_points,
    grid_faces,
    linear_to_srgb,
    project_points,
    sample_colors,
    srgb_to_linear,
    unit_lengths,
)
from depth2mesh.geometry.scale import MAX_DEPTH_M, MIN_DEPTH_M, disparity_to_depth, far_mask
from depth2mesh.pipeline.convert import grid_size

# No example database: it would leave an untracked .hypothesis/ folder in the checkout.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUICK = settings(PROPERTY, max_examples=25)


def quiet_fp() -> np.errstate:
    """Silence numpy's overflow/invalid warnings: the extreme inputs are deliberate."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


NAN = math.nan
INF = math.inf
FLOAT_DTYPES = (np.float16, np.float32, np.float64)
F32_MAX = float(np.finfo(np.float32).max)
F64_MIN_SUBNORMAL = 5e-324
F64_MAX = float(np.finfo(np.float64).max)

SIDES = st.integers(1, 40)
SHAPES = st.tuples(SIDES, SIDES)
SPECIALS = st.sampled_from([0.0, -0.0, NAN, INF, -INF])
INVALID_SIZES = st.one_of(
    st.integers(-5, 0), st.booleans(), st.floats(allow_nan=True), st.none(), st.just("3")
)


def _is_valid_size(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def _is_positive_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


# --------------------------------------------------------------------------- strategies


def palette_values(min_abs: float, max_abs: float) -> st.SearchStrategy[float]:
    """Single values: the specials and both signs of magnitudes in [min_abs, max_abs]."""
    return st.one_of(
        SPECIALS,
        st.floats(min_value=min_abs, max_value=max_abs),
        st.floats(min_value=-max_abs, max_value=-min_abs),
        st.sampled_from([1.0, -1.0, 0.5, 2.0]),
    )


@st.composite
def maps(
    draw: st.DrawFn,
    shape: tuple[int, ...],
    dtype: Any = None,
    *,
    min_abs: float = F64_MIN_SUBNORMAL,
    max_abs: float = F64_MAX,
) -> NDArray[Any]:
    """A dense array of ``shape``: smooth or wild magnitudes, signs and a palette of specials.

    Magnitudes are log-uniform around a random centre with a random spread (from nearly
    constant, so that depth-edge triangles are kept, to hundreds of decades); a random
    fraction of the pixels is negative and another takes a value of a small drawn palette
    (NaN, +-inf, zeros, extremes). With the fraction 1 the map is the palette only, which
    shrinks to readable examples. The float64 values are then cast to ``dtype`` (overflow to
    inf, underflow to 0 included).
    """
    if dtype is None:
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
    palette = draw(st.lists(palette_values(min_abs, max_abs), min_size=1, max_size=6))
    special_rate = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    negative_rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    spread = draw(st.sampled_from([0.0, 1e-3, 0.05, 0.5, 3.0, 400.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low, high = math.log10(min_abs), math.log10(max_abs)
    centre = rng.uniform(low, high)
    exponents = np.clip(centre + rng.uniform(-spread, spread, shape), low, high)
    with quiet_fp():
        values = np.minimum(10.0**exponents, max_abs)
        values[rng.random(shape) < negative_rate] *= -1.0
        pick = rng.random(shape) < special_rate
        values[pick] = rng.choice(np.array(palette), size=int(pick.sum()))
        return values.astype(dtype)


@st.composite
def intrinsics_for(
    draw: st.DrawFn,
    shape: tuple[int, int],
    *,
    focal: tuple[float, float] = (1e-3, 1e6),
    centre: float = 1e4,
) -> Intrinsics:
    """Valid intrinsics for an image of ``shape`` (height, width)."""
    height, width = shape
    return Intrinsics(
        fx=draw(st.floats(*focal)),
        fy=draw(st.floats(*focal)),
        cx=draw(st.floats(-centre, centre)),
        cy=draw(st.floats(-centre, centre)),
        width=width,
        height=height,
    )


@st.composite
def bool_masks(draw: st.DrawFn, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    rate = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random(shape) >= rate


# Any real number, valid or not, as an option value: mostly reasonable, some wild.
ANY_NUMBER = st.one_of(
    st.floats(1e-3, 1e6),
    st.floats(-1e6, 1e6),
    SPECIALS,
    st.integers(-3, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
)


# --------------------------------------------------------------------------- camera


@PROPERTY
@given(
    fx=ANY_NUMBER,
    fy=ANY_NUMBER,
    cx=ANY_NUMBER,
    cy=ANY_NUMBER,
    width=st.one_of(st.integers(1, 10_000), INVALID_SIZES),
    height=st.one_of(st.integers(1, 10_000), INVALID_SIZES),
    source=st.sampled_from([*SOURCES, "bogus", ""]),
)
def test_intrinsics_accepts_exactly_the_documented_values(
    fx: float, fy: float, cx: float, cy: float, width: Any, height: Any, source: str
) -> None:
    valid = (
        _is_positive_finite(fx)
        and _is_positive_finite(fy)
        and math.isfinite(cx)
        and math.isfinite(cy)
        and _is_valid_size(width)
        and _is_valid_size(height)
        and source in SOURCES
    )
    if not valid:
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the field
            Intrinsics(fx, fy, cx, cy, width, height, source)
        return
    k = Intrinsics(fx, fy, cx, cy, width, height, source)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (fx, fy, cx, cy, width, height)
    assert all(type(value) is float for value in (k.fx, k.fy, k.cx, k.cy))
    assert type(k.width) is int
    assert type(k.height) is int
    # Closed ranges: atan rounds to exactly pi / 2 for extreme focal lengths.
    assert 0.0 <= k.hfov_deg <= 180.0
    assert 0.0 <= k.yfov <= math.pi
    matrix = k.matrix()
    assert matrix.shape == (3, 3)
    assert matrix.dtype == np.float64
    assert np.all(np.isfinite(matrix))


@PROPERTY
@given(
    width=st.integers(1, 10_000),
    height=st.integers(1, 10_000),
    fx=st.floats(1e-3, 1e9),
    fy=st.floats(1e-3, 1e9),
    cx=st.floats(-1e6, 1e6),
    cy=st.floats(-1e6, 1e6),
    new_width=st.integers(1, 10_000),
    new_height=st.integers(1, 10_000),
)
def test_resized_round_trip_restores_the_intrinsics(
    width: int,
    height: int,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    new_width: int,
    new_height: int,
) -> None:
    k = Intrinsics(fx, fy, cx, cy, width, height, "fov")
    resized = k.resized(width=new_width, height=new_height)
    assert (resized.width, resized.height, resized.source) == (new_width, new_height, "fov")
    # The field of view is a property of the camera, not of the image size.
    assert math.isclose(resized.hfov_deg, k.hfov_deg, rel_tol=1e-9)
    back = resized.resized(width=width, height=height)
    assert (back.width, back.height, back.source) == (width, height, "fov")
    for name in ("fx", "fy", "cx", "cy"):
        assert math.isclose(getattr(back, name), getattr(k, name), rel_tol=1e-9, abs_tol=1e-9)


@QUICK
@given(good=st.integers(1, 100), bad=INVALID_SIZES, which=st.booleans())
def test_resized_refuses_invalid_sizes(good: int, bad: Any, which: bool) -> None:
    k = Intrinsics(100.0, 100.0, 10.0, 10.0, 20, 20)
    width, height = (bad, good) if which else (good, bad)
    with pytest.raises(ValueError, match="must be an integer of at least 1"):
        k.resized(width=width, height=height)


@QUICK
@given(
    fx=st.floats(min_value=F64_MIN_SUBNORMAL, max_value=F64_MAX),
    cx=st.floats(-F64_MAX, F64_MAX),
    new_width=st.integers(1, 100),
)
@example(fx=F64_MIN_SUBNORMAL, cx=0.0, new_width=1)
@quiet_fp()
def test_resized_is_valid_or_a_documented_error(fx: float, cx: float, new_width: int) -> None:
    k = Intrinsics(fx, fx, cx, 0.0, 10, 10)
    scaled_fx = fx * (new_width / 10)
    scaled_cx = (cx + 0.5) * (new_width / 10) - 0.5
    if not (0 < scaled_fx < math.inf and math.isfinite(scaled_cx)):  # documented: extreme
        with pytest.raises(ValueError, match="must be"):
            k.resized(width=new_width, height=10)
        return
    resized = k.resized(width=new_width, height=10)
    assert resized.fx > 0
    assert math.isfinite(resized.cx)


@PROPERTY
@given(
    width=st.one_of(st.integers(1, 10_000), INVALID_SIZES),
    height=st.one_of(st.integers(1, 10_000), INVALID_SIZES),
    fov=st.one_of(
        st.floats(MIN_FOV_DEG, 180.0, exclude_max=True),
        st.floats(max_value=0.0),
        st.floats(min_value=180.0),
        SPECIALS,
        st.integers(-1, 181),
    ),
)
def test_intrinsics_from_fov(width: Any, height: Any, fov: float) -> None:
    if not (_is_valid_size(width) and _is_valid_size(height) and 0.0 < fov < 180.0):
        with pytest.raises(ValueError):  # noqa: PT011 - size or field of view
            intrinsics_from_fov(width, height, fov)
        return
    k = intrinsics_from_fov(width, height, fov)
    assert k.source == "fov"
    assert k.fx == k.fy > 0
    assert (k.cx, k.cy) == ((width - 1) / 2, (height - 1) / 2)
    assert math.isclose(k.hfov_deg, fov, rel_tol=1e-9)


@QUICK
@given(fov=st.floats(0.0, 180.0, exclude_min=True, exclude_max=True))
@example(fov=1e-320)
@quiet_fp()
def test_intrinsics_from_fov_accepts_every_fov_in_range(fov: float) -> None:
    if fov < MIN_FOV_DEG:  # documented lower bound: a clear ValueError, never inf
        with pytest.raises(ValueError, match="between 0 and 180 degrees"):
            intrinsics_from_fov(1, 1, fov)
        return
    k = intrinsics_from_fov(1, 1, fov)
    assert math.isfinite(k.fx)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


OPTION_FOCAL = st.one_of(st.floats(1e-3, 1e6), st.sampled_from([0.0, -1.0, NAN, INF, -INF]))
OPTION_CENTRE = st.one_of(st.floats(-1e5, 1e5), st.sampled_from([NAN, INF, -INF]))
OPTION_FOV = st.one_of(
    st.floats(1e-3, 180.0, exclude_max=True), st.sampled_from([0, 180, -5.0, 200.0, NAN, INF])
)


@PROPERTY
@given(
    width=st.one_of(st.integers(1, 5000), INVALID_SIZES),
    height=st.one_of(st.integers(1, 5000), INVALID_SIZES),
    fx=_optional(OPTION_FOCAL),
    fy=_optional(OPTION_FOCAL),
    cx=_optional(OPTION_CENTRE),
    cy=_optional(OPTION_CENTRE),
    focal_px=_optional(OPTION_FOCAL),
    focal_35mm=_optional(OPTION_FOCAL),
    fov_deg=_optional(OPTION_FOV),
    exif=_optional(st.one_of(st.floats(-1e3, 1e4), SPECIALS)),
)
def test_resolve_intrinsics_follows_the_documented_precedence(
    width: Any,
    height: Any,
    fx: float | None,
    fy: float | None,
    cx: float | None,
    cy: float | None,
    focal_px: float | None,
    focal_35mm: float | None,
    fov_deg: float | None,
    exif: float | None,
) -> None:
    invalid = (
        not (_is_valid_size(width) and _is_valid_size(height))
        or any(v is not None and not _is_positive_finite(v) for v in (fx, fy, focal_px))
        or (focal_35mm is not None and not _is_positive_finite(focal_35mm))
        or any(v is not None and not math.isfinite(v) for v in (cx, cy))
        or (fov_deg is not None and not 0.0 < fov_deg < 180.0)
        or (focal_px is not None and focal_35mm is not None)
        or (fx is None and (fy is not None or cx is not None or cy is not None))
    )
    call = {
        "fx": fx,
        "fy": fy,
        "cx": cx,
        "cy": cy,
        "focal_px": focal_px,
        "focal_35mm": focal_35mm,
        "fov_deg": fov_deg,
        "exif_focal_35mm": exif,
    }
    if invalid:
        with pytest.raises(ValueError):  # noqa: PT011 - one of many options
            resolve_intrinsics(width, height, **call)
        return
    k = resolve_intrinsics(width, height, **call)
    assert (k.width, k.height) == (width, height)
    centre = ((width - 1) / 2, (height - 1) / 2)
    diagonal = math.hypot(width, height) / FILM_35MM_DIAGONAL_MM
    if fx is not None:
        assert k.source == "explicit"
        assert (k.fx, k.fy) == (fx, fx if fy is None else fy)
        assert k.cx == (centre[0] if cx is None else cx)
        assert k.cy == (centre[1] if cy is None else cy)
        return
    assert (k.cx, k.cy) == centre
    assert k.fx == k.fy
    if focal_px is not None:
        assert (k.source, k.fx) == ("focal_px", focal_px)
    elif focal_35mm is not None:
        assert k.source == "focal_35mm"
        assert math.isclose(k.fx, focal_35mm * diagonal, rel_tol=1e-12)
    elif fov_deg is not None:
        assert k.source == "fov"
        assert math.isclose(k.hfov_deg, fov_deg, rel_tol=1e-9)
    elif _is_positive_finite(exif):
        assert exif is not None
        assert k.source == "exif"
        assert math.isclose(k.fx, exif * diagonal, rel_tol=1e-12)
    else:
        assert k.source == "default"
        assert math.isclose(k.hfov_deg, DEFAULT_FOV_DEG, rel_tol=1e-9)


# --------------------------------------------------------------------------- disparity to depth

# Near and far: valid (MIN_DEPTH_M .. MAX_DEPTH_M), beyond that range, or invalid.
PLANE = st.one_of(
    st.floats(1e-30, 1e30),
    st.floats(1e-2, 1e2),
    st.integers(-2, 50),
    st.sampled_from([0.0, -0.0, -1.0, NAN, INF, -INF]),
)
PERCENTILE = st.one_of(st.floats(-10.0, 110.0), st.sampled_from([0.0, 100.0, NAN, INF]))


@st.composite
def disparities(draw: st.DrawFn) -> NDArray[Any]:
    shape = draw(SHAPES)
    if draw(st.integers(0, 4)) == 0:
        dtype = draw(st.sampled_from([np.uint8, np.int16, np.int32, np.int64]))
        info = np.iinfo(dtype)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return draw(maps(shape))


def _check_depth_range(depth: NDArray[np.float32], near: float, far: float) -> None:
    assert np.all(np.isfinite(depth))
    assert np.all(depth > 0)
    # Rounding the float64 result to float32 is monotone: bounds are the rounded planes.
    assert np.all(depth >= np.float32(near))
    assert np.all(depth <= np.float32(far))


@PROPERTY
@given(
    disparity=disparities(),
    near=PLANE,
    far=PLANE,
    percentiles=st.one_of(st.none(), st.tuples(PERCENTILE, PERCENTILE)),
)
@quiet_fp()
def test_disparity_to_depth_is_finite_and_within_near_far(
    disparity: NDArray[Any],
    near: float,
    far: float,
    percentiles: tuple[float, float] | None,
) -> None:
    low, high = (2.0, 98.0) if percentiles is None else percentiles
    options = {"near": near, "far": far, "low_percentile": low, "high_percentile": high}
    if not (
        math.isfinite(near)
        and near >= MIN_DEPTH_M
        and math.isfinite(far)
        and near < far <= MAX_DEPTH_M
        and 0 <= low < high <= 100
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - near, far or percentiles
            disparity_to_depth(disparity, **options)
        return
    depth = disparity_to_depth(disparity, **options)
    assert depth.shape == disparity.shape
    assert depth.dtype == np.float32
    _check_depth_range(depth, near, far)
    # Larger disparity is nearer; NaN, inf and negative count as 0 (the farthest).
    d = disparity.astype(np.float64)
    effective = np.where(np.isfinite(d), np.maximum(d, 0.0), 0.0).ravel()
    order = np.argsort(effective, kind="stable")
    assert np.all(np.diff(depth.ravel()[order].astype(np.float64)) <= 0)
    if np.ptp(effective) == 0:  # no range: everything at the far plane
        np.testing.assert_allclose(depth, far, rtol=1e-6)


@QUICK
@given(disparity=st.integers(1, 5).flatmap(lambda n: maps((n,) * 3)), near=PLANE, far=PLANE)
def test_disparity_to_depth_refuses_non_2d(
    disparity: NDArray[Any], near: float, far: float
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - shape, or near/far checked first
        disparity_to_depth(disparity, near=near, far=far)
    with pytest.raises(ValueError, match="2-D"):
        disparity_to_depth(disparity.ravel())


@QUICK
@given(
    disparity=maps((3, 3)),
    near=st.floats(min_value=F64_MIN_SUBNORMAL, max_value=F64_MAX),
    far=st.floats(min_value=F64_MIN_SUBNORMAL, max_value=F64_MAX),
)
@example(disparity=np.array([[0.0, 1.0]]), near=1.0, far=1e39)
@example(disparity=np.array([[0.0, 1.0]]), near=1e-50, far=1.0)
@quiet_fp()
def test_disparity_to_depth_any_valid_planes(
    disparity: NDArray[Any], near: float, far: float
) -> None:
    if not far > near:
        return
    if near < MIN_DEPTH_M or far > MAX_DEPTH_M:  # documented range: a clear ValueError
        with pytest.raises(ValueError, match=r"metres|at most"):
            disparity_to_depth(disparity, near=near, far=far)
        return
    _check_depth_range(disparity_to_depth(disparity, near=near, far=far), near, far)


@PROPERTY
@given(
    depth=SHAPES.flatmap(maps),
    far=PLANE,
    tolerance=st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.floats(), st.just(1e-6)),
)
@quiet_fp()
def test_far_mask(depth: NDArray[Any], far: float, tolerance: float) -> None:
    if not (math.isfinite(far) and far > 0 and 0.0 <= tolerance < 1.0):
        with pytest.raises(ValueError):  # noqa: PT011 - far or tolerance
            far_mask(depth, far, tolerance=tolerance)
        return
    mask = far_mask(depth, far, tolerance=tolerance)
    assert mask.shape == depth.shape
    assert mask.dtype == np.bool_
    z = depth.astype(np.float64)
    assert not mask[np.isnan(z)].any()
    assert mask[z >= far].all()  # also +inf
    with np.errstate(invalid="ignore"):
        assert not mask[z < far * (1.0 - tolerance)].any()  # also -inf


# --------------------------------------------------------------------------- back-projection


@st.composite
def depth_and_intrinsics(
    draw: st.DrawFn, *, min_abs: float = F64_MIN_SUBNORMAL, max_abs: float = F64_MAX
) -> tuple[NDArray[Any], Intrinsics]:
    shape = draw(SHAPES)
    depth = draw(maps(shape, min_abs=min_abs, max_abs=max_abs))
    return depth, draw(intrinsics_for(shape, focal=(1e-6, 1e9), centre=1e6))


@PROPERTY
@given(case=depth_and_intrinsics())
@quiet_fp()
def test_depth_to_points(case: tuple[NDArray[Any], Intrinsics]) -> None:
    depth, k = case
    points = depth_to_points(depth, k)
    assert points.shape == (*depth.shape, 3)
    assert points.dtype == np.float32
    # Z is the depth, NaN and inf included.
    assert np.array_equal(points[..., 2], depth.astype(np.float32), equal_nan=True)
    # Reference in float64; finite wherever the depth is and the result fits in float32.
    z = depth.astype(np.float64)
    u = (np.arange(k.width) - k.cx) / k.fx
    v = (np.arange(k.height) - k.cy) / k.fy
    with np.errstate(invalid="ignore", over="ignore"):
        x = u[None, :] * z
        y = v[:, None] * z
        fits = np.isfinite(z) & (z > 0) & (z < 3e38) & (np.abs(x) < 3e38) & (np.abs(y) < 3e38)
    assert np.all(np.isfinite(points[fits]))
    np.testing.assert_allclose(points[fits][:, 0], x[fits], rtol=1e-6, atol=1e-44)
    np.testing.assert_allclose(points[fits][:, 1], y[fits], rtol=1e-6, atol=1e-44)
    # Non-finite depth gives non-finite points.
    assert not np.any(np.isfinite(points[~np.isfinite(z)]))


@QUICK
@given(shape=SHAPES, other=SHAPES)
def test_depth_to_points_refuses_another_shape(
    shape: tuple[int, int], other: tuple[int, int]
) -> None:
    k = Intrinsics(10.0, 10.0, 0.0, 0.0, width=other[1], height=other[0])
    depth = np.ones(shape, dtype=np.float32)
    if shape == other:
        assert depth_to_points(depth, k).shape == (*shape, 3)
    else:
        with pytest.raises(ValueError, match="shape"):
            depth_to_points(depth, k)


@PROPERTY
@given(
    case=depth_and_intrinsics(min_abs=1e-6, max_abs=1e6),
    positive=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_project_points_inverts_depth_to_points(
    case: tuple[NDArray[Any], Intrinsics], positive: float
) -> None:
    depth, k = case
    with np.errstate(invalid="ignore"):
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, positive).astype(depth.dtype)
    # Keep the depth where float16 holds it exactly enough (normal, not overflowing).
    if depth.dtype == np.float16:
        depth = np.clip(depth, np.float16(1e-4), np.float16(6e4))
    points = depth_to_points(depth, k)
    pixels = project_points(points.reshape(-1, 3), k)
    assert pixels.shape == (depth.size, 2)
    assert pixels.dtype == np.float64
    rows, cols = np.indices(depth.shape)
    expected = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    scale = 1.0 + np.abs(expected) + np.abs(np.array([k.cx, k.cy]))
    assert np.all(np.abs(pixels - expected) <= 1e-6 * scale)


@QUICK
@given(points=st.integers(0, 60).flatmap(lambda n: maps((n, 3))), shape=SHAPES)
@quiet_fp()
def test_project_points_any_input(points: NDArray[Any], shape: tuple[int, int]) -> None:
    k = Intrinsics(500.0, 400.0, 10.0, 20.0, width=shape[1], height=shape[0])
    pixels = project_points(points, k)
    assert pixels.shape == (points.shape[0], 2)
    assert pixels.dtype == np.float64
    z = points[:, 2].astype(np.float64)
    with np.errstate(invalid="ignore"):
        behind = ~(z > 0)  # Z <= 0 or NaN
    assert np.all(np.isnan(pixels[behind]))


# --------------------------------------------------------------------------- normals


def _check_normals(
    normals: NDArray[np.float32], points: NDArray[Any], valid: NDArray[np.bool_] | None
) -> None:
    assert normals.shape == points.shape
    assert normals.dtype == np.float32
    assert np.all(np.isfinite(normals))
    n = normals.astype(np.float64)
    assert np.all(np.abs(np.linalg.norm(n, axis=2) - 1.0) <= 1e-5)
    p = points.astype(np.float64)
    finite = np.all(np.isfinite(p), axis=2)
    distance = np.linalg.norm(np.where(finite[..., None], p, 0.0), axis=2)
    dot = np.sum(n * np.where(finite[..., None], p, 0.0), axis=2)
    assert np.all(dot[finite] <= 1e-5 * distance[finite])
    # Not computable: a non-finite point faces along -z; one left out by `valid`, the camera.
    assert np.all(normals[~finite] == np.array([0.0, 0.0, -1.0], dtype=np.float32))
    if valid is not None:
        away = finite & ~valid & (distance > 0)
        towards = -p[away] / distance[away][:, None]
        np.testing.assert_allclose(n[away], towards, atol=1e-6)


@st.composite
def point_grids(draw: st.DrawFn) -> NDArray[Any]:
    """(H, W, 3) points: arbitrary float16/float32 values, float64 within 1e+-100, or a depth
    map back-projected."""
    shape = draw(SHAPES)
    kind = draw(st.sampled_from(["narrow", "float64", "depth"]))
    if kind == "narrow":
        return draw(maps((*shape, 3), draw(st.sampled_from([np.float16, np.float32]))))
    if kind == "float64":
        return draw(maps((*shape, 3), np.float64, min_abs=1e-100, max_abs=1e100))
    depth = draw(maps(shape))
    with quiet_fp():
        return depth_to_points(depth, draw(intrinsics_for(shape)))


@PROPERTY
@given(points=point_grids(), data=st.data())
def test_camera_facing_normals_are_finite_unit_and_face_the_camera(
    points: NDArray[Any], data: st.DataObject
) -> None:
    valid = data.draw(st.one_of(st.none(), bool_masks(points.shape[:2])))
    with np.errstate(over="ignore", invalid="ignore"):
        normals = camera_facing_normals(points, valid=valid)
    _check_normals(normals, points, valid)


@QUICK
@given(shape=SHAPES, channels=st.sampled_from([1, 2, 4]), other=SHAPES)
def test_camera_facing_normals_refuses_bad_shapes(
    shape: tuple[int, int], channels: int, other: tuple[int, int]
) -> None:
    with pytest.raises(ValueError, match="points must be an"):
        camera_facing_normals(np.ones((*shape, channels)))
    with pytest.raises(ValueError, match="points must be an"):
        camera_facing_normals(np.ones(shape))
    if other != shape:
        with pytest.raises(ValueError, match="valid must have shape"):
            camera_facing_normals(np.ones((*shape, 3)), valid=np.ones(other, dtype=bool))


@QUICK
@given(points=SHAPES.flatmap(lambda s: maps((*s, 3), np.float64, min_abs=1e-150, max_abs=1e150)))
@example(points=np.array([[[1e-320, 0.0, 0.0]]]))
@example(
    points=np.array([[[1.0, -1.0, 1.0], [0.0, 0.0, 1.0]], [[0.0, -1.0, 0.0], [0.0, 0.0, 0.0]]])
    * 1e150
)
def test_camera_facing_normals_any_float64_points(points: NDArray[np.float64]) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        normals = camera_facing_normals(points)
    _check_normals(normals, points, None)


@PROPERTY
@given(
    normals=st.tuples(st.integers(1, 50), st.sampled_from([np.float32, np.float64])).flatmap(
        lambda case: maps((case[0], 3), case[1], min_abs=1e-3, max_abs=1e3)
    ),
    data=st.data(),
)
def test_unit_lengths_accepts_unit_vectors_and_names_the_first_other(
    normals: NDArray[np.floating], data: st.DataObject
) -> None:
    raw = np.where(np.isfinite(normals), normals, 1.0).astype(np.float64)
    raw[np.all(raw == 0, axis=1)] = 1.0
    unit = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(normals.dtype)
    lengths = unit_lengths(unit)
    assert lengths.shape == (len(unit),)
    assert lengths.dtype == np.float64
    assert np.all(np.abs(lengths - 1.0) <= UNIT_TOLERANCE)
    index = data.draw(st.integers(0, len(unit) - 1))
    factor = data.draw(st.one_of(st.floats(0.0, 0.995), st.floats(1.005, 1e3)))
    unit[index:] *= normals.dtype.type(factor)
    with pytest.raises(ValueError, match=f"at vertex {index}$"):
        unit_lengths(unit)


@QUICK
@given(normals=st.integers(1, 20).flatmap(lambda n: maps((n, 3))))
@example(normals=np.array([[NAN, 0.0, 0.0]]))
@quiet_fp()
def test_unit_lengths_returns_only_unit_lengths(normals: NDArray[np.floating]) -> None:
    try:
        lengths = unit_lengths(normals)
    except ValueError:
        return
    assert np.all(np.abs(lengths - 1.0) <= UNIT_TOLERANCE)


# --------------------------------------------------------------------------- faces


@PROPERTY
@given(height=st.integers(1, 60), width=st.integers(1, 60))
def test_grid_faces_index_valid_neighbouring_vertices(height: int, width: int) -> None:
    faces = grid_faces(height, width)
    assert faces.shape == (2 * (height - 1) * (width - 1), 3)
    assert faces.dtype == np.int64
    assert np.all((faces >= 0) & (faces < height * width))
    rows, cols = np.divmod(faces, width)
    assert np.all(np.ptp(rows, axis=1) == 1)  # each triangle spans one cell
    assert np.all(np.ptp(cols, axis=1) == 1)
    assert len(np.unique(np.sort(faces, axis=1), axis=0)) == len(faces)  # no duplicates
    # Front-facing: on a fronto-parallel plane the right-hand normal points to the camera (-z).
    plane = np.stack([cols, rows, np.ones_like(cols)], axis=2).astype(np.float64)
    normal = np.cross(plane[:, 1] - plane[:, 0], plane[:, 2] - plane[:, 0])
    assert np.all(normal[:, 2] < 0)


@QUICK
@given(good=st.integers(1, 10), bad=INVALID_SIZES, which=st.booleans())
def test_grid_faces_refuses_invalid_sizes(good: int, bad: Any, which: bool) -> None:
    with pytest.raises(ValueError, match="must be an integer of at least 1"):
        grid_faces(*((bad, good) if which else (good, bad)))


THRESHOLD = st.one_of(
    st.just(DEFAULT_EDGE_THRESHOLD),
    st.floats(1.0, 100.0, exclude_min=True),
    st.floats(min_value=1.0, exclude_min=True),
    st.sampled_from([1.0, 0.5, 0.0, -2.0, NAN, INF]),
)


@PROPERTY
@given(depth=SHAPES.flatmap(maps), threshold=THRESHOLD)
@quiet_fp()
def test_depth_edge_faces(depth: NDArray[Any], threshold: float) -> None:
    if not (math.isfinite(threshold) and threshold > 1.0):
        with pytest.raises(ValueError, match="threshold"):
            depth_edge_faces(depth, threshold=threshold)
        return
    keep = depth_edge_faces(depth, threshold=threshold)
    height, width = depth.shape
    assert keep.shape == (height - 1, width - 1, 2)
    assert keep.dtype == np.bool_
    faces = grid_faces(height, width)
    kept = faces[keep.reshape(-1)]
    assert np.all((kept >= 0) & (kept < height * width))
    z = depth.astype(np.float64).ravel()
    corners = z[faces]
    with np.errstate(invalid="ignore", over="ignore"):
        usable = np.all(np.isfinite(corners) & (corners > 0), axis=1)
        low, high = corners.min(axis=1), corners.max(axis=1)
        ratio = high / low
    # Kept: usable corners within the ratio (float64 subnormal depths left out: their
    # product with the threshold rounds coarsely).
    normal = usable & (low >= np.finfo(np.float64).tiny)
    assert np.all(usable[keep.reshape(-1)])
    assert np.all(ratio[keep.reshape(-1) & normal] <= threshold * (1 + 1e-12))
    # Cut: only across a discontinuity or at an unusable corner.
    clearly_smooth = normal & (ratio <= threshold * (1 - 1e-12))
    assert np.all(keep.reshape(-1)[clearly_smooth])


@QUICK
@given(depth=st.sampled_from([(5,), (2, 2, 2), (1, 1, 1, 1)]).flatmap(maps))
def test_depth_edge_faces_refuses_non_2d(depth: NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="2-D"):
        depth_edge_faces(depth)


# --------------------------------------------------------------------------- colours

ALL_BYTES = np.arange(256, dtype=np.uint8)


def test_srgb_round_trip_is_exact_for_every_byte() -> None:
    linear = srgb_to_linear(ALL_BYTES)
    assert linear.dtype == np.float32
    assert np.all((linear >= 0) & (linear <= 1))
    assert np.all(np.diff(linear) > 0)
    assert (linear[0], linear[-1]) == (0.0, 1.0)
    assert np.array_equal(linear_to_srgb(linear), ALL_BYTES)
    assert np.array_equal(linear_to_srgb(linear.astype(np.float64)), ALL_BYTES)


@PROPERTY
@given(shape=st.lists(st.integers(0, 6), max_size=4), seed=st.integers(0, 2**32 - 1))
def test_srgb_round_trip_any_shape(shape: list[int], seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    linear = srgb_to_linear(rgb)
    assert linear.shape == rgb.shape
    assert linear.dtype == np.float32
    assert np.all((linear >= 0) & (linear <= 1))
    assert np.array_equal(linear_to_srgb(linear), rgb)


@QUICK
@given(values=SHAPES.flatmap(maps))
def test_srgb_to_linear_refuses_other_dtypes(values: NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="uint8"):
        srgb_to_linear(values)
    with pytest.raises(ValueError, match="uint8"):
        srgb_to_linear(np.zeros(values.shape, dtype=np.uint16))


@PROPERTY
@given(linear=st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple).flatmap(maps))
@quiet_fp()
def test_linear_to_srgb_any_real_values(linear: NDArray[Any]) -> None:
    encoded = linear_to_srgb(linear)
    assert encoded.shape == linear.shape
    assert encoded.dtype == np.uint8
    x = linear.astype(np.float64)
    with np.errstate(invalid="ignore"):
        assert np.all(encoded[np.isnan(x) | (x <= 0)] == 0)
        assert np.all(encoded[x >= 1] == 255)  # +inf included
    order = np.argsort(np.nan_to_num(x, nan=0.0).ravel(), kind="stable")
    assert np.all(np.diff(encoded.ravel()[order].astype(np.int64)) >= 0)


@QUICK
@given(seed=st.integers(0, 2**16), dtype=st.sampled_from([np.bool_, np.complex128]))
def test_linear_to_srgb_refuses_non_real(seed: int, dtype: Any) -> None:
    values = np.random.default_rng(seed).random((3, 3)).astype(dtype)
    with pytest.raises(ValueError, match="real numbers"):
        linear_to_srgb(values)
    # Integers are real: 0 and below are black, 1 and above white.
    assert np.array_equal(linear_to_srgb(np.array([-3, 0, 1, 7])), [0, 0, 255, 255])


@st.composite
def photos(draw: st.DrawFn) -> NDArray[np.uint8]:
    height, width = draw(SHAPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@PROPERTY
@given(rgb=photos(), pixels=st.integers(0, 60).flatmap(lambda n: maps((n, 2))))
@quiet_fp()
def test_sample_colors_stays_within_the_neighbouring_pixels(
    rgb: NDArray[np.uint8], pixels: NDArray[Any]
) -> None:
    colors = sample_colors(rgb, pixels)
    assert colors.shape == (len(pixels), 3)
    assert colors.dtype == np.uint8
    height, width = rgb.shape[:2]
    # Outside or NaN: the nearest border (NaN at 0); then bilinear between the four pixels.
    uv = np.nan_to_num(pixels.astype(np.float64), nan=0.0)
    u = np.clip(uv[:, 0], 0, width - 1)
    v = np.clip(uv[:, 1], 0, height - 1)
    corners = np.stack(
        [
            rgb[rows, cols]
            for rows in (np.floor(v).astype(int), np.ceil(v).astype(int))
            for cols in (np.floor(u).astype(int), np.ceil(u).astype(int))
        ]
    )
    assert np.all(colors >= corners.min(axis=0))
    assert np.all(colors <= corners.max(axis=0))


@PROPERTY
@given(rgb=photos())
def test_sample_colors_is_exact_at_pixel_centres(rgb: NDArray[np.uint8]) -> None:
    rows, cols = np.indices(rgb.shape[:2])
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    assert np.array_equal(sample_colors(rgb, pixels), rgb.reshape(-1, 3))
    assert np.array_equal(sample_colors(rgb, pixels.astype(np.float32)), rgb.reshape(-1, 3))


# --------------------------------------------------------------------------- grid mesh


@PROPERTY
@given(height=st.integers(1, 60), width=st.integers(1, 60))
def test_grid_uvs(height: int, width: int) -> None:
    uvs = grid_uvs(height, width)
    assert uvs.shape == (height * width, 2)
    assert uvs.dtype == np.float32
    assert np.all((uvs > 0) & (uvs < 1))
    grid = uvs.reshape(height, width, 2).astype(np.float64)
    assert np.all(np.diff(grid[..., 0], axis=1) > 0)  # u grows along a row
    assert np.all(np.diff(grid[..., 1], axis=0) > 0)  # v grows down the columns
    rows, cols = np.indices((height, width))
    np.testing.assert_allclose(grid[..., 0] * width - 0.5, cols, atol=1e-4)
    np.testing.assert_allclose(grid[..., 1] * height - 0.5, rows, atol=1e-4)


@st.composite
def grid_mesh_inputs(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(SHAPES)
    # float32 depth within 1e+-30 (plus NaN, inf, zeros, negatives): every back-projected
    # coordinate fits in float32 with these intrinsics.
    depth = draw(maps(shape, np.float32, min_abs=1e-30, max_abs=1e30))
    return {
        "depth": depth,
        "intrinsics": draw(intrinsics_for(shape)),
        "valid": draw(st.one_of(st.none(), bool_masks(shape))),
        "threshold": draw(THRESHOLD.filter(lambda t: math.isfinite(t) and t > 1.0)),
    }


@PROPERTY
@given(case=grid_mesh_inputs())
@quiet_fp()
def test_grid_mesh_is_compact_finite_and_consistent(case: dict[str, Any]) -> None:
    depth, valid, threshold = case["depth"], case["valid"], case["threshold"]
    height, width = depth.shape
    points = depth_to_points(depth, case["intrinsics"])
    normals = camera_facing_normals(points, valid=valid)
    mesh = grid_mesh(points, depth, normals, valid=valid, edge_threshold=threshold)
    vertices, faces, uvs = mesh.vertices, mesh.faces, mesh.uvs
    assert mesh.normals is not None
    assert uvs is not None
    count = len(vertices)
    assert vertices.shape == (count, 3)
    assert vertices.dtype == np.float32
    assert faces.dtype == np.int64
    assert faces.ndim == 2
    assert faces.shape[1] == 3
    assert len(faces) <= 2 * (height - 1) * (width - 1)
    assert mesh.normals.shape == (count, 3)
    assert uvs.shape == (count, 2)
    # Faces index the compacted vertices, and every vertex is used.
    assert np.all((faces >= 0) & (faces < count))
    assert np.array_equal(np.unique(faces), np.arange(count))
    assert np.all(np.isfinite(vertices))
    assert np.all(vertices[:, 2] > 0)
    assert np.all(np.isfinite(mesh.normals))
    assert np.all((uvs >= 0) & (uvs <= 1))
    # Each vertex is the point of the pixel its UV names, and that pixel may be used.
    cols = np.rint(uvs[:, 0].astype(np.float64) * width - 0.5).astype(int)
    rows = np.rint(uvs[:, 1].astype(np.float64) * height - 0.5).astype(int)
    assert np.array_equal(vertices, points[rows, cols])
    if valid is not None:
        assert np.all(valid[rows, cols])
    # No kept triangle crosses a depth discontinuity.
    z = vertices[faces][..., 2].astype(np.float64)
    assert np.all(z.max(axis=1) <= threshold * z.min(axis=1) * (1 + 1e-12))
    # A smooth surface keeps all its triangles.
    smooth = (
        valid is None
        and np.all(np.isfinite(depth))
        and np.all(depth > 0)
        and depth.max() <= depth.min() * min(threshold, 2.0) * (1 - 1e-6)
    )
    if smooth:
        assert len(faces) == 2 * (height - 1) * (width - 1)
        assert count == (height * width if len(faces) else 0)


# --------------------------------------------------------------------------- grid size


@PROPERTY
@given(height=st.integers(1, 20_000), width=st.integers(1, 20_000), grid=st.integers(-10, 5000))
def test_grid_size_never_upsamples_and_keeps_one_cell(height: int, width: int, grid: int) -> None:
    rows, cols = grid_size(height, width, grid)
    assert isinstance(rows, int)
    assert isinstance(cols, int)
    assert rows >= 2
    assert cols >= 2
    assert rows <= max(2, height)
    assert cols <= max(2, width)
    assert max(rows, cols) == max(2, min(grid, max(height, width)))
    scale = min(1.0, grid / max(height, width))
    assert rows == 2 or abs(rows - height * scale) <= 0.5
    assert cols == 2 or abs(cols - width * scale) <= 0.5
