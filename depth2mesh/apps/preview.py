"""The Open3D preview window: look at a result through the camera that took the photo.

``show(path)`` opens an interactive window for a PLY point cloud or a GLB/PLY mesh written by
:func:`depth2mesh.pipeline.convert.convert_photo`; ``screenshot=...`` renders the same first view to
a PNG and closes. Open3D objects never leave this module.

The first view is the photo's own camera: its intrinsics come from the ``<stem>.json`` sidecar
beside the file, else from the GLB's camera, else the default horizontal field of view
(:data:`~depth2mesh.geometry.camera.DEFAULT_FOV_DEG`). Files
are in glTF axes (Y up, the camera at the origin looking down -Z), so the camera's extrinsic
matrix is ``diag(1, -1, -1, 1)``: glTF to the OpenCV camera frame that Open3D's pinhole camera
uses.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import Depth2MeshError, InputError, OutputError
from depth2mesh.geometry.camera import DEFAULT_FOV_DEG, Intrinsics
from depth2mesh.pipeline.convert import sidecar_path

WINDOW_LONG_SIDE: Final = 1024
"""The preview window's long side, pixels; the short side follows the photo's aspect."""

BACKGROUND: Final = (0.08, 0.08, 0.09)
"""Near-black background: the photo's colours stand out against it."""


class DisplayError(Depth2MeshError):
    """No display is available for the preview window."""


@dataclass(frozen=True)
class ViewCamera:
    """A pinhole view for the preview window.

    Attributes:
        width: Window width, pixels.
        height: Window height, pixels.
        fx: Focal length x, window pixels.
        fy: Focal length y, window pixels.
        cx: Principal point x, window pixels.
        cy: Principal point y, window pixels.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


def sidecar_for(path: Path) -> Path:
    """Return the ``<stem>.json`` sidecar that belongs to an output file (it may not exist).

    The names come from :func:`depth2mesh.pipeline.convert.output_paths` (see
    :func:`depth2mesh.pipeline.convert.sidecar_path`).
    """
    return sidecar_path(path)


def view_camera(path: Path, *, long_side: int = WINDOW_LONG_SIDE) -> ViewCamera:
    """Work out the photo's camera for a result file, scaled to a window.

    Args:
        path: A depth2mesh GLB or PLY.
        long_side: The window's long side, pixels.

    Returns:
        The view: the sidecar's intrinsics, else the GLB camera's, else
        :data:`~depth2mesh.geometry.camera.DEFAULT_FOV_DEG` horizontal on a 4:3 window.
    """
    sidecar = sidecar_for(path)
    if sidecar.is_file():
        photo = Intrinsics.from_dict(json.loads(sidecar.read_text())["intrinsics"])
        scale = long_side / max(photo.width, photo.height)
        # the window's own rounded size: the focal lengths scale by its true ratios
        view = photo.resized(width=round(photo.width * scale), height=round(photo.height * scale))
        return ViewCamera(view.width, view.height, view.fx, view.fy, view.cx, view.cy)
    yfov, aspect = _glb_camera(path) if path.suffix.lower() == ".glb" else (None, 4 / 3)
    width = long_side if aspect >= 1 else round(long_side * aspect)
    height = round(width / aspect)
    if yfov is None:
        focal = width / (2 * math.tan(math.radians(DEFAULT_FOV_DEG) / 2))
    else:
        focal = height / (2 * math.tan(yfov / 2))
    return ViewCamera(width, height, focal, focal, (width - 1) / 2, (height - 1) / 2)


def _glb_camera(path: Path) -> tuple[float | None, float]:
    from depth2mesh.exchange.gltf import decode_glb_json

    try:
        document = decode_glb_json(path.read_bytes())
        perspective = document["cameras"][0]["perspective"]
        return float(perspective["yfov"]), float(perspective.get("aspectRatio", 4 / 3))
    except (ValueError, KeyError, IndexError, OSError):
        return None, 4 / 3


def check_display() -> None:
    """Raise :class:`DisplayError` when no window can be opened (Linux without X or Wayland)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise DisplayError(
            "no display to open the preview window on (DISPLAY is not set): run on a desktop, "
            "or under a virtual screen with `xvfb-run -a depth2mesh view ...`"
        )


def ensure_runtime_dir(environ: MutableMapping[str, str] = os.environ) -> str:
    """Give the window libraries a private ``XDG_RUNTIME_DIR`` when the session has none.

    Under a virtual screen (``xvfb-run``, a container) the variable is often unset, and the
    windowing library then prints ``error: XDG_RUNTIME_DIR is invalid or not set`` on every
    successful run. A usable one (a folder of this user's, mode 0700) is kept; otherwise a
    new private folder is made and deleted when the process ends.

    Args:
        environ: The environment to read and set (``os.environ``).

    Returns:
        The runtime folder in use.
    """
    current = environ.get("XDG_RUNTIME_DIR", "")
    try:
        info = os.stat(current) if current else None
    except OSError:
        info = None
    if (
        info is not None
        and stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) == 0o700
    ):
        return current
    folder = tempfile.mkdtemp(prefix="depth2mesh-runtime-")  # mode 0700
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    environ["XDG_RUNTIME_DIR"] = folder
    return folder


def show(
    path: str | Path,
    *,
    screenshot: str | Path | None = None,
    point_size: float | None = None,
    long_side: int = WINDOW_LONG_SIDE,
    orbit_deg: tuple[float, float] = (0.0, 0.0),
) -> Path | None:
    """Open the preview window for a result file, or render its first view to a PNG.

    Args:
        path: A PLY point cloud (``<stem>_points.ply``) or a GLB/PLY mesh.
        screenshot: Write the first view to this PNG and close instead of waiting for the user
            (its folder is made if missing).
        point_size: Point size of point clouds, window pixels; None: large enough that the
            cloud, seen through the photo's camera, has no gaps (window size / grid size).
        long_side: Window long side, pixels.
        orbit_deg: Start this many degrees (yaw to the right, pitch upwards) away from the
            photo's camera, orbiting around the scene's median point.

    Returns:
        The screenshot path, or None after an interactive session.

    Raises:
        InputError: The file is missing or holds no geometry.
        OutputError: The screenshot's folder cannot be made.
        DisplayError: No display.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if path.suffix.lower() not in (".ply", ".glb", ".gltf"):
        raise InputError(f"{path} is not a .ply or .glb file")
    check_display()
    if screenshot is not None:
        folder = Path(screenshot).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"cannot create the screenshot's folder {folder}: {error.strerror or error}"
            ) from None
    if sys.platform.startswith("linux"):
        ensure_runtime_dir()
    import open3d as o3d  # deferred: a slow import only the preview needs

    geometries = _read_geometry(o3d, path)
    camera = view_camera(path, long_side=long_side)
    window = o3d.visualization.Visualizer()
    title = f"depth2mesh: {path.name} (drag to orbit, scroll to zoom, Q to close)"
    if not window.create_window(
        window_name=title, width=camera.width, height=camera.height, visible=True
    ):
        raise DisplayError(
            "Open3D could not open a window (no usable OpenGL display): run on a desktop or "
            "under `xvfb-run -a`"
        )
    try:
        for geometry in geometries:
            window.add_geometry(geometry)
        options = window.get_render_option()
        options.background_color = np.asarray(BACKGROUND)
        options.point_size = float(point_size or _gapless_point_size(path, camera))
        options.light_on = False  # the colours are the photo's: show them as they are
        options.mesh_show_back_face = True
        pivot = np.median(np.asarray(_positions(geometries[0])), axis=0)
        _look_through(o3d, window, camera, orbit_extrinsic(pivot, *orbit_deg))
        if screenshot is None:
            window.run()
            return None
        window.poll_events()
        window.update_renderer()
        image = np.asarray(window.capture_screen_float_buffer(do_render=True))
    finally:
        window.destroy_window()
    from depth2mesh.exchange.pictures import write_png

    pixels: NDArray[np.uint8] = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return write_png(Path(screenshot), pixels, overwrite=True)


def _gapless_point_size(path: Path, camera: ViewCamera) -> float:
    """Window pixels per grid vertex (from the sidecar's counts), plus one; 2 without it."""
    sidecar = sidecar_for(path)
    try:
        counts = json.loads(sidecar.read_text())["counts"]
        return float(math.ceil(camera.width / int(counts["grid_cols"])) + 1)
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return 2.0


def _read_geometry(o3d: Any, path: Path) -> list[Any]:
    """Read a point cloud (PLY without faces) or a mesh (with its texture) with Open3D.

    Returns:
        The Open3D geometries to show (a GLB may give two meshes, see :func:`_glb_geometry`).
    """
    if path.suffix.lower() == ".ply" and not _ply_has_faces(path):
        cloud = o3d.io.read_point_cloud(str(path))
        if not cloud.has_points():
            raise InputError(f"{path} holds no points")
        return [cloud]
    if path.suffix.lower() == ".glb":
        return _glb_geometry(o3d, path)
    mesh = o3d.io.read_triangle_mesh(str(path), True)
    if not mesh.has_triangles():
        raise InputError(f"{path} holds no triangles")
    return [mesh]


def _glb_geometry(o3d: Any, path: Path) -> list[Any]:
    """Read a GLB with depth2mesh's own reader and build the Open3D meshes it shows.

    Open3D's glTF reader does not dequantise ``KHR_mesh_quantization`` accessors (nor decode
    Draco), so the preview reads every GLB itself
    (:func:`depth2mesh.exchange.gltf_read.read_glb_mesh`): scene coordinates, per-corner texture
    coordinates and the texture as Open3D's reader stores them (v up, rows bottom first), the
    normals as they are. ``COLOR_0`` is linear in glTF and Open3D shows colours as they are
    (sRGB on screen): they are encoded to sRGB first, so that a GLB looks as its PLY does. A
    textured GLB whose second material draws some triangles with vertex colours (a Poisson
    mesh: what the photo did not see) becomes two meshes, the textured one and the coloured one.
    """
    from depth2mesh.exchange.gltf_read import read_glb_mesh

    try:
        mesh = read_glb_mesh(path.read_bytes())
    except (OSError, ValueError) as error:
        raise InputError(f"{path} is not a GLB that depth2mesh can read: {error}") from None
    if not len(mesh.faces):
        raise InputError(f"{path} holds no triangles")
    materials = mesh.face_materials
    if materials is None:
        materials = np.zeros(len(mesh.faces), np.int64)
    textured = mesh.uvs is not None and mesh.texture is not None
    parts = [materials == 0, materials != 0] if textured else [np.ones(len(mesh.faces), bool)]
    meshes = []
    for index, chosen in enumerate(parts):
        if chosen.any():
            meshes.append(_open3d_mesh(o3d, path, mesh, chosen, texture=textured and index == 0))
    return meshes


def _open3d_mesh(
    o3d: Any, path: Path, mesh: Any, chosen: NDArray[np.bool_], *, texture: bool
) -> Any:
    """The Open3D mesh of the ``chosen`` faces: textured, or with sRGB vertex colours."""
    from depth2mesh.geometry.points import linear_to_srgb

    faces = mesh.faces[chosen]
    result = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.positions.astype(np.float64)),
        o3d.utility.Vector3iVector(faces.astype(np.int32)),
    )
    if mesh.normals is not None:
        result.vertex_normals = o3d.utility.Vector3dVector(mesh.normals.astype(np.float64))
    if mesh.colors_linear is not None and not texture:
        srgb = linear_to_srgb(mesh.colors_linear[:, :3]).astype(np.float64) / 255.0
        result.vertex_colors = o3d.utility.Vector3dVector(srgb)
    if texture:
        import cv2

        decoded = cv2.imdecode(np.frombuffer(mesh.texture, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise InputError(f"{path}: its texture does not decode")
        image = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        # as Open3D's own reader stores them: v up, the image bottom row first
        corners = mesh.uvs[faces.reshape(-1)].astype(np.float64)
        corners[:, 1] = 1.0 - corners[:, 1]
        result.triangle_uvs = o3d.utility.Vector2dVector(corners)
        result.textures = [o3d.geometry.Image(np.ascontiguousarray(image[::-1]))]
        result.triangle_material_ids = o3d.utility.IntVector(np.zeros(len(faces), np.int32))
    return result


def _ply_has_faces(path: Path) -> bool:
    with open(path, "rb") as stream:
        header = stream.read(4096).split(b"end_header", 1)[0]
    for line in header.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"element" and parts[1] == b"face":
            return int(parts[2]) > 0
    return False


def _positions(geometry: Any) -> Any:
    return geometry.points if hasattr(geometry, "points") else geometry.vertices


def orbit_extrinsic(
    pivot: NDArray[np.floating], yaw_deg: float = 0.0, pitch_deg: float = 0.0
) -> NDArray[np.float64]:
    """The view matrix of the photo's camera orbited around ``pivot``.

    Args:
        pivot: (3,) float, the point to orbit around, glTF axes, metres.
        yaw_deg: Degrees to move to the right around the up axis (+Y).
        pitch_deg: Degrees to move upwards.

    Returns:
        (4, 4) float64 world (glTF axes) to camera (OpenCV frame) transform; with no orbit
        ``diag(1, -1, -1, 1)``: the camera at the origin looking down -Z.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    turn = np.array(
        [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]
    )
    tilt = np.array(
        [[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]]
    )
    rotation = turn @ tilt
    centre = np.asarray(pivot, dtype=np.float64)
    pose = np.eye(4)  # camera to world: the origin camera (flip to glTF) moved around the pivot
    pose[:3, :3] = rotation @ np.diag([1.0, -1.0, -1.0])
    pose[:3, 3] = centre - rotation @ centre
    view: NDArray[np.float64] = np.linalg.inv(pose).astype(np.float64)
    return view


def _look_through(
    o3d: Any, window: Any, camera: ViewCamera, extrinsic: NDArray[np.float64]
) -> None:
    """Set the window's view to the photo's camera (glTF axes -> OpenCV camera frame)."""
    parameters = o3d.camera.PinholeCameraParameters()
    parameters.intrinsic = o3d.camera.PinholeCameraIntrinsic(
        camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy
    )
    parameters.extrinsic = extrinsic
    control = window.get_view_control()
    control.convert_from_pinhole_camera_parameters(parameters, allow_arbitrary=True)
    control.set_constant_z_near(0.01)
