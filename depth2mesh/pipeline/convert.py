"""The one conversion pipeline: photo in; depth pictures, point cloud, meshes and sidecar out.

The CLI, the web page, the Ray path and the Blender add-on (through the CLI) all call
:func:`convert_photo`; none keeps a copy of these steps.

Data flow (see docs/architecture.md), one function per stage of :data:`STAGES`: photo
(EXIF-upright RGB) -> disparity (MiDaS small or Depth Anything V2 Small, or ``depth_file``)
-> depth in metres (``near``/``far``; metric depth, from a metric model or a file, as given)
at the mesh grid's size -> points in the OpenCV
camera frame -> depth pictures, point cloud PLY, UV-textured grid mesh GLB, optional Poisson
mesh GLB + PLY, sidecar JSON. Axes become glTF's ``(x, -y, -z)`` only when files are written.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh._version import __version__
from depth2mesh.atomic import atomic_write_bytes, refuse_existing
from depth2mesh.errors import InputError, OutputError, ParameterError
from depth2mesh.exchange.gltf import (
    DEFAULT_GLB_COMPRESSION,
    DEFAULT_TEXTURE_SIZE,
    DRACO,
    GLB_COMPRESSIONS,
    QUANTIZATION,
    GlbCompression,
    GltfCamera,
    encode_glb,
    position_error_bound,
    read_glb_json,
)
from depth2mesh.exchange.obj import encode_mtl, encode_obj
from depth2mesh.exchange.photo import MAX_PIXELS, Photo, read_depth_file, read_photo
from depth2mesh.exchange.pictures import write_depth_pictures
from depth2mesh.exchange.ply import encode_ply_mesh, encode_ply_points
from depth2mesh.exchange.quantize import bounding_box
from depth2mesh.exchange.texture import StripTexture, Texture, photo_texture, strip_texture
from depth2mesh.geometry.camera import (
    ESTIMATED_PREFIX,
    Intrinsics,
    intrinsics_from_focal_px,
    resolve_intrinsics,
)
from depth2mesh.geometry.edges import (
    DEFAULT_EDGE_RADIUS,
    DEFAULT_EDGES,
    DEFAULT_STEP_RATIO,
    DEFAULT_STRONG_RATIO,
    edge_radius_px,
    occlusion_cuts,
    settle_ramps,
)
from depth2mesh.geometry.inpaint import (
    BASELINE_M,
    DEFAULT_INPAINT,
    SLOT_TEXELS,
    InpaintMode,
    LayerMesh,
    Skirt,
    background_layer,
    border_skirt,
    layer_mesh,
    layer_strip,
)
from depth2mesh.geometry.mesh import (
    DEFAULT_DENSITY_QUANTILE,
    DEFAULT_GRID,
    DEFAULT_POISSON_POINTS,
    MeshArrays,
    PoissonSurface,
    auto_poisson_depth,
    check_poisson_options,
    grid_mesh,
    kept_triangles,
    poisson_mesh,
    preload_open3d,
    split_in_four,
    trim_poisson,
)
from depth2mesh.geometry.points import (
    DEFAULT_EDGE_THRESHOLD,
    camera_facing_normals,
    camera_to_gltf,
    depth_to_points,
    model_normals,
    project_points,
    sample_colors,
    srgb_to_linear,
)
from depth2mesh.geometry.scale import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    MAX_DEPTH_M,
    MIN_DEPTH_M,
    DepthPin,
    PinFit,
    check_pins,
    disparity_to_depth,
    disparity_to_depth_pinned,
    far_mask,
    metric_depth_pinned,
)
from depth2mesh.geometry.support import DEFAULT_SUPPORT, even_sample

if TYPE_CHECKING:
    from depth2mesh.depth.model import DepthModel

EXTRA_FORMATS: Final = ("obj",)
"""Formats that ``--format`` adds beside the GLB and PLY defaults."""

UNCUT: Final = MAX_DEPTH_M / MIN_DEPTH_M
"""An edge threshold above every possible depth ratio: no triangle is cut."""

MeshKind = Literal["grid", "poisson", "both"]
DepthKind = Literal["disparity", "metric"]
DepthSize = Literal["grid", "photo"]
EdgesMode = Literal["on", "off"]


@dataclass(frozen=True)
class CameraOptions:
    """What the user said about the camera; unset fields are None (see ``resolve_intrinsics``).

    The first given wins: ``fx``/``fy``/``cx``/``cy``; ``focal_px`` or ``focal_35mm``;
    ``fov_deg``; the photo's EXIF 35 mm focal length; the estimate of a model that makes one
    (the depth model, moge2-small, or :attr:`ConvertOptions.camera_model`); 60 degrees
    horizontal. These descriptions are also the command line's option help.

    Attributes:
        fx: Horizontal focal length, pixels of the photo.
        fy: Vertical focal length, pixels of the photo.
        cx: Principal point's column, pixels of the photo.
        cy: Principal point's row, pixels of the photo.
        focal_px: Focal length, pixels of the photo.
        focal_35mm: 35 mm-equivalent focal length, millimetres.
        fov_deg: Horizontal field of view, degrees. Default: the photo's EXIF focal length,
            else moge2-small's estimate (as the depth model or ``camera_model``), else 60.
    """

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    focal_px: float | None = None
    focal_35mm: float | None = None
    fov_deg: float | None = None


@dataclass(frozen=True)
class ConvertOptions:
    """Every tuning option of a conversion, with the documented defaults.

    The attribute descriptions below are also the command line's help for the options of the
    same names (``near`` is ``--near``), so they are written for both readers. Pins:
    :func:`~depth2mesh.geometry.scale.disparity_to_depth_pinned` and
    :func:`~depth2mesh.geometry.scale.metric_depth_pinned`; occlusion edges:
    :mod:`depth2mesh.geometry.edges`; the texture:
    :func:`~depth2mesh.exchange.texture.photo_texture`.

    Attributes:
        near: Depth of the nearest content, metres; not given (None): 1. Relative depth only
            (a metric model or a metric depth file gives metres itself); not with ``depth_at``.
        far: Depth of the farthest content and of sky, metres; not given (None): 10. Relative
            depth only; not with ``depth_at``.
        depth_at: Known depths instead of the ``near``/``far`` guess, each a pixel of the
            upright photo (column U, row V; 0,0 is the centre of the top-left pixel;
            fractions allowed) and how many metres away it lies along the camera's axis (a
            tape measure, a depth camera, a known object); on the command line
            ``--depth-at U,V=METRES``. One pin scales the whole scene so that it holds; two,
            on a near and a far pixel, fix the scale and the shift of inverse depth, and
            both pixels lie exactly at their depths. A metric depth (model or file) is
            corrected the same way. One photo only.
        grid: Long side of the mesh grid and the point cloud, vertices (at least 2).
        edge_threshold: Cut grid triangles whose largest to smallest corner depth exceeds
            this ratio (above 1).
        edges: "on": also tear the grid mesh at occlusion edges, where a smooth depth ramp
            meets an edge of the photo, and move the ramp's floating points onto a side, so
            no rubber sheets join near objects to what is behind them; "off": only
            ``edge_threshold`` cuts. Known limit: a textured surface that slopes away, such as
            an open door, is cut into strands with holes.
        edge_radius: Half-width of the depth ramps looked for, a fraction of the grid's long
            side, in (0, 0.1] (0.014: 9 pixels of a 640 grid).
        edge_step: Tear at a photo edge where the depth steps by more than this ratio across
            it (above 1).
        edge_strong: Tear a depth step above this ratio at its middle, even without a photo
            edge (above 1).
        inpaint: "on": the grid GLB gets a guessed background layer behind every torn edge
            (the far side's surface carried on behind the near object, its colours from the
            far side only, in a strip below the photo in the texture; hidden from the photo's
            camera), so that a viewer beside the photo's camera sees no holes; the point cloud
            and the Poisson mesh keep only what the photo saw. "off": the grid GLB without it.
        mesh: Meshes to build: "grid" (UV-textured pixel grid), "poisson" (Open3D's Poisson
            surface, trimmed to what the points support, textured with the photo where the
            photo saw it, vertex colours elsewhere) or "both".
        drop_far: Leave out sky from the cloud and the meshes: everything at ``far``
            (relative depth, disparity files) or, with a metric model, within 1 % of its
            largest depth, where it saturates (19.8 m of 20, 79.2 m of 80); no effect on a
            metric depth file.
        poisson_depth: Octree depth of the Poisson reconstruction (5..12); not given (None):
            from the grid's size, at most 7 (7 for 320 pixels and more; 8 is finer and takes
            2-3x the time).
        density_quantile: Also trim this fraction of the lowest-density Poisson vertices, in
            [0, 1) (0: the support trim does the work).
        poisson_points: Most points given to the Poisson reconstruction (the grid thinned
            evenly, every s-th row and column).
        poisson_support: Keep Poisson surface only within this fraction of its depth of the
            point cloud, and inside the photo's frame, in (0, 1]: no invented sheets.
        face_budget: Decimate the Poisson mesh to at most this many triangles; not given
            (None): no decimation.
        texture_size: Longest side of the GLB texture, pixels (a larger photo is shrunk).
        texture_format: Encoding of the GLB texture: "jpeg" or "png" (lossless, larger).
        glb_compression: How the GLBs store their vertex data: "quantized"
            (KHR_mesh_quantization: 16-bit positions and texture coordinates, 16-bit
            indices; about half the size of float32 files, within 1e-4 of the depth range;
            trimesh misreads its texture coordinates), "draco" (KHR_draco_mesh_compression:
            smallest, slower to write, needs the ``draco`` extra, pip install
            'depth2mesh[draco]'; not every viewer decodes it) or "none" (float32). The grid's
            triangles are triangle strips in "none" and "quantized".
        jpeg_quality: Encode the texture at this JPEG quality (1..100); not given (None): a
            JPEG photo that is upright and fits ``texture_size`` is embedded as it is (no
            second loss, no encoding time), anything else is encoded at 90.
        depth_size: Size of the depth pictures (STEM_depth.png, STEM_depth_inferno.png):
            "grid" (the ``grid`` size; the network's input is smaller, so more is
            interpolation) or "photo" (the photo's own size: slower, larger files).
        camera: The camera options (see :class:`CameraOptions`).
        camera_model: A model that estimates the camera from the photo itself ("moge2-small"),
            for photos that neither the camera options nor EXIF describe, whatever gives the
            depth (another model, or a depth file): it runs at its least token count and only
            its focal length is used; the sidecar's intrinsics source says "estimated by" it.
            Its weights are found as its own ``--model`` would find them (its variable, the
            torch.hub cache, the official download); not given (None): the depth model's own
            estimate where it makes one (moge2-small), else 60 degrees.
        depth_kind: What a depth file (``--depth``) holds: "metric" (metres) or "disparity".
        depth_png_scale: Metres per unit of a 16-bit depth PNG (0.001: millimetres).
        formats: Extra formats of the grid mesh: "obj" adds STEM.obj, STEM.mtl and its
            texture, STEM_texture.jpg (or .png).
        max_pixels: Refuse photos with more pixels (decompression bombs); raise it for huge
            photos.
        overwrite: Replace existing output files.
    """

    near: float | None = None
    far: float | None = None
    depth_at: tuple[DepthPin, ...] = ()
    grid: int = DEFAULT_GRID
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD
    edges: EdgesMode = DEFAULT_EDGES
    edge_radius: float = DEFAULT_EDGE_RADIUS
    edge_step: float = DEFAULT_STEP_RATIO
    edge_strong: float = DEFAULT_STRONG_RATIO
    inpaint: InpaintMode = DEFAULT_INPAINT
    mesh: MeshKind = "grid"
    drop_far: bool = False
    poisson_depth: int | None = None
    density_quantile: float = DEFAULT_DENSITY_QUANTILE
    poisson_points: int = DEFAULT_POISSON_POINTS
    poisson_support: float = DEFAULT_SUPPORT
    face_budget: int | None = None
    texture_size: int = DEFAULT_TEXTURE_SIZE
    texture_format: Literal["jpeg", "png"] = "jpeg"
    glb_compression: GlbCompression = DEFAULT_GLB_COMPRESSION
    jpeg_quality: int | None = None
    depth_size: DepthSize = "grid"
    camera: CameraOptions = field(default_factory=CameraOptions)
    camera_model: str | None = None
    depth_kind: DepthKind = "metric"
    depth_png_scale: float = 0.001
    formats: tuple[str, ...] = ()
    max_pixels: int = MAX_PIXELS
    overwrite: bool = False

    def near_far(self) -> tuple[float, float]:
        """The depths of the nearest and the farthest content, metres, defaults applied.

        Returns:
            ``(near, far)``: the values given, else :data:`~depth2mesh.geometry.scale.DEFAULT_NEAR`
            and :data:`~depth2mesh.geometry.scale.DEFAULT_FAR` (1 and 10 metres).
        """
        near = DEFAULT_NEAR if self.near is None else self.near
        return near, DEFAULT_FAR if self.far is None else self.far

    def check(self) -> None:
        """Raise :class:`ParameterError`, naming the parameter, for values that cannot work."""
        near, far = self.near_far()
        if not (math.isfinite(near) and near >= MIN_DEPTH_M):
            raise ParameterError(
                f"{{near}} must be at least {MIN_DEPTH_M} metres, got {near}", "near"
            )
        if not (math.isfinite(far) and far > near):
            raise ParameterError(
                f"{{far}} must be greater than {{near}} ({near}), got {far}", "far", "near"
            )
        if far > MAX_DEPTH_M:
            raise ParameterError(
                f"{{far}} must be at most {MAX_DEPTH_M:g} metres, got {far}", "far"
            )
        check_pins(self.depth_at)
        if self.depth_at and (self.near is not None or self.far is not None):
            raise pins_with_near_far()
        if self.grid < 2:
            raise ParameterError(f"{{grid}} must be at least 2 vertices, got {self.grid}", "grid")
        if not (math.isfinite(self.edge_threshold) and self.edge_threshold > 1.0):
            raise ParameterError(
                f"{{edge_threshold}} must be above 1, got {self.edge_threshold}", "edge_threshold"
            )
        if self.edges not in ("on", "off"):
            raise ParameterError(f"{{edges}} must be on or off, got {self.edges!r}", "edges")
        if self.inpaint not in ("on", "off"):
            raise ParameterError(f"{{inpaint}} must be on or off, got {self.inpaint!r}", "inpaint")
        if not (math.isfinite(self.edge_radius) and 0.0 < self.edge_radius <= 0.1):
            raise ParameterError(
                f"{{edge_radius}} must be in (0, 0.1] (of the long side), got {self.edge_radius}",
                "edge_radius",
            )
        for name in ("edge_step", "edge_strong"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 1.0):
                raise ParameterError(f"{{{name}}} must be a depth ratio above 1, got {value}", name)
        if self.mesh not in ("grid", "poisson", "both"):
            raise ParameterError(
                f"{{mesh}} must be grid, poisson or both, got {self.mesh!r}", "mesh"
            )
        check_poisson_options(
            depth=self.poisson_depth,
            density_quantile=self.density_quantile,
            face_budget=self.face_budget,
            support=self.poisson_support,
            depth_name="poisson_depth",
        )
        if self.max_pixels < 1:
            raise ParameterError(
                f"{{max_pixels}} must be at least 1, got {self.max_pixels}", "max_pixels"
            )
        if self.texture_size < 16:
            raise ParameterError(
                f"{{texture_size}} must be at least 16, got {self.texture_size}", "texture_size"
            )
        if self.glb_compression not in GLB_COMPRESSIONS:
            raise ParameterError(
                f"{{glb_compression}} must be one of {', '.join(GLB_COMPRESSIONS)}, "
                f"got {self.glb_compression!r}",
                "glb_compression",
            )
        if self.glb_compression == "draco":
            from depth2mesh.exchange.draco import require_draco

            require_draco()
        if self.depth_size not in ("grid", "photo"):
            raise ParameterError(
                f"{{depth_size}} must be grid or photo, got {self.depth_size!r}", "depth_size"
            )
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ParameterError(
                f"{{jpeg_quality}} must be in 1..100, got {self.jpeg_quality}", "jpeg_quality"
            )
        unknown = set(self.formats) - set(EXTRA_FORMATS)
        if unknown:
            raise ParameterError(
                f"{{formats}} must be one of {', '.join(EXTRA_FORMATS)}, got {unknown}", "formats"
            )
        if self.depth_kind not in ("disparity", "metric"):
            raise ParameterError(
                f"{{depth_kind}} must be metric or disparity, got {self.depth_kind!r}", "depth_kind"
            )
        if self.camera_model is not None:
            from depth2mesh.depth.registry import check_camera_model

            check_camera_model(self.camera_model)


METRIC_SKY_MARGIN: Final = 0.01
"""``drop_far`` with a metric model leaves out depth within this fraction of its ``max_depth``.

The metric heads end in a Sigmoid times ``max_depth``: sky and anything farther than the model
can tell saturate just below ``max_depth`` (the Sigmoid reaches 0.99 at a logit of 4.6), so
the band of the top 1 % is where sky lands, and little else (20 m indoors, 80 m outdoors)."""


def metric_sky_depth(max_depth: float) -> float:
    """The depth from which ``drop_far`` leaves a metric model's points out, metres.

    Args:
        max_depth: The model's largest depth, metres.

    Returns:
        ``max_depth * (1 - METRIC_SKY_MARGIN)`` (19.8 m for 20 m, 79.2 m for 80 m).
    """
    return max_depth * (1.0 - METRIC_SKY_MARGIN)


def pins_with_near_far() -> ParameterError:
    """The error for ``depth_at`` given together with ``near`` or ``far`` (a usage error)."""
    return ParameterError(
        "{depth_at} sets the depth scale itself: leave out {near} and {far}",
        "depth_at",
        "near",
        "far",
    )


@dataclass(frozen=True)
class ConvertResult:
    """What one conversion wrote and measured.

    Attributes:
        photo: The input photo.
        files: The files written, in order (the sidecar last).
        intrinsics: The photo's camera (at the photo's resolution).
        counts: Points, vertices and faces per output.
        timings_s: Seconds per stage (keys from :data:`STAGES`, and "total").
        notes: Things the user should know about the input (e.g. an animated image).
        paths: The files written, by kind (keys from :func:`output_paths`), in ``files``'
            order.
    """

    photo: Path
    files: list[Path]
    intrinsics: Intrinsics
    counts: dict[str, int]
    timings_s: dict[str, float]
    notes: tuple[str, ...] = ()
    paths: dict[str, Path] = field(default_factory=dict)


STAGES: Final = (
    "read",
    "depth",
    "geometry",
    "depth_pictures",
    "point_cloud",
    "grid_mesh",
    "poisson_mesh",
    "sidecar",
)
"""The stages of :func:`convert_photo`, in order: the names given to its ``step`` callback and
the keys of its timings ("poisson_mesh" only with a Poisson mesh)."""


def depth_paths(
    out_dir: str | Path, stem: str, *, save_raw: bool = False, metric: bool = False
) -> dict[str, Path]:
    """Return the depth files of one photo, by kind (the names are the interface).

    Keys: "depth" (``<stem>_depth.png``, 16-bit), "inferno" (``<stem>_depth_inferno.png``)
    and, with ``save_raw``, "disparity" (``<stem>_disparity.npy``, what ``depth2mesh depth
    --save-raw`` adds) or, for a metric model (``metric``), "metres"
    (``<stem>_depth_metres.npy``).
    """
    out = Path(out_dir)
    paths = {"depth": out / f"{stem}_depth.png", "inferno": out / f"{stem}_depth_inferno.png"}
    if save_raw and metric:
        paths["metres"] = out / f"{stem}_depth_metres.npy"
    elif save_raw:
        paths["disparity"] = out / f"{stem}_disparity.npy"
    return paths


def output_paths(
    out_dir: str | Path,
    stem: str,
    mesh: MeshKind = "grid",
    *,
    formats: tuple[str, ...] = (),
    texture_format: str = "jpeg",
) -> dict[str, Path]:
    """Return the files :func:`convert_photo` writes, by kind, in the order it writes them.

    The names are the interface: every other module takes them from here. Keys: "depth",
    "inferno" (see :func:`depth_paths`), "points", "glb"; with the "obj" format "texture",
    "mtl", "obj"; with a Poisson mesh "poisson_glb", "poisson_ply"; last "sidecar".
    """
    out = Path(out_dir)
    paths = depth_paths(out, stem)
    paths["points"] = out / f"{stem}_points.ply"
    paths["glb"] = out / f"{stem}.glb"
    if "obj" in formats:
        paths["texture"] = out / f"{stem}_texture.{'png' if texture_format == 'png' else 'jpg'}"
        paths["mtl"] = out / f"{stem}.mtl"
        paths["obj"] = out / f"{stem}.obj"
    if mesh in ("poisson", "both"):
        paths["poisson_glb"] = out / f"{stem}_poisson.glb"
        paths["poisson_ply"] = out / f"{stem}_poisson.ply"
    paths["sidecar"] = out / f"{stem}.json"
    return paths


def sidecar_path(result_file: str | Path) -> Path:
    """Return the sidecar (``<stem>.json``) of a file of :func:`output_paths` or `depth_paths`.

    The stem is the file name less the longest output suffix it ends with (``_points.ply``,
    ``_poisson.glb``, ``.glb``, ...); a name with none of them keeps its own stem. The
    sidecar may not exist.
    """
    path = Path(result_file)
    for suffix in _OUTPUT_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return output_paths(path.parent, path.name[: -len(suffix)])["sidecar"]
    return output_paths(path.parent, path.stem)["sidecar"]


def _output_suffixes() -> tuple[str, ...]:
    """What :func:`output_paths` appends to a stem, for every option, longest first."""
    stem = "stem"
    names = {path.name for path in depth_paths("", stem, save_raw=True).values()}
    names.update(path.name for path in depth_paths("", stem, save_raw=True, metric=True).values())
    for texture_format in ("jpeg", "png"):
        paths = output_paths("", stem, "both", formats=EXTRA_FORMATS, texture_format=texture_format)
        names.update(path.name for path in paths.values())
    return tuple(sorted((name[len(stem) :] for name in names), key=len, reverse=True))


_OUTPUT_SUFFIXES: Final = _output_suffixes()


def write_depth_images(
    disparity: NDArray[np.float32],
    out_dir: str | Path,
    stem: str,
    *,
    save_raw: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write the depth pictures of one photo (``depth2mesh depth``), by :func:`depth_paths`.

    Nothing is written when any of the outputs exists and ``overwrite`` is False.

    Args:
        disparity: (H, W) float32, relative inverse depth from the network.
        out_dir: Existing output folder.
        stem: The photo's file name without extension.
        save_raw: Also write ``<stem>_disparity.npy`` (float32, unnormalised).
        overwrite: Replace existing files.

    Returns:
        The paths written.

    Raises:
        OutputError: An output exists (without ``overwrite``) or cannot be written.
    """
    paths = depth_paths(out_dir, stem, save_raw=save_raw)
    return write_depth_pictures(disparity, paths, overwrite=overwrite)


def grid_size(height: int, width: int, grid: int) -> tuple[int, int]:
    """Return the (rows, columns) of the mesh grid: long side ``grid``, never upsampled.

    Args:
        height: Photo height, pixels.
        width: Photo width, pixels.
        grid: Wanted long side, vertices.

    Returns:
        (rows, columns), each at least 2 (a 1-pixel photo still gives one grid cell).
    """
    scale = min(1.0, grid / max(height, width))
    return max(2, round(height * scale)), max(2, round(width * scale))


def load_depth_input(
    path: str | Path, photo_shape: tuple[int, int], *, kind: DepthKind, png_scale: float
) -> NDArray[np.float32]:
    """Read a ``--depth`` file and bring it to the photo's size.

    Args:
        path: ``.npy``, ``.pfm`` or 16-bit ``.png`` (see :func:`read_depth_file`).
        photo_shape: (H, W) of the photo.
        kind: "metric" (metres; 0, negative and non-finite = no measurement, as in KITTI's and
            Middlebury's files) or "disparity" (must be finite everywhere).
        png_scale: Value of one PNG unit (0.001 for millimetres).

    Returns:
        (H, W) float32: metres (NaN where invalid) or disparity.

    Raises:
        InputError: The map has no usable value, a disparity map has NaN or inf, or the map's
            aspect ratio differs from the photo's by more than 1 % (not the same picture).
    """
    values = read_depth_file(path, png_scale=png_scale)
    height, width = values.shape
    photo_height, photo_width = photo_shape
    if abs((width / height) / (photo_width / photo_height) - 1.0) > 0.01:
        raise InputError(
            f"depth file {path} is {width}x{height} but the photo is {photo_width}x"
            f"{photo_height}: a depth map must have the photo's aspect ratio (same picture)"
        )
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(values) & (values > 0) if kind == "metric" else np.isfinite(values)
    if not usable.any() or (kind == "disparity" and not (values[usable] != 0).any()):
        raise InputError(f"depth file {path} holds no usable value (all zero, NaN or inf)")
    if kind == "disparity" and not usable.all():
        raise InputError(
            f"depth file {path} has {int((~usable).sum()):,} NaN or inf disparity values: "
            "disparity must be finite (use --depth-kind metric for depth with holes)"
        )
    if kind == "metric":
        values = np.where(usable, values, np.nan).astype(np.float32)
    if values.shape != photo_shape:
        interpolation = cv2.INTER_NEAREST if kind == "metric" else cv2.INTER_LINEAR
        resized = cv2.resize(values, photo_shape[::-1], interpolation=interpolation)
        values = np.asarray(resized, dtype=np.float32)
    return values


def is_converted(photo_path: str | Path, out_dir: str | Path, options: ConvertOptions) -> bool:
    """Whether a photo's results are complete in ``out_dir`` (for ``--skip-existing``).

    True when every file that :func:`output_paths` names for these options is there (the
    sidecar, written last, among them); anything less is an interrupted or different run.
    """
    return all(path.is_file() for path in _paths(photo_path, out_dir, options).values())


class StageTimer:
    """Announces each stage of a conversion and records its seconds under the same name.

    Args:
        step: Called with the stage's name as it starts (for progress displays), or None.
    """

    def __init__(self, step: Callable[[str], None] | None = None) -> None:
        self.step = step
        self.started = time.perf_counter()
        self.timings_s: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name`` (one of :data:`STAGES`)."""
        if name not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {name!r}")
        start = time.perf_counter()
        if self.step is not None:
            self.step(name)
        yield
        self.timings_s[name] = round(time.perf_counter() - start, 4)

    def total(self) -> dict[str, float]:
        """The stages' seconds so far and "total", the seconds since the timer was made."""
        return {**self.timings_s, "total": round(time.perf_counter() - self.started, 4)}


@dataclass(frozen=True)
class DepthMaps:
    """What the depth stage gives the others.

    Attributes:
        disparity: (rows, cols) float32 at the mesh grid's size, relative inverse depth
            (1 / metres for metric depth).
        picture: (h, w) float32 disparity at the depth pictures' size (``disparity`` itself
            when that is the grid's size).
        metric: (rows, cols) float32 metres at the grid's size (NaN where unmeasured) from a
            metric depth file or a metric model, else None.
        measured: Whether ``metric`` comes from a depth file (a sensor's pixels, kept as they
            are) rather than from a network (whose depth ramps ``edges="on"`` settles).
        max_depth: A metric model's largest depth (its Sigmoid times ``max_depth``), metres:
            where its output saturates (sky); None for relative models and depth files.
        normals: (rows, cols, 3) float32 normals that the network predicted itself (MoGe-2),
            in the OpenCV camera frame, zero where it gives none (its mask); None for the
            other sources (the geometry stage estimates normals from the points).
        normals_source: The ``--model`` name of the network that gave ``normals``.
    """

    disparity: NDArray[np.float32]
    picture: NDArray[np.float32]
    metric: NDArray[np.float32] | None = None
    measured: bool = False
    max_depth: float | None = None
    normals: NDArray[np.float32] | None = None
    normals_source: str | None = None


@dataclass(frozen=True)
class Geometry:
    """The mesh grid in the OpenCV camera frame.

    Attributes:
        depth: (rows, cols) float32 metres along +z (NaN where unmeasured).
        valid: (rows, cols) bool, pixels that are part of the scene.
        points: (rows, cols, 3) float32 metres.
        normals: (rows, cols, 3) float32 unit normals facing the camera: the network's own
            where :attr:`model_normals` says so, elsewhere estimated from the points
            (:func:`~depth2mesh.geometry.points.camera_facing_normals`).
        colors: (rows, cols, 3) uint8 sRGB.
        cuts: (rows, cols) bool occlusion cuts of the grid mesh (True: the cell to the lower
            right of that pixel is removed), or None with ``edges="off"``.
        moved: (rows, cols) bool pixels that floated on a depth ramp beside a cut and were
            moved onto the nearer surface (in ``depth``, ``points`` and so in the cloud, the
            grid mesh and the Poisson input alike), or None with ``edges="off"``.
        pins: How ``depth_at`` set the depth, or None without pins.
        model_normals: (rows, cols) bool, the pixels whose normals are the network's
            (:attr:`DepthMaps.normals`), or None when the depth source gives no normals.
        normals_source: The ``--model`` name of the network that gave them, or None.
    """

    depth: NDArray[np.float32]
    valid: NDArray[np.bool_]
    points: NDArray[np.float32]
    normals: NDArray[np.float32]
    colors: NDArray[np.uint8]
    cuts: NDArray[np.bool_] | None = None
    moved: NDArray[np.bool_] | None = None
    pins: PinFit | None = None
    model_normals: NDArray[np.bool_] | None = None
    normals_source: str | None = None


def convert_photo(
    photo_path: str | Path,
    out_dir: str | Path,
    *,
    model: DepthModel | None = None,
    options: ConvertOptions | None = None,
    depth_file: str | Path | None = None,
    step: Callable[[str], None] | None = None,
    camera_model: DepthModel | None = None,
) -> ConvertResult:
    """Convert one photo into the files of the output contract (see :func:`output_paths`).

    One function per stage (:data:`STAGES`), each timed by a :class:`StageTimer`.

    Args:
        photo_path: The photo.
        out_dir: Output folder (created if missing).
        model: The depth network (from :func:`depth2mesh.load_model`); not needed with
            ``depth_file``.
        options: Tuning options (defaults: :class:`ConvertOptions`).
        depth_file: Use this depth or disparity map instead of the network.
        step: Called with the name of each stage (:data:`STAGES`) as it starts.
        camera_model: The model that ``options.camera_model`` names, loaded
            (:func:`~depth2mesh.depth.model.load_camera_model`; load it once for many
            photos); None: loaded here when the options name one and the depth model is not
            that model itself.

    Returns:
        The files written and what was measured.

    Raises:
        InputError: Bad photo or depth file. OutputError: an output exists (without
            ``overwrite``) or cannot be written. ValueError: bad options.
    """
    opts = options or ConvertOptions()
    opts.check()
    check_model_options(opts, model, depth_file)
    camera_model = camera_model_for(opts, model, depth_file, camera_model)
    photo_path = Path(photo_path)
    paths = _paths(photo_path, out_dir, opts)
    _prepare_out_dir(out_dir, paths, overwrite=opts.overwrite)
    if opts.mesh in ("poisson", "both"):
        preload_open3d()  # the slow import overlaps the stages before the Poisson one
    timer = StageTimer(step)
    with timer.stage("read"):
        photo, intrinsics = read_stage(photo_path, opts)
    with timer.stage("depth"):
        if camera_model is not None and intrinsics.source == "default":
            intrinsics = estimate_camera(photo, intrinsics, camera_model, opts)
        if depth_file is None and model is not None and model.spec.output == "points":
            maps, intrinsics = points_stage(photo, intrinsics, opts, model)
        else:
            maps = depth_stage(photo, opts, model, depth_file)
    with timer.stage("geometry"):
        geometry = geometry_stage(photo, intrinsics, maps, opts)
    with ThreadPoolExecutor(max_workers=1) as pool:
        prepared = None
        if opts.inpaint == "on":  # built while the depth pictures and the points are written
            prepared = pool.submit(
                prepare_layer,
                photo,
                intrinsics,
                geometry,
                opts,
                edge_threshold=opts.edge_threshold,
                cuts=geometry.cuts,
            ).result
        with timer.stage("depth_pictures"):
            written = write_depth_pictures(maps.picture, paths, overwrite=opts.overwrite)
        with timer.stage("point_cloud"):
            written += point_cloud_stage(geometry, paths, overwrite=opts.overwrite)
        camera = _gltf_camera(intrinsics, geometry.depth[geometry.valid])
        with timer.stage("grid_mesh"):
            built = grid_mesh_stage(
                photo, intrinsics, geometry, camera, paths, opts, prepared=prepared
            )
            written += built.files
    grid, texture, notes = built.mesh, built.texture, built.notes
    counts = _counts(geometry, grid)
    if opts.inpaint == "on":
        counts.update(inpaint_vertices=built.layer_vertices, inpaint_faces=built.layer_faces)
    meshes = {"grid": (grid.vertices, paths["glb"])}
    if opts.mesh in ("poisson", "both"):
        with timer.stage("poisson_mesh"):
            poisson_files, surface, ply_mesh, poisson_notes = poisson_stage(
                photo, intrinsics, geometry, camera, paths, opts, texture, built.photo_part
            )
            notes += poisson_notes
            written += poisson_files
        counts.update(
            poisson_vertices=len(surface.vertices),
            poisson_faces=len(surface.faces),
            poisson_ply_vertices=len(ply_mesh.vertices),
            poisson_ply_faces=len(ply_mesh.faces),
        )
        meshes["poisson"] = (surface.vertices, paths["poisson_glb"])
    files = [*written, paths["sidecar"]]
    result = ConvertResult(
        photo_path,
        files,
        intrinsics,
        counts,
        timer.total(),
        (*photo.notes, *notes),
        {kind: path for kind, path in paths.items() if path in files},
    )
    with timer.stage("sidecar"):
        glb = glb_record(opts.glb_compression, meshes)
        sidecar = _sidecar(
            result,
            photo,
            opts,
            model,
            depth_file,
            written,
            texture,
            maps.picture,
            glb,
            geometry.pins,
            _inpaint_record(opts, built),
            normals_record(geometry),
            camera_model,
        )
        atomic_write_bytes(paths["sidecar"], sidecar, overwrite=opts.overwrite)
    return result


def check_model_options(
    options: ConvertOptions, model: DepthModel | None, depth_file: str | Path | None
) -> None:
    """Refuse ``near``/``far`` with a metric model: its depth is in metres already.

    Raises:
        ParameterError: ``near`` or ``far`` set while a metric model gives the depth.
    """
    if depth_file is not None or model is None or model.spec.output == "disparity":
        return
    changed = [name for name in ("near", "far") if getattr(options, name) is not None]
    if changed:
        raise ParameterError(
            f"{{{changed[0]}}} does not apply to the metric model {model.spec.name}, whose "
            "depth is in metres already: leave {near} and {far} out (they scale relative "
            "models' disparity)",
            changed[0],
            *(name for name in ("near", "far") if name != changed[0]),
        )


def read_stage(photo_path: Path, options: ConvertOptions) -> tuple[Photo, Intrinsics]:
    """Read the photo, no larger than the texture and the grid need, and its camera.

    Returns:
        The upright photo, and its intrinsics at its full (stored) size.

    Raises:
        ParameterError: A ``depth_at`` pin outside the photo (before the network runs).
    """
    # nothing needs more pixels than the texture and the grid: huge JPEGs are decoded smaller
    needed = max(options.texture_size, options.grid)
    photo = read_photo(photo_path, max_pixels=options.max_pixels, min_side=needed)
    check_pins(options.depth_at, photo.size)
    return photo, _intrinsics(photo, options.camera)


def depth_stage(
    photo: Photo,
    options: ConvertOptions,
    model: DepthModel | None,
    depth_file: str | Path | None,
) -> DepthMaps:
    """Disparity at the grid's and the depth pictures' sizes, from the network or a file.

    Raises:
        ValueError: Neither a model nor a depth file.
        InputError: A depth file that cannot be used (see :func:`load_depth_input`).
    """
    height, width = photo.size
    grid_rows_cols = grid_size(height, width, options.grid)
    sizes = [grid_rows_cols]
    if options.depth_size == "photo" and (height, width) != grid_rows_cols:
        sizes.append((height, width))
    if depth_file is not None:
        return _depth_from_file(depth_file, photo, sizes, options)
    if model is None:
        raise ValueError("convert_photo needs a model (depth2mesh.load_model) or a depth_file")
    from depth2mesh.depth.model import predict_depths, predict_disparities

    # the network sees a few hundred pixels on a side: its output is resized
    # straight to each size used
    if model.spec.output == "metric":
        metres = predict_depths(photo.rgb, model, sizes)
        inverse = [(1.0 / np.maximum(item, MIN_DEPTH_M)).astype(np.float32) for item in metres]
        return DepthMaps(
            disparity=inverse[0],
            picture=inverse[-1],
            metric=metres[0],
            max_depth=model.spec.max_depth,
        )
    resized = predict_disparities(photo.rgb, model, sizes)
    return DepthMaps(disparity=resized[0], picture=resized[-1])


def points_stage(
    photo: Photo, intrinsics: Intrinsics, options: ConvertOptions, model: DepthModel
) -> tuple[DepthMaps, Intrinsics]:
    """Metric depth and the camera from a model that predicts points (MoGe-2).

    The camera, in order: the one ``read_stage`` found from explicit options or EXIF (then
    the model solves only its depth shift for that field of view, as the official code does
    with a known field of view), else the model's own estimate, recorded as "estimated by
    <model>" (instead of the 60-degree default). Depth is the model's metric depth (the
    ``depth_at`` pins still rescale it); the pixels its mask leaves out (sky, background)
    are placed at the farthest depth it gives, or left out with ``drop_far``.

    Returns:
        The depth maps (metres at the grid's size) and the intrinsics used.
    """
    from depth2mesh.depth.model import predict_points

    known = None if intrinsics.source == "default" else intrinsics.hfov_deg
    height, width = photo.size
    grid_rows_cols = grid_size(height, width, options.grid)
    # the maps at the grid's size straight from the network (no 12 MP point map)
    prediction = predict_points(photo.rgb, model, fov_x=known, size=grid_rows_cols)
    if known is None:
        intrinsics = estimated_intrinsics(intrinsics, prediction.focal, model.spec.name)
    depth = np.where(prediction.mask, prediction.depth, np.nan).astype(np.float32)
    if not options.drop_far and prediction.mask.any():
        depth = np.where(prediction.mask, depth, np.nanmax(depth)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(np.isfinite(depth), 1.0 / np.maximum(depth, MIN_DEPTH_M), 0.0)
    inverse = inverse.astype(np.float32)
    picture = inverse
    if options.depth_size == "photo" and (height, width) != grid_rows_cols:
        picture = _resize(inverse, height, width, cv2.INTER_LINEAR)
    maps = DepthMaps(
        disparity=inverse,
        picture=picture,
        metric=depth,
        normals=prediction.normals,
        normals_source=model.spec.name if prediction.normals is not None else None,
    )
    return maps, intrinsics


def estimated_intrinsics(intrinsics: Intrinsics, focal: float, name: str) -> Intrinsics:
    """The photo's camera with a focal length that a model estimated.

    Args:
        intrinsics: The photo's camera (its size is kept; the principal point is the centre).
        focal: The model's focal length, relative to half the image diagonal (MoGe-2's).
        name: The model's ``--model`` name: the source is "estimated by <name>".
    """
    focal_px = focal * math.hypot(intrinsics.width, intrinsics.height) / 2
    return intrinsics_from_focal_px(
        intrinsics.width,
        intrinsics.height,
        abs(focal_px),  # the sign is the point map's handedness, always + when trained
        source=f"{ESTIMATED_PREFIX}{name}",
    )


def estimate_camera(
    photo: Photo, intrinsics: Intrinsics, model: DepthModel, options: ConvertOptions
) -> Intrinsics:
    """The camera that a model which estimates one (``camera_model``) finds for the photo.

    The model runs on the photo at its own token count (a camera model is loaded at its
    least) with its maps at the grid's size, as :func:`points_stage` runs it, so its focal
    length is the one the same model as depth model would give; only the focal length is
    used.

    Args:
        photo: The upright photo.
        intrinsics: The photo's camera so far (its size is kept).
        model: A "points" model (MoGe-2).
        options: The conversion's options (the grid's size).

    Returns:
        The intrinsics, source "estimated by <model>".
    """
    from depth2mesh.depth.model import predict_points

    height, width = photo.size
    prediction = predict_points(photo.rgb, model, size=grid_size(height, width, options.grid))
    return estimated_intrinsics(intrinsics, prediction.focal, model.spec.name)


def camera_model_name(
    options: ConvertOptions, model_name: str | None, depth_file: str | Path | None
) -> str | None:
    """The registry name of the camera model to load besides the depth model, or None.

    None without ``options.camera_model``, and when the depth model (``model_name``, its
    ``--model`` name) is that very model and gives the depth (no ``depth_file``): it
    estimates the camera itself, once.

    Raises:
        ParameterError: ``options.camera_model`` is no model that estimates a camera.
    """
    from depth2mesh.depth.registry import check_camera_model

    if options.camera_model is None:
        return None
    name = check_camera_model(options.camera_model)
    if depth_file is None and model_name == name:
        return None
    return name


def camera_model_for(
    options: ConvertOptions,
    model: DepthModel | None,
    depth_file: str | Path | None,
    loaded: DepthModel | None = None,
    *,
    threads: int | None = None,
) -> DepthModel | None:
    """The model that estimates the camera besides the depth, or None where none is needed.

    None without ``options.camera_model``, and when the depth model is that very model (it
    estimates the camera itself, once). Otherwise ``loaded``, or the model loaded now
    (:func:`~depth2mesh.depth.model.load_camera_model`, on the depth model's device and
    backend, with ``threads`` as :func:`~depth2mesh.depth.model.load_model` takes them).

    Raises:
        ValueError: ``loaded`` is another model than the options name, or given without
            ``options.camera_model``.
    """
    from depth2mesh.depth.registry import check_camera_model

    named = None if options.camera_model is None else check_camera_model(options.camera_model)
    if loaded is not None and loaded.spec.name != named:
        raise ValueError(
            f"camera_model is {loaded.spec.name} but options.camera_model is {named}: "
            "name it in the options too"
        )
    name = camera_model_name(options, None if model is None else model.spec.name, depth_file)
    if name is None:
        return None
    if loaded is not None:
        return loaded
    from depth2mesh.depth.model import load_camera_model

    if model is None:
        return load_camera_model(name, threads=threads)
    return load_camera_model(name, device=model.device, backend=model.backend, threads=threads)


def _depth_from_file(
    depth_file: str | Path,
    photo: Photo,
    sizes: list[tuple[int, int]],
    options: ConvertOptions,
) -> DepthMaps:
    loaded = load_depth_input(
        depth_file, photo.size, kind=options.depth_kind, png_scale=options.depth_png_scale
    )
    metric = None
    if options.depth_kind == "metric":
        metric = metric_at_grid(loaded, sizes[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            loaded = np.where(np.isfinite(loaded), 1.0 / loaded, 0.0).astype(np.float32)
    resized = [_resize(loaded, rows, cols, cv2.INTER_AREA) for rows, cols in sizes]
    # a metric file is a sensor's (its in-between pixels are measured); a disparity file is a
    # network's output, whose ramps are settled as the network's own would be
    measured = options.depth_kind == "metric"
    return DepthMaps(disparity=resized[0], picture=resized[-1], metric=metric, measured=measured)


def metric_at_grid(metric: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.float32]:
    """Bring metric depth to the grid's size without mixing measured and unmeasured pixels.

    Args:
        metric: (H, W) float32 metres, NaN where unmeasured.
        size: (rows, cols) of the grid.

    Returns:
        (rows, cols) float32 metres: nearest-neighbour samples (never an average across an
        edge or a hole).
    """
    return _resize(metric, size[0], size[1], cv2.INTER_NEAREST)


def geometry_stage(
    photo: Photo, intrinsics: Intrinsics, maps: DepthMaps, options: ConvertOptions
) -> Geometry:
    """Depth in metres, back-projected points, normals and colours at the grid's size.

    Disparity becomes depth between ``near`` and ``far``, or as the ``depth_at`` pins say
    (metric depth is taken as it is, or corrected by the pins); transparent pixels, unmeasured
    ones and (with ``drop_far``) the far plane are not valid: for a metric model, its
    saturation (:data:`METRIC_SKY_MARGIN` below its ``max_depth``, before any pins).

    Raises:
        ParameterError: Pins that contradict the depth (see
            :func:`~depth2mesh.geometry.scale.disparity_to_depth_pinned`).
    """
    rows, cols = maps.disparity.shape
    pins = None
    if maps.metric is not None:
        depth = maps.metric
        valid = np.isfinite(depth)
        if options.drop_far and maps.max_depth is not None:  # the model's saturation: sky
            valid &= ~far_mask(depth, maps.max_depth, tolerance=METRIC_SKY_MARGIN)
        if options.depth_at:
            depth, pins = metric_depth_pinned(depth, options.depth_at, photo_size=photo.size)
            valid &= np.isfinite(depth)
    else:
        near, far = options.near_far()  # the defaults apply here, where the depth is made
        if options.depth_at:
            depth, pins = disparity_to_depth_pinned(
                maps.disparity, options.depth_at, photo_size=photo.size
            )
            far = pins.far
        else:
            depth = disparity_to_depth(maps.disparity, near=near, far=far)
        valid = ~far_mask(depth, far) if options.drop_far else np.ones(depth.shape, bool)
    if photo.alpha is not None:  # transparent pixels are not part of the scene
        valid &= _resize(photo.alpha, rows, cols, cv2.INTER_AREA) >= 128
    colors = _resize(photo.rgb, rows, cols, cv2.INTER_AREA)
    cuts = moved = None
    if options.edges == "on":  # tear at occlusion edges; put the ramp's pixels onto a side
        radius = edge_radius_px(options.edge_radius, (rows, cols))
        measured = np.where(valid, depth, np.nan)
        cuts = occlusion_cuts(
            measured,
            colors,
            radius=radius,
            step_ratio=options.edge_step,
            strong_ratio=options.edge_strong,
        )
        moved = np.zeros(depth.shape, dtype=bool)
        if not maps.measured:  # a network's depth: put its ramps' pixels onto a side
            # (metric depth files are measured: a sensor's in-between pixels stay exact)
            # only strong steps: a weak one's sides are too close to tell a ramp from noise
            settled, moved = settle_ramps(
                measured, cuts, radius=radius, step_ratio=options.edge_strong
            )
            depth = np.where(moved, settled, depth).astype(np.float32)
    points = depth_to_points(depth, intrinsics.resized(height=rows, width=cols))
    normals = camera_facing_normals(points, valid=valid)
    taken = None
    if maps.normals is not None and len(options.depth_at) < 2:
        # the network's normals where they describe the surface as it is meshed: not where
        # settle_ramps moved a pixel off the ramp the network smoothed across an edge, not
        # where its mask gave none (a far backdrop without drop_far), not after two pins
        # (a shift of inverse depth bends the surface; one pin only scales it)
        usable = valid if moved is None else valid & ~moved
        normals, taken = model_normals(maps.normals, points, usable=usable, fallback=normals)
    source = maps.normals_source if taken is not None else None
    return Geometry(depth, valid, points, normals, colors, cuts, moved, pins, taken, source)


def cloud_arrays(
    geometry: Geometry,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8]]:
    """Choose the points of the point cloud, which are also the Poisson mesh's input.

    Every valid pixel, in row-major order; with ``edges="on"`` the pixels that floated on a
    depth ramp are among them, moved onto the nearer surface (:attr:`Geometry.moved`).

    Returns:
        (N, 3) float32 points (camera frame, metres), (N, 3) float32 unit normals and
        (N, 3) uint8 sRGB colours.
    """
    valid = geometry.valid
    return geometry.points[valid], geometry.normals[valid], geometry.colors[valid]


def point_cloud_stage(geometry: Geometry, paths: dict[str, Path], *, overwrite: bool) -> list[Path]:
    """Write the valid points, their colours and normals as the PLY point cloud (glTF axes)."""
    points, normals, colors = cloud_arrays(geometry)
    ply = encode_ply_points(camera_to_gltf(points), colors, normals=camera_to_gltf(normals))
    return [atomic_write_bytes(paths["points"], ply, overwrite=overwrite)]


@dataclass(frozen=True)
class GridMesh:
    """What the grid mesh stage built and wrote.

    Attributes:
        files: The files written (the GLB, then the OBJ files when asked).
        mesh: The whole grid mesh (camera frame): the seen grid's vertices and faces first,
            then the background layer's.
        texture: The GLB's texture.
        notes: Things the user should know.
        layer_vertices: Vertices of the background layer (the last ones of ``mesh``).
        layer_faces: Its triangles (the last ones of ``mesh``).
        layer_seconds: Seconds spent on the layer: its geometry, its mesh, and the texture with
            its strip (encoded as a whole, which a JPEG photo that fits would not be).
        texture_px: (width, height) of the texture with the layer's strip, texels; None
            without a layer.
        photo_px: (width, height) of the photo's part of it (its top-left corner), texels.
    """

    files: list[Path]
    mesh: MeshArrays
    texture: Texture
    notes: list[str]
    layer_vertices: int = 0
    layer_faces: int = 0
    layer_seconds: float = 0.0
    texture_px: tuple[int, int] | None = None
    photo_px: tuple[int, int] | None = None

    @property
    def photo_part(self) -> tuple[float, float]:
        """The share of the texture's width and height that the photo fills.

        The photo is the texture's top-left part; (1, 1) without a layer's strip.
        """
        if self.texture_px is None or self.photo_px is None:
            return (1.0, 1.0)
        return (
            self.photo_px[0] / self.texture_px[0],
            self.photo_px[1] / self.texture_px[1],
        )


def grid_mesh_stage(
    photo: Photo,
    intrinsics: Intrinsics,
    geometry: Geometry,
    camera: GltfCamera,
    paths: dict[str, Path],
    options: ConvertOptions,
    *,
    prepared: Callable[[], LayerParts | None] | None = None,
) -> GridMesh:
    """Build the UV-textured grid mesh and write its GLB (and the OBJ files when asked).

    With ``options.inpaint == "on"`` the background layer (:func:`prepare_layer`,
    :func:`add_background_layer`) is part of the mesh and its colours a strip of the texture.

    Args:
        photo: The photo.
        intrinsics: The photo's camera.
        geometry: The grid's geometry.
        camera: The glTF camera.
        paths: The output paths.
        options: The conversion's options.
        prepared: Returns the layer :func:`prepare_layer` built for ``options.edge_threshold``
            and the geometry's cuts (for example while other stages ran); None: built here.

    Returns:
        The files written, the mesh (camera frame), the texture, notes and the layer's counts.
    """
    notes: list[str] = []
    points, depth, normals = geometry.points, geometry.depth, geometry.normals
    valid = geometry.valid
    edge_threshold = options.edge_threshold
    grid = grid_mesh(
        points,
        depth,
        normals,
        valid=valid,
        edge_threshold=edge_threshold,
        cut_cells=geometry.cuts,
    )
    cuts = geometry.cuts
    if grid.faces.shape[0] == 0:  # every triangle crosses a depth edge (a grid of a few cells)
        grid = grid_mesh(points, depth, normals, valid=valid, edge_threshold=UNCUT)
        notes.append("every grid triangle crossed a depth edge: the grid mesh is left uncut")
        edge_threshold, cuts = UNCUT, None
    layered = None
    if options.inpaint == "on":
        if prepared is None or edge_threshold != options.edge_threshold:
            parts = prepare_layer(
                photo, intrinsics, geometry, options, edge_threshold=edge_threshold, cuts=cuts
            )
        else:
            parts = prepared()
        layered = None if parts is None else add_background_layer(grid, parts, depth.shape)
    if layered is not None:
        grid, texture, layer_counts = layered
    else:
        layer_counts = (0, 0, 0.0, None, None)
        texture = photo_texture(
            photo,
            texture_size=options.texture_size,
            texture_format=options.texture_format,
            jpeg_quality=options.jpeg_quality,
        )
    # No normals in the grid GLB: at a 1024 grid they would add 9.4 MB, and viewers derive them
    # from the dense triangles (the point cloud PLY keeps its normals).
    glb = encode_glb(
        camera_to_gltf(grid.vertices),
        grid.faces,
        uvs=grid.uvs,
        texture=texture.data,
        texture_mime=texture.mime_type,
        camera=camera,
        name=photo.path.stem,
        generator=f"depth2mesh {__version__}",
        compression=options.glb_compression,
        strips=True,  # the grid's rows: one index per triangle
    )
    written = [atomic_write_bytes(paths["glb"], glb, overwrite=options.overwrite)]
    if "obj" in options.formats and grid.uvs is not None:
        written += _write_obj(grid, texture, paths, overwrite=options.overwrite)
    return GridMesh(written, grid, texture, notes, *layer_counts)


@dataclass(frozen=True)
class LayerParts:
    """The background layer, built and ready to join the grid mesh (:func:`prepare_layer`).

    Attributes:
        mesh: The layer's triangles with texels in the strip.
        rim: The half-pixel rim beyond the grid's border.
        packed: The texture: the photo with the layer's strip below it.
        seconds: Seconds it took to build (the texture's encoding included).
    """

    mesh: LayerMesh
    rim: Skirt
    packed: StripTexture
    seconds: float


def prepare_layer(
    photo: Photo,
    intrinsics: Intrinsics,
    geometry: Geometry,
    options: ConvertOptions,
    *,
    edge_threshold: float,
    cuts: NDArray[np.bool_] | None,
) -> LayerParts | None:
    """Build the background layer of the grid mesh, and the texture with its strip.

    The grid mesh's triangles (:func:`~depth2mesh.geometry.mesh.kept_triangles` for
    ``edge_threshold`` and ``cuts``) give the torn cells; the layer
    (:func:`~depth2mesh.geometry.inpaint.background_layer`, for a viewer moving
    :data:`~depth2mesh.geometry.inpaint.BASELINE_M`) is triangulated in tiles
    (:func:`~depth2mesh.geometry.inpaint.layer_mesh`) whose colours fill slots of a strip
    (:func:`~depth2mesh.geometry.inpaint.layer_strip`) below the photo in one texture
    (:func:`~depth2mesh.exchange.texture.strip_texture`). A rim half a pixel beyond the grid's
    border (:func:`~depth2mesh.geometry.inpaint.border_skirt`, textured by the border pixels)
    makes the photo camera's rays through the border pixels' centres hit the mesh (the grid
    ends exactly on them); it counts with the layer. Needs only the geometry: it may run
    while other stages do.

    Args:
        photo: The photo.
        intrinsics: The photo's camera.
        geometry: The grid's geometry.
        options: The conversion's options.
        edge_threshold: The grid mesh's largest depth ratio within a triangle.
        cuts: The grid mesh's occlusion cuts (or None).

    Returns:
        The layer's parts; None where nothing is torn (the grid stays as it is).
    """
    started = time.perf_counter()
    rows, cols = geometry.depth.shape
    grid_camera = intrinsics.resized(height=rows, width=cols)
    depth = np.where(geometry.valid, geometry.depth, np.nan)
    kept = kept_triangles(
        geometry.depth, valid=geometry.valid, edge_threshold=edge_threshold, cut_cells=cuts
    )
    layer = background_layer(
        depth,
        geometry.colors,
        kept,
        focal_px=0.5 * (grid_camera.fx + grid_camera.fy),
        baseline=BASELINE_M,
    )
    if not layer.layer.any():
        return None
    height, width = photo.rgb.shape[:2]
    scale = min(1.0, options.texture_size / max(height, width))
    texture_width = max(1, round(width * scale)) if scale < 1.0 else width
    slots = max(1, texture_width // SLOT_TEXELS)
    mesh = layer_mesh(
        layer, kept, grid_camera, edge_threshold=options.edge_threshold, slots_per_row=slots
    )
    if mesh.faces.shape[0] == 0:
        return None
    strip = layer_strip(layer.colors, mesh.tiles, slots_per_row=slots)
    packed = strip_texture(
        photo,
        strip,
        texture_size=options.texture_size,
        texture_format=options.texture_format,
        jpeg_quality=options.jpeg_quality,
        margin=1,  # the rim's texture coordinates reach the photo part's last edge
    )
    rim = border_skirt(depth, grid_camera, edge_threshold=options.edge_threshold)
    return LayerParts(mesh, rim, packed, time.perf_counter() - started)


def add_background_layer(
    grid: MeshArrays, parts: LayerParts, grid_shape: tuple[int, int]
) -> tuple[
    MeshArrays,
    Texture,
    tuple[int, int, float, tuple[int, int] | None, tuple[int, int] | None],
]:
    """Add the background layer (and the rim) to the grid mesh.

    The grid's texture coordinates are scaled to the photo's part of the layered texture; the
    layer's address its strip; the rim's continue the grid's, out to the photo part's edges.

    Args:
        grid: The seen grid mesh (with UVs).
        parts: The layer (:func:`prepare_layer`).
        grid_shape: (rows, cols) of the grid.

    Returns:
        The grid mesh with the layer and the rim appended, the texture, and the layer's vertex
        count, triangle count and seconds, the texture's (width, height) and the photo
        part's.
    """
    started = time.perf_counter()
    if grid.uvs is None:
        raise ValueError("the grid mesh needs its UVs for the background layer")
    mesh, rim, packed = parts.mesh, parts.rim, parts.packed
    total_height, total_width = packed.size
    photo_height, photo_width = packed.photo_size
    part = np.array([photo_width / total_width, photo_height / total_height])
    seen_uvs = grid.uvs * part.astype(np.float32)
    layer_uvs = (mesh.texels + np.array([0.0, packed.strip_top])) / np.array(
        [total_width, total_height]
    )
    rows, cols = grid_shape
    # where the grid's own coordinates put them: out to the photo part's edges
    rim_uvs = (rim.pixels[:, ::-1] + 0.5) / np.array([cols, rows]) * part
    added = np.concatenate([mesh.vertices, rim.vertices])
    count = grid.vertices.shape[0]
    normals = None
    if grid.normals is not None:  # the layer faces the camera like the surface it carries on
        toward = -added / np.maximum(np.linalg.norm(added, axis=1, keepdims=True), 1e-12)
        normals = np.concatenate([grid.normals, toward.astype(np.float32)])
    combined = MeshArrays(
        vertices=np.concatenate([grid.vertices, added]),
        faces=np.concatenate(
            [grid.faces, mesh.faces + count, rim.faces + count + len(mesh.vertices)]
        ),
        normals=normals,
        uvs=np.concatenate([seen_uvs, layer_uvs.astype(np.float32), rim_uvs.astype(np.float32)]),
    )
    sizes = ((total_width, total_height), (photo_width, photo_height))
    counts = (len(added), len(mesh.faces) + len(rim.faces))
    seconds = parts.seconds + time.perf_counter() - started
    return combined, packed.texture, (*counts, seconds, *sizes)


def _write_obj(
    grid: MeshArrays, texture: Texture, paths: dict[str, Path], *, overwrite: bool
) -> list[Path]:
    if grid.uvs is None:
        raise ValueError("an OBJ of the grid mesh needs its UVs")
    obj = encode_obj(
        camera_to_gltf(grid.vertices), grid.faces, grid.uvs, material_file=paths["mtl"].name
    )
    return [
        atomic_write_bytes(paths["texture"], texture.data, overwrite=overwrite),
        atomic_write_bytes(paths["mtl"], encode_mtl(paths["texture"].name), overwrite=overwrite),
        atomic_write_bytes(paths["obj"], obj, overwrite=overwrite),
    ]


def poisson_stage(
    photo: Photo,
    intrinsics: Intrinsics,
    geometry: Geometry,
    camera: GltfCamera,
    paths: dict[str, Path],
    options: ConvertOptions,
    texture: Texture,
    photo_part: tuple[float, float] = (1.0, 1.0),
) -> tuple[list[Path], MeshArrays, MeshArrays, list[str]]:
    """Reconstruct the Poisson mesh from the point cloud, trim, texture and colour it, write it.

    The cloud's points, thinned evenly over the grid to ``poisson_points``, go to the screened
    Poisson reconstruction at ``poisson_depth`` (or a depth chosen from the grid's size); the
    surface is trimmed to what the whole cloud supports (:func:`trim_poisson`). In the GLB,
    triangles whose corners the photo saw are textured with the photo (texture coordinates:
    each vertex's projection through the camera), the rest carry vertex colours (the photo's
    colour at the nearest point of the cloud); the PLY has vertex colours everywhere, on the
    same surface with its triangles split finer (:func:`poisson_ply_mesh`). The texture is
    the grid GLB's: ``photo_part`` is the share of its width and height that the photo fills
    (its top-left part; the background layer's strip lies below it).

    Returns:
        The files written, the GLB's mesh (camera frame, with colours, normals and UVs), the
        PLY's mesh and notes for the user.
    """
    rows, cols = geometry.valid.shape
    points, normals = poisson_input(geometry, options.poisson_points)
    depth = options.poisson_depth or auto_poisson_depth((rows, cols))
    raw = poisson_mesh(
        points,
        normals,
        depth=depth,
        density_quantile=options.density_quantile,
    )
    grid_camera = intrinsics.resized(height=rows, width=cols)
    trimmed = trim_poisson(
        raw,
        geometry.points,
        geometry.valid,
        grid_camera,
        support=options.poisson_support,
        face_budget=options.face_budget,
    )
    colored = _poisson_colors(photo, intrinsics, geometry, trimmed, photo_part)
    seen_faces = np.asarray(trimmed.seen[colored.faces].all(axis=1), dtype=bool)
    ply_mesh = poisson_ply_mesh(photo.rgb, intrinsics, colored, trimmed.seen)
    files = _write_poisson(
        colored,
        ply_mesh,
        paths,
        camera,
        photo.path.stem,
        texture=texture,
        colored_faces=~seen_faces,
        compression=options.glb_compression,
        overwrite=options.overwrite,
    )
    notes = []
    if not trimmed.trimmed:
        notes.append(
            "no Poisson triangle lay within --poisson-support of the points (a coarse octree on "
            "a small grid?): the Poisson mesh is left untrimmed"
        )
    return files, colored, ply_mesh, notes


def poisson_input(
    geometry: Geometry, count: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The oriented points the Poisson reconstruction gets: the cloud, thinned evenly.

    Args:
        geometry: The grid's geometry.
        count: Most points (``poisson_points``; :func:`even_sample` thins the valid pixels).

    Returns:
        (N, 3) float32 points (camera frame, metres) and (N, 3) float32 unit normals: the
        point cloud's own (the network's where it gave them, see :class:`Geometry`).
    """
    chosen = even_sample(geometry.valid, count)
    return geometry.points[chosen], geometry.normals[chosen]


def _poisson_colors(
    photo: Photo,
    intrinsics: Intrinsics,
    geometry: Geometry,
    surface: PoissonSurface,
    photo_part: tuple[float, float],
) -> MeshArrays:
    """The surface with UVs (its projection into the texture's photo part) and sRGB colours.

    A vertex the photo saw takes the photo's colour where it projects; another takes the colour
    of its nearest point of the cloud.
    """
    mesh = surface.mesh
    rows, cols = photo.rgb.shape[:2]
    pixels = project_points(mesh.vertices, intrinsics.resized(height=rows, width=cols))
    colors = sample_colors(photo.rgb, pixels)
    hidden = ~surface.seen & (surface.pixel >= 0)
    colors[hidden] = geometry.colors.reshape(-1, 3)[surface.pixel[hidden]]
    scale = np.array([cols, rows], dtype=np.float64)
    uvs = np.clip((np.nan_to_num(pixels) + 0.5) / scale, 0.0, 1.0) * np.array(photo_part)
    uvs = uvs.astype(np.float32)
    return replace(mesh, uvs=uvs, colors=colors)


PLY_SPACING_PX: Final = 2.0
"""The Poisson PLY's triangles are split in four until their median edge spans at most this
many photo pixels (at most :data:`PLY_MAX_SPLITS` times)."""

PLY_MAX_SPLITS: Final = 2
"""Most times the Poisson PLY's triangles are split (each: 4x the triangles)."""


def poisson_ply_mesh(
    rgb: NDArray[np.uint8],
    intrinsics: Intrinsics,
    surface: MeshArrays,
    seen: NDArray[np.bool_],
) -> MeshArrays:
    """The Poisson PLY's mesh: the surface split finer, its new vertices coloured by the photo.

    A PLY carries colour only at its vertices: at the surface's own spacing (several photo
    pixels) it would show the photo blurred and aliased where the GLB shows the photo's
    texture. Each triangle is split in four at its edges' midpoints (the surface does not move)
    until the median edge spans at most :data:`PLY_SPACING_PX` photo pixels; a midpoint between
    two vertices the photo saw takes the photo's colour where it projects (the others the mean
    of their ends').

    Args:
        rgb: (H, W, 3) uint8 sRGB photo.
        intrinsics: The photo's camera (any size: resized to the photo's).
        surface: The coloured Poisson mesh, camera frame (vertices, faces, normals, colours).
        seen: (N,) bool, the vertices the photo saw.

    Returns:
        The split mesh (4, 16 or more times the faces) with sRGB colours and unit normals; its
        first N vertices are the surface's.
    """
    rows, cols = rgb.shape[:2]
    camera = intrinsics.resized(height=rows, width=cols)
    mesh = surface
    pixels = project_points(mesh.vertices, camera)
    for _ in range(PLY_MAX_SPLITS):
        if len(mesh.faces) == 0 or _median_edge_px(pixels, mesh.faces) <= PLY_SPACING_PX:
            break
        count = len(mesh.vertices)
        mesh, edges = split_in_four(mesh)
        if mesh.colors is None:
            raise ValueError("the Poisson surface comes with colours")
        pixels = project_points(mesh.vertices, camera)
        middle_seen = seen[edges].all(axis=1)
        seen = np.concatenate([seen, middle_seen])
        middle = count + np.flatnonzero(middle_seen)
        mesh.colors[middle] = sample_colors(rgb, pixels[middle])
    return mesh


def _median_edge_px(pixels: NDArray[np.float64], faces: NDArray[np.int64]) -> float:
    """The median length of the triangles' edges, given their corners' (N, 2) pixels."""
    sides = pixels[faces[:, [1, 2, 0]]] - pixels[faces]
    return float(np.nanmedian(np.linalg.norm(sides, axis=2)))


def _paths(photo_path: str | Path, out_dir: str | Path, options: ConvertOptions) -> dict[str, Path]:
    return output_paths(
        out_dir,
        Path(photo_path).stem,
        options.mesh,
        formats=options.formats,
        texture_format=options.texture_format,
    )


def _prepare_out_dir(out_dir: str | Path, paths: dict[str, Path], *, overwrite: bool) -> None:
    refuse_existing(paths.values(), overwrite=overwrite)
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the output folder {out_dir}: {error.strerror}") from error


def _counts(geometry: Geometry, grid: MeshArrays) -> dict[str, int]:
    rows, cols = geometry.valid.shape
    return {
        "grid_rows": rows,
        "grid_cols": cols,
        "points": int(geometry.valid.sum()),
        "grid_vertices": int(grid.vertices.shape[0]),
        "grid_faces": int(grid.faces.shape[0]),
        **({} if geometry.moved is None else {"ramp_points_moved": int(geometry.moved.sum())}),
    }


def _intrinsics(photo: Photo, camera: CameraOptions) -> Intrinsics:
    height, width = photo.size
    return resolve_intrinsics(
        width, height, exif_focal_35mm=photo.focal_length_35mm, **asdict(camera)
    )


def _resize(image: NDArray[Any], rows: int, cols: int, interpolation: int) -> NDArray[Any]:
    if image.shape[:2] == (rows, cols):
        return image
    return cv2.resize(image, (cols, rows), interpolation=interpolation)


def _gltf_camera(intrinsics: Intrinsics, depths: NDArray[np.float32]) -> GltfCamera:
    finite = depths[np.isfinite(depths)]
    nearest = float(finite.min()) if finite.size else 0.1
    farthest = float(finite.max()) if finite.size else 100.0
    return GltfCamera(
        yfov=intrinsics.yfov,
        aspect_ratio=intrinsics.aspect_ratio,
        znear=max(0.01, 0.5 * nearest),
        zfar=max(2.0 * farthest, 0.02),
    )


def _write_poisson(
    surface: MeshArrays,
    ply_mesh: MeshArrays,
    paths: dict[str, Path],
    camera: GltfCamera,
    name: str,
    *,
    texture: Texture,
    colored_faces: NDArray[np.bool_],
    compression: GlbCompression,
    overwrite: bool,
) -> list[Path]:
    if surface.colors is None or surface.normals is None or surface.uvs is None:
        raise ValueError("a Poisson mesh comes with colours, normals and UVs")
    glb = encode_glb(
        camera_to_gltf(surface.vertices),
        surface.faces,
        normals=camera_to_gltf(surface.normals),
        uvs=surface.uvs,
        colors_linear=srgb_to_linear(surface.colors),
        texture=texture.data,
        texture_mime=texture.mime_type,
        colored_faces=colored_faces,
        camera=camera,
        name=f"{name} (Poisson)",
        generator=f"depth2mesh {__version__}",
        compression=compression,
    )
    ply = encode_ply_mesh(
        camera_to_gltf(ply_mesh.vertices),
        ply_mesh.faces,
        colors=ply_mesh.colors,
        normals=None if ply_mesh.normals is None else camera_to_gltf(ply_mesh.normals),
    )
    return [
        atomic_write_bytes(paths["poisson_glb"], glb, overwrite=overwrite),
        atomic_write_bytes(paths["poisson_ply"], ply, overwrite=overwrite),
    ]


def _edge_settings(options: ConvertOptions) -> dict[str, Any]:
    """The occlusion-edge settings, as the sidecar records them."""
    if options.edges == "off":
        return {"mode": "off"}
    return {
        "mode": "on",
        "radius_of_long_side": options.edge_radius,
        "step_ratio": options.edge_step,
        "strong_ratio": options.edge_strong,
    }


ESTIMATED_NORMALS: Final = "estimated from the points"
"""The normals' source in the sidecar where no network gave them."""


def normals_record(geometry: Geometry) -> dict[str, Any]:
    """What the sidecar says about the normals of the point cloud (and the Poisson input).

    Returns:
        ``{"source", "from_model", "from_points"}``: the ``--model`` name of the network
        whose normals they are (MoGe-2), or :data:`ESTIMATED_NORMALS`; how many of the
        cloud's points have the network's normal, and how many one estimated from the
        points (where the network gave none, and pixels the occlusion edges moved).
    """
    points = int(geometry.valid.sum())
    if geometry.model_normals is None or geometry.normals_source is None:
        return {"source": ESTIMATED_NORMALS, "from_model": 0, "from_points": points}
    taken = int((geometry.model_normals & geometry.valid).sum())
    return {
        "source": geometry.normals_source,
        "from_model": taken,
        "from_points": points - taken,
    }


def _inpaint_record(options: ConvertOptions, built: GridMesh) -> dict[str, Any]:
    """The background layer, as the sidecar records it (guessed, not seen)."""
    if options.inpaint == "off":
        return {"mode": "off"}
    return {
        "mode": "on",
        "guessed": True,
        "note": "the grid GLB's background layer behind torn edges is guessed (the far side "
        "carried on, its colours from the far side); the points PLY and the Poisson mesh hold "
        "only what the photo saw",
        "baseline_m": BASELINE_M,
        "vertices": built.layer_vertices,
        "triangles": built.layer_faces,
        "seconds": round(built.layer_seconds, 4),
        "texture_px": built.texture_px,
        "photo_px": built.photo_px,
    }


def glb_record(
    compression: GlbCompression, meshes: dict[str, tuple[NDArray[np.float32], Path]]
) -> dict[str, Any]:
    """What the sidecar says about the GLBs' storage: compression, extension, error bounds.

    Args:
        compression: The GLBs' compression.
        meshes: By name ("grid", "poisson"): the mesh's (N, 3) float32 vertices in the OpenCV
            camera frame (metres), and its GLB (only the JSON chunk is read).

    Returns:
        ``{"compression", "quantized", "extension", "meshes": {name: {...}}}``: the extension
        the GLBs require (None for "none"), and per mesh: "depth_range_m" (its extent along
        z), "position_error_bound_m" (the largest per-axis position error the storage adds;
        0 when the positions stayed float32), "bounds_m" (min and max corners in glTF axes,
        before quantisation), "primitives" and "vertices" (what a glTF reader gets: vertices
        shared by two primitives count twice; Draco's decoded count), all lengths in metres.
    """
    extension = {"none": None, "quantized": QUANTIZATION, "draco": DRACO}[compression]
    record: dict[str, Any] = {
        "compression": compression,
        "quantized": compression != "none",
        "extension": extension,
        "meshes": {},
    }
    for name, (vertices, path) in meshes.items():
        low, high = bounding_box(vertices)  # camera frame; glTF's is (x, -y, -z)
        bound = position_error_bound(vertices, compression)
        document = read_glb_json(path)
        primitives = document["meshes"][0]["primitives"]
        accessors = document["accessors"]
        flip = np.array([1.0, -1.0, -1.0])
        corners = np.sort(np.stack([low * flip, high * flip]), axis=0)
        record["meshes"][name] = {
            "depth_range_m": round(float(high[2] - low[2]), 6),
            "position_error_bound_m": bound,
            "bounds_m": corners.tolist(),
            "primitives": len(primitives),
            "vertices": sum(accessors[p["attributes"]["POSITION"]]["count"] for p in primitives),
        }
    return record


def _sidecar(
    result: ConvertResult,
    photo: Photo,
    options: ConvertOptions,
    model: DepthModel | None,
    depth_file: str | Path | None,
    written: list[Path],
    texture: Texture,
    picture: NDArray[np.float32],
    glb: dict[str, Any],
    pins: PinFit | None = None,
    inpaint: dict[str, Any] | None = None,
    normals: dict[str, Any] | None = None,
    camera_model: DepthModel | None = None,
) -> bytes:
    """The sidecar JSON (UTF-8): what was read, how, and what was written and measured."""
    height, width = photo.size
    if depth_file is not None:
        depth_source: dict[str, Any] = {"source": "file", "path": str(depth_file)}
        depth_source["kind"] = options.depth_kind
    elif model is not None and model.spec.output == "metric":
        depth_source = {
            "source": model.spec.title,
            "kind": "metric",
            "max_depth_m": model.spec.max_depth,
            "drop_far": options.drop_far,
        }
        if options.drop_far and model.spec.max_depth is not None:
            depth_source["drop_far_from_m"] = metric_sky_depth(model.spec.max_depth)
    else:
        title = model.spec.title if model is not None else "MiDaS v2.1 small"
        depth_source = {"source": title, "kind": "disparity"}
    if pins is not None:
        depth_source["depth_at"] = pins.to_dict()
        if depth_source["kind"] == "disparity":
            depth_source.update(drop_far=options.drop_far)
    elif depth_source["kind"] == "disparity":
        near, far = options.near_far()
        depth_source.update(near_m=near, far_m=far, drop_far=options.drop_far)
    sidecar = {
        "generator": f"depth2mesh {__version__}",
        "photo": {
            "path": str(photo.path),
            "width": width,
            "height": height,
            "exif_orientation": photo.orientation,
            "exif_focal_length_35mm": photo.focal_length_35mm,
            "decoded_width": int(photo.rgb.shape[1]),
            "decoded_height": int(photo.rgb.shape[0]),
        },
        "intrinsics": result.intrinsics.to_dict(),
        "camera_model": None if camera_model is None else camera_model.describe(),
        "depth": depth_source,
        "model": None if model is None else model.describe(),
        "axes": "glTF: x right, y up, z towards the viewer (camera looks down -z), metres",
        "mesh": options.mesh,
        "edge_threshold": options.edge_threshold,
        "edges": _edge_settings(options),
        "inpaint": inpaint or {"mode": options.inpaint},
        "counts": result.counts,
        "normals": normals,
        "texture": {
            "mime_type": texture.mime_type,
            "source": texture.source,
            "quality": texture.quality,
        },
        "glb": glb,
        "depth_pictures": {"width": picture.shape[1], "height": picture.shape[0]},
        "files": [path.name for path in written],
        "timings_s": result.timings_s,
    }
    return json.dumps(sidecar, indent=2).encode("utf-8")
