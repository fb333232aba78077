# SPDX-License-Identifier: GPL-3.0-or-later
"""What a depth2mesh result is, without Blender: sidecar JSON, PLY headers, camera maths.

Nothing here imports ``bpy``, so these functions run (and are tested) in any Python.

Facts about depth2mesh's files that this module relies on:

- ``<stem>.glb`` is the textured grid mesh, ``<stem>_points.ply`` the point cloud,
  ``<stem>_poisson.glb`` / ``<stem>_poisson.ply`` the Poisson mesh, ``<stem>.json`` the sidecar.
- The sidecar's ``intrinsics`` hold ``fx, fy, cx, cy`` (pixels, pixel centres at integer
  coordinates, x right, y down), ``width, height`` (pixels) and ``hfov_deg, vfov_deg``.
- Geometry uses glTF axes: Y up, the camera at the origin looking down -Z, metres.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

RESULT_SUFFIXES = ("_points", "_poisson")
"""File-name endings (before the extension) that belong to the result ``<stem>``."""

SENSOR_WIDTH_MM = 36.0
"""Sensor width given to Blender cameras; only the ratio ``lens / sensor`` matters."""


class ResultError(Exception):
    """A file is not a depth2mesh result that can be imported (message: one line)."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the photo, in pixels (x right, y down)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


@dataclass(frozen=True)
class CameraSettings:
    """Blender camera and render settings that reproduce a photo's framing.

    ``sensor_fit`` is ``'AUTO'``: ``sensor_width`` then spans the longer side of the render,
    for landscape and portrait photos alike. Shifts are fractions of the longer side.
    """

    lens: float
    sensor_width: float
    sensor_fit: str
    shift_x: float
    shift_y: float
    resolution_x: int
    resolution_y: int


@dataclass(frozen=True)
class PlyInfo:
    """What a PLY header says: its format and how many elements of each kind."""

    format: str
    counts: dict[str, int]
    vertex_properties: tuple[str, ...]

    @property
    def is_point_cloud(self) -> bool:
        """True when the file has vertices and no faces."""
        return self.counts.get("face", 0) == 0


def sidecar_path(path: str) -> str | None:
    """Return the ``<stem>.json`` sidecar beside a result file, or None when there is none.

    Args:
        path: A ``.glb`` or ``.ply`` file written by ``depth2mesh convert``.

    Returns:
        The sidecar's path, or None.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    candidates = [stem]
    for suffix in RESULT_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            candidates.append(stem[: -len(suffix)])
    for candidate in candidates:
        json_path = os.path.join(folder, candidate + ".json")
        if os.path.isfile(json_path):
            return json_path
    return None


def read_sidecar(path: str) -> dict:
    """Read a sidecar JSON file.

    Raises:
        ResultError: The file is unreadable, not JSON, or not an object.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultError(f"{path}: cannot read the sidecar: {error}") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def sidecar_intrinsics(data: dict) -> Intrinsics:
    """Return the photo's intrinsics from a sidecar's ``intrinsics`` object.

    Raises:
        ResultError: A field is missing, not a number, or out of range.
    """
    block = data.get("intrinsics")
    if not isinstance(block, dict):
        raise ResultError("the sidecar has no 'intrinsics' object")
    values = {}
    for key in ("fx", "fy", "cx", "cy", "width", "height"):
        value = block.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(f"the sidecar's intrinsics.{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ResultError(f"the sidecar's intrinsics.{key} must be finite, got {value!r}")
        values[key] = value
    for key in ("fx", "fy", "width", "height"):
        if values[key] <= 0:
            raise ResultError(f"the sidecar's intrinsics.{key} must be > 0, got {values[key]}")
    return Intrinsics(
        fx=float(values["fx"]),
        fy=float(values["fy"]),
        cx=float(values["cx"]),
        cy=float(values["cy"]),
        width=round(values["width"]),
        height=round(values["height"]),
    )


def camera_settings(intrinsics: Intrinsics) -> CameraSettings:
    """Blender camera settings whose view matches the photo's pinhole camera.

    The field of view along the photo's longer side is exact (``fx`` for landscape, ``fy``
    for portrait); the shorter side follows from the aspect ratio (square pixels). The
    principal point becomes a lens shift, so a vertex seen at pixel ``(u, v)`` in the photo
    is seen at the same place in the camera view.

    Args:
        intrinsics: The photo's intrinsics.

    Returns:
        The lens (mm), sensor width (mm), fit, shifts and render resolution.
    """
    width, height = intrinsics.width, intrinsics.height
    longer = max(width, height)
    focal = intrinsics.fx if width >= height else intrinsics.fy
    return CameraSettings(
        lens=SENSOR_WIDTH_MM * focal / longer,
        sensor_width=SENSOR_WIDTH_MM,
        sensor_fit="AUTO",
        # Pixel centres sit at integer coordinates, so the image centre is ((W-1)/2, (H-1)/2).
        # Blender's shift is in units of the longer side; its y points up, the photo's down.
        shift_x=((width - 1) / 2.0 - intrinsics.cx) / longer,
        shift_y=(intrinsics.cy - (height - 1) / 2.0) / longer,
        resolution_x=width,
        resolution_y=height,
    )


PROPERTY_PREFIX = "depth2mesh_"
"""Custom properties that :func:`result_properties` puts on imported objects start with this."""


def result_properties(data: dict | None, json_path: str | None) -> dict[str, str | float]:
    """Custom properties for a result's imported objects: where it came from, which model.

    Args:
        data: The sidecar (None when there is none: no properties).
        json_path: The sidecar's path.

    Returns:
        ``depth2mesh_sidecar`` (its path), ``depth2mesh_depth_source`` ("network" or
        "file"), ``depth2mesh_depth_kind`` ("disparity" or "metric") and, for a network's
        result, ``depth2mesh_model`` (the ``--model`` name), ``depth2mesh_model_title``,
        ``depth2mesh_input_size`` and, for a metric model, ``depth2mesh_max_depth_m``.
        Values that the sidecar lacks or that are of another type are left out.
    """
    if not isinstance(data, dict) or json_path is None:
        return {}
    found: dict[str, str | float] = {PROPERTY_PREFIX + "sidecar": json_path}
    depth = data.get("depth")
    if isinstance(depth, dict):
        found[PROPERTY_PREFIX + "depth_source"] = (
            "file" if depth.get("source") == "file" else "network"
        )
        if isinstance(depth.get("kind"), str):
            found[PROPERTY_PREFIX + "depth_kind"] = depth["kind"]
    model = data.get("model")
    if isinstance(model, dict):
        for key, name, kind in (
            ("model", "model", str),
            ("name", "model_title", str),
            ("input_size", "input_size", int),
            ("max_depth_m", "max_depth_m", float),
        ):
            value = model.get(key)
            if isinstance(value, kind) or (kind is float and isinstance(value, int)):
                found[PROPERTY_PREFIX + name] = float(value) if kind is float else value
    return found


def point_radius_per_metre(data: dict | None, point_count: int) -> float:
    """Radius of a rendered point per metre of distance from the camera.

    Neighbouring points of a depth2mesh cloud are one grid cell apart, about
    ``distance * (width / grid_cols) / fx`` metres; the radius is 0.6 of that, so the
    points just overlap and the cloud looks closed from the photo's camera.

    Args:
        data: The sidecar (None when there is none: a 60 degree, 4:3 grid is assumed).
        point_count: Number of points in the cloud.

    Returns:
        Radius in metres per metre of distance, > 0.
    """
    try:
        if data is None:
            raise ResultError("no sidecar")
        intrinsics = sidecar_intrinsics(data)
        counts = data.get("counts") or {}
        cols = counts.get("grid_cols") or intrinsics.width
        cell = (intrinsics.width / float(cols)) / intrinsics.fx
    except (ResultError, TypeError, ValueError, ZeroDivisionError):
        cols = max(1.0, math.sqrt(max(point_count, 1) * 4.0 / 3.0))
        cell = 2.0 * math.tan(math.radians(30.0)) / cols
    return 0.6 * cell


def read_ply_header(path: str) -> PlyInfo:
    """Read the header of a PLY file.

    Raises:
        ResultError: The file is unreadable or its header is not a PLY header.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError as error:
        raise ResultError(f"{path}: cannot read: {error.strerror or error}") from None
    if not head.startswith(b"ply"):
        raise ResultError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    if end < 0:
        raise ResultError(f"{path}: PLY header has no 'end_header' in its first 64 KiB")
    text = head[:end].decode("ascii", errors="replace")
    fmt = ""
    counts: dict[str, int] = {}
    vertex_properties: list[str] = []
    element = ""
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            element = words[1]
            try:
                counts[element] = int(words[2])
            except ValueError:
                raise ResultError(f"{path}: bad PLY element line {line!r}") from None
        elif words[0] == "property" and element == "vertex":
            vertex_properties.append(words[-1])
    if "vertex" not in counts:
        raise ResultError(f"{path}: PLY header has no vertex element")
    return PlyInfo(format=fmt, counts=counts, vertex_properties=tuple(vertex_properties))
