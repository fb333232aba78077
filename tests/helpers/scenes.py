"""Ground truth for looking around a result: ray-cast rooms, a GLB renderer, side cameras, metrics.

A test builds a room, takes its "photo" (the exact depth and the colours through a pinhole
camera), converts it with depth2mesh, renders the GLB from other cameras and compares every
pixel with the room itself. Nothing here imports the pipeline: only
:func:`depth2mesh.exchange.gltf_read.read_glb_mesh` to read a GLB back.

Conventions: the WORLD frame is the photo camera's OpenCV frame (x right, y down, z forward,
metres; the photo camera sits at the origin looking down +z). Pixel centres are at integer
(u, v). Images are (H, W, 3) uint8 sRGB; depth is metres along a camera's own +z axis. GLBs
are in glTF axes; :func:`render_glb` turns them back with ``(x, -y, -z)``.

API:

- :class:`Camera` (``fx, fy, cx, cy, width, height`` in pixels, ``rotation`` (3, 3) float64
  camera-to-world, ``centre`` (3,) float64 metres): :func:`photo_camera` makes the photo's
  camera from a horizontal field of view; :func:`look_at` puts a camera at a point turned to a
  target; :func:`side_cameras` gives the cameras ``offset`` metres (default 0.3) to the right
  and to the left of a camera, turned to a target; :meth:`Camera.rays` gives the rays of its
  pixels.
- :class:`Room` (walls of a box, spheres in front; colours fixed to the world: a checker on
  each wall, latitude stripes on each sphere) with :meth:`Room.cast` (any rays) and
  :func:`render_room` (a camera) -> :class:`View` (``depth`` (H, W) float64 metres along the
  camera's z, ``rgb`` (H, W, 3) uint8, ``points`` (H, W, 3) float64 world metres, ``covered``
  (H, W) bool, ``surface`` (H, W) int: 0..5 walls, 6.. spheres, -1 nothing).
  :data:`ROOMS` holds a few rooms; :meth:`Room.middle` is the point the side cameras look at.
- :func:`render_glb` (GLB bytes, camera) -> :class:`View` of the mesh (``surface`` holds the
  triangle index): texture sampled bilinearly through the texture coordinates, else the vertex
  colours (linear, turned to sRGB), else grey 255. :func:`render_mesh` does it for arrays.
- :func:`hidden_pixels` (room, photo camera, view): the pixels of a view whose true surface
  point falls inside the photo but lies more than 2 % behind what the photo saw along the
  same ray (the photo camera's ray cast in the room), and :func:`seen_pixels` (inside the
  photo and not behind it).
- :func:`compare` (truth view, rendered view, mask) -> :class:`Score`: covered share, share at
  the true depth (within 5 %), mean colour error (mean absolute difference over the three
  channels, 0..255, on the covered pixels of the mask).

Typical test::

    room = ROOMS["spheres"]
    camera = photo_camera(320, 240, fov_deg=60)
    photo = render_room(room, camera)           # write photo.rgb (PNG) and photo.depth (.npy)
    ...convert with depth2mesh (--fx camera.fx ... --depth depth.npy)...
    for view_camera in side_cameras(camera, room.middle()):
        truth = render_room(room, view_camera)
        seen = render_glb(glb_bytes, view_camera)
        score = compare(truth, seen, hidden_pixels(room, camera, truth))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.exchange.gltf_read import read_glb_mesh

HIDDEN_MARGIN: Final = 0.02
"""A view's point is hidden from the photo when it lies more than this share behind what the
photo saw along the same ray."""

DEPTH_TOLERANCE: Final = 0.05
"""A rendered pixel is at the true depth when within this share of it."""

GLTF_TO_CAMERA: Final = np.array([1.0, -1.0, -1.0])
"""glTF axes to the OpenCV frame (and back): ``(x, y, z) -> (x, -y, -z)``."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the world (the photo camera's OpenCV frame).

    Attributes:
        fx: Horizontal focal length, pixels.
        fy: Vertical focal length, pixels.
        cx: Principal point column, pixels.
        cy: Principal point row, pixels.
        width: Image width, pixels.
        height: Image height, pixels.
        rotation: (3, 3) float64 camera-to-world rotation (columns: the camera's x, y, z axes
            in the world).
        centre: (3,) float64 camera centre in the world, metres.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    rotation: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    centre: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))

    def rays(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The rays through the pixel centres, row-major.

        Returns:
            (H*W, 3) float64 origins and (H*W, 3) float64 directions in the world, each
            direction scaled so that one unit along it is one metre of the camera's own z (a
            hit at ``t`` has depth ``t``).
        """
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float64), np.arange(self.height))
        local = np.stack(
            [(u.ravel() - self.cx) / self.fx, (v.ravel() - self.cy) / self.fy, np.ones(u.size)],
            axis=1,
        )
        directions = local @ self.rotation.T
        origins = np.broadcast_to(self.centre, directions.shape).copy()
        return origins, directions

    def project(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """Project world points into this camera.

        Args:
            points: (..., 3) float64 world metres.

        Returns:
            u, v (pixels, float64) and z (metres along the camera's axis), each (...).
        """
        local = (points - self.centre) @ self.rotation  # world -> camera: R^T (p - c)
        z = local[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * local[..., 0] / z + self.cx
            v = self.fy * local[..., 1] / z + self.cy
        return u, v, z

    def options(self) -> list[str]:
        """The command line's camera options for this camera's intrinsics."""
        values = {"--fx": self.fx, "--fy": self.fy, "--cx": self.cx, "--cy": self.cy}
        return [text for name, value in values.items() for text in (name, repr(float(value)))]


def photo_camera(width: int, height: int, *, fov_deg: float = 60.0) -> Camera:
    """The photo's camera: at the origin, looking down +z, square pixels, centred.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        fov_deg: Horizontal field of view, degrees.
    """
    focal = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return Camera(focal, focal, (width - 1) / 2, (height - 1) / 2, width, height)


def look_at(camera: Camera, centre: NDArray[np.float64], target: NDArray[np.float64]) -> Camera:
    """``camera``'s intrinsics at ``centre``, turned to look at ``target``, world "down" kept.

    Args:
        camera: Gives the intrinsics and the image size.
        centre: (3,) world metres.
        target: (3,) world metres, not straight above or below ``centre``.
    """
    centre = np.asarray(centre, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, -1.0, 0.0]))  # world up is -y
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward], axis=1)
    return Camera(
        camera.fx,
        camera.fy,
        camera.cx,
        camera.cy,
        camera.width,
        camera.height,
        rotation=rotation,
        centre=centre,
    )


def side_cameras(
    camera: Camera, target: NDArray[np.float64], *, offset: float = 0.3
) -> dict[str, Camera]:
    """The cameras ``offset`` metres to the right and to the left of ``camera``, turned to
    ``target``.

    Returns:
        ``{"right": camera, "left": camera}``.
    """
    right_axis = camera.rotation[:, 0]
    return {
        name: look_at(camera, camera.centre + sign * offset * right_axis, target)
        for name, sign in (("right", 1.0), ("left", -1.0))
    }


@dataclass(frozen=True)
class Sphere:
    """A striped ball.

    Attributes:
        centre: (x, y, z) world metres.
        radius: Metres.
        colors: Two sRGB colours of its latitude stripes.
        stripe: Height of a stripe, metres.
    """

    centre: tuple[float, float, float]
    radius: float
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    stripe: float = 0.1


@dataclass(frozen=True)
class View:
    """One camera's picture of a room or a mesh.

    Attributes:
        depth: (H, W) float64 metres along the camera's z (inf where nothing is hit).
        rgb: (H, W, 3) uint8 sRGB (0 where nothing is hit).
        points: (H, W, 3) float64 world points hit, metres (NaN where nothing is hit).
        covered: (H, W) bool, something was hit.
        surface: (H, W) int64: what was hit (a room: 0..5 walls, 6.. spheres; a mesh: the
            triangle's index), -1 where nothing.
    """

    depth: NDArray[np.float64]
    rgb: NDArray[np.uint8]
    points: NDArray[np.float64]
    covered: NDArray[np.bool_]
    surface: NDArray[np.int64]


WALL_NAMES: Final = ("left", "right", "ceiling", "floor", "back", "behind")
"""Room surfaces 0..5: x = -half_width, x = +half_width, y = -ceiling, y = +floor, z = back,
z = -behind."""


@dataclass(frozen=True)
class Room:
    """A box room seen from inside, with spheres standing in it.

    The box spans x in [-half_width, half_width], y in [-ceiling, floor] (y points down, so the
    floor is at +floor), z in [-behind, back]. Each wall is a checker of two colours in
    ``check`` metre squares over its own two world coordinates (so every camera sees the same
    colours in the same places).

    Attributes:
        half_width: Metres.
        ceiling: Height of the ceiling above the photo camera, metres.
        floor: Height of the camera above the floor, metres.
        back: Distance of the back wall, metres.
        behind: Distance of the wall behind the camera, metres.
        spheres: The balls.
        walls: Two sRGB colours per wall, in :data:`WALL_NAMES` order.
        check: Checker square size, metres.
    """

    half_width: float = 2.0
    ceiling: float = 1.2
    floor: float = 1.3
    back: float = 4.5
    behind: float = 1.0
    spheres: tuple[Sphere, ...] = ()
    walls: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
        ((150, 170, 200), (110, 130, 160)),
        ((200, 180, 140), (160, 140, 100)),
        ((225, 225, 215), (190, 190, 180)),
        ((120, 95, 70), (90, 70, 50)),
        ((170, 195, 165), (130, 155, 125)),
        ((128, 128, 128), (100, 100, 100)),
    )
    check: float = 0.3

    def middle(self) -> NDArray[np.float64]:
        """The point the side cameras turn to: on the photo's axis, halfway to the back wall."""
        return np.array([0.0, 0.0, 0.5 * self.back])

    def cast(
        self, origins: NDArray[np.float64], directions: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.uint8]]:
        """The first hit of each ray (the origins must lie inside the box).

        Args:
            origins: (N, 3) float64 world metres.
            directions: (N, 3) float64, any length (``t`` counts in their lengths).

        Returns:
            (N,) float64 ``t`` of the hit (inf for none), (N,) int64 surface (see
            :data:`WALL_NAMES`; 6 + k for sphere k) and (N, 3) uint8 sRGB colour.
        """
        low = np.array([-self.half_width, -self.ceiling, -self.behind])
        high = np.array([self.half_width, self.floor, self.back])
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(directions > 0, high, low)
            t_axes = np.where(directions != 0, (bound - origins) / directions, np.inf)
        axis = np.argmin(t_axes, axis=1)
        t = t_axes[np.arange(len(t_axes)), axis]
        positive = np.take_along_axis(directions, axis[:, None], axis=1)[:, 0] > 0
        surface = (2 * axis + positive).astype(np.int64)  # 0/1: x, 2/3: y, 4/5: z
        surface = np.where(axis == 2, np.where(positive, 4, 5), surface)
        for k, ball in enumerate(self.spheres):
            offset = origins - np.asarray(ball.centre)
            a = np.einsum("ij,ij->i", directions, directions)
            b = 2 * np.einsum("ij,ij->i", directions, offset)
            c = np.einsum("ij,ij->i", offset, offset) - ball.radius**2
            disc = b * b - 4 * a * c
            with np.errstate(invalid="ignore"):
                t_ball = (-b - np.sqrt(disc)) / (2 * a)
            hit = (disc >= 0) & (t_ball > 0) & (t_ball < t)
            t = np.where(hit, t_ball, t)
            surface = np.where(hit, 6 + k, surface)
        points = origins + t[:, None] * directions
        return t, surface, self._colors(points, surface)

    def _colors(self, points: NDArray[np.float64], surface: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The world-fixed colour of each point on its surface."""
        colors = np.zeros((len(points), 3), np.uint8)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        along = {0: (y, z), 1: (y, z), 2: (x, z), 3: (x, z), 4: (x, y), 5: (x, y)}
        for wall, (first, second) in along.items():
            on = surface == wall
            parity = (np.floor(first[on] / self.check) + np.floor(second[on] / self.check)) % 2
            pair = np.array(self.walls[wall], np.uint8)
            colors[on] = pair[parity.astype(np.int64)]
        for k, ball in enumerate(self.spheres):
            on = surface == 6 + k
            band = np.floor((y[on] - ball.centre[1]) / ball.stripe) % 2
            pair = np.array(ball.colors, np.uint8)
            colors[on] = pair[band.astype(np.int64)]
        return colors


ROOMS: Final = {
    "spheres": Room(
        spheres=(
            Sphere((-0.55, 0.35, 2.2), 0.45, ((220, 40, 40), (250, 210, 40))),
            Sphere((0.7, 0.9, 3.0), 0.4, ((40, 60, 220), (240, 240, 240))),
        )
    ),
    "near ball": Room(
        half_width=1.8,
        back=3.8,
        spheres=(Sphere((0.15, 0.1, 1.5), 0.35, ((200, 30, 160), (30, 200, 60)), 0.07),),
    ),
}
"""Rooms for the tests: two balls (one on the floor's side of the view) before the back wall;
one near ball in the middle."""


def _view(
    camera: Camera,
    t: NDArray[np.float64],
    surface: NDArray[np.int64],
    colors: NDArray[np.uint8],
    origins: NDArray[np.float64],
    directions: NDArray[np.float64],
) -> View:
    """A :class:`View` from per-ray hits (``t`` in units of the camera's z)."""
    shape = (camera.height, camera.width)
    covered = np.isfinite(t)
    with np.errstate(invalid="ignore"):
        points = np.where(covered[:, None], origins + t[:, None] * directions, np.nan)
    return View(
        depth=np.where(covered, t, np.inf).reshape(shape),
        rgb=np.where(covered[:, None], colors, 0).astype(np.uint8).reshape(*shape, 3),
        points=points.reshape(*shape, 3),
        covered=covered.reshape(shape),
        surface=np.where(covered, surface, -1).astype(np.int64).reshape(shape),
    )


def render_room(room: Room, camera: Camera) -> View:
    """The exact picture of ``room`` through ``camera`` (one ray per pixel centre)."""
    origins, directions = camera.rays()
    t, surface, colors = room.cast(origins, directions)
    return _view(camera, t, surface, colors, origins, directions)


def render_mesh(
    vertices: NDArray[np.floating],
    faces: NDArray[np.integer],
    camera: Camera,
    *,
    uvs: NDArray[np.floating] | None = None,
    texture: NDArray[np.uint8] | None = None,
    colors_srgb: NDArray[np.floating] | None = None,
) -> View:
    """Ray-cast a triangle mesh (Open3D's RaycastingScene) through ``camera``.

    Args:
        vertices: (N, 3) world metres (the OpenCV frame, not glTF axes).
        faces: (M, 3) vertex indices.
        camera: The camera.
        uvs: (N, 2) texture coordinates (glTF convention: origin top-left, v down), with
            ``texture``.
        texture: (h, w, 3) uint8 sRGB image, sampled bilinearly (pixel centres at
            ``(u * w - 0.5, v * h - 0.5)``, edges clamped).
        colors_srgb: (N, 3) float sRGB vertex colours in 0..255, interpolated (when there is
            no texture).

    Returns:
        The mesh's view; its ``surface`` holds the triangle index; grey 255 without colours.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor.from_numpy(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    origins, directions = camera.rays()
    rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
    hits = scene.cast_rays(o3d.core.Tensor.from_numpy(rays), nthreads=0)
    t = hits["t_hit"].numpy().astype(np.float64)
    covered = np.isfinite(t)
    triangle = np.where(covered, hits["primitive_ids"].numpy().astype(np.int64), 0)
    barycentric = hits["primitive_uvs"].numpy().astype(np.float64)
    weights = np.stack(
        [1.0 - barycentric[:, 0] - barycentric[:, 1], barycentric[:, 0], barycentric[:, 1]], 1
    )
    corners = np.asarray(faces, dtype=np.int64)[triangle]  # (P, 3)
    colors = np.full((len(t), 3), 255.0)
    if uvs is not None and texture is not None:
        uv = np.einsum("pk,pkc->pc", weights, np.asarray(uvs, np.float64)[corners])
        height, width = texture.shape[:2]
        shape = (camera.height, camera.width)  # remap wants maps under 32767 a side
        map_x = (uv[:, 0] * width - 0.5).astype(np.float32).reshape(shape)
        map_y = (uv[:, 1] * height - 0.5).astype(np.float32).reshape(shape)
        colors = (
            cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            .reshape(-1, 3)
            .astype(np.float64)
        )
    elif colors_srgb is not None:
        colors = np.einsum("pk,pkc->pc", weights, np.asarray(colors_srgb, np.float64)[corners])
    rgb = np.clip(np.rint(colors), 0, 255).astype(np.uint8)
    return _view(camera, np.where(covered, t, np.inf), triangle, rgb, origins, directions)


def linear_to_srgb(linear: NDArray[np.floating]) -> NDArray[np.float64]:
    """Linear colours in [0, 1] to sRGB in 0..255 (the sRGB transfer function)."""
    c = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return 255.0 * srgb


def render_glb(data: bytes, camera: Camera) -> View:
    """Render a GLB (any file :func:`read_glb_mesh` reads) through ``camera``.

    The scene's triangles (node transforms applied) are turned from glTF axes to the world
    (``(x, -y, -z)``); the base-colour texture is sampled through ``TEXCOORD_0``, else
    ``COLOR_0`` (linear) is shown as sRGB.
    """
    mesh = read_glb_mesh(data)
    vertices = mesh.positions.astype(np.float64) * GLTF_TO_CAMERA
    texture: NDArray[np.uint8] | None = None
    if mesh.texture is not None and mesh.uvs is not None:
        decoded = cv2.imdecode(np.frombuffer(mesh.texture, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("the GLB's texture does not decode")
        texture = np.ascontiguousarray(decoded[:, :, ::-1], dtype=np.uint8)
    colors = None
    if texture is None and mesh.colors_linear is not None:
        colors = linear_to_srgb(mesh.colors_linear[:, :3])
    return render_mesh(
        vertices, mesh.faces, camera, uvs=mesh.uvs, texture=texture, colors_srgb=colors
    )


def _behind_photo(
    room: Room, photo: Camera, view: View
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(inside the photo, more than 2 % behind what the photo saw), each (H, W) bool."""
    points = view.points.reshape(-1, 3)
    u, v, z = photo.project(points)
    inside = (
        view.covered.ravel()
        & (z > 0)
        & (u >= -0.5)
        & (u < photo.width - 0.5)
        & (v >= -0.5)
        & (v < photo.height - 0.5)
    )
    behind = np.zeros(len(points), bool)
    if inside.any():
        toward = (points[inside] - photo.centre) / z[inside, None]  # one unit: 1 m of photo z
        origins = np.broadcast_to(photo.centre, toward.shape).copy()
        t, _, _ = room.cast(origins, toward)
        behind[inside] = z[inside] > (1.0 + HIDDEN_MARGIN) * t
    shape = view.covered.shape
    return inside.reshape(shape), behind.reshape(shape)


def hidden_pixels(room: Room, photo: Camera, view: View) -> NDArray[np.bool_]:
    """Pixels of ``view`` (a :func:`render_room` picture) that the photo could not see.

    A pixel is hidden when its true surface point projects inside the photo but lies more
    than :data:`HIDDEN_MARGIN` (2 %) behind what the photo saw along the same ray (the
    photo camera's ray through the point, cast in the room: exact, no pixel rounding).

    Returns:
        (H, W) bool.
    """
    _, behind = _behind_photo(room, photo, view)
    return behind


def seen_pixels(room: Room, photo: Camera, view: View) -> NDArray[np.bool_]:
    """Pixels of ``view`` whose true surface point the photo saw (inside it, not hidden)."""
    inside, behind = _behind_photo(room, photo, view)
    return inside & ~behind


@dataclass(frozen=True)
class Score:
    """How a rendered view matches the truth on a set of pixels.

    Attributes:
        pixels: How many pixels the mask holds.
        covered: Share of them the render covers.
        at_depth: Share of them the render covers within :data:`DEPTH_TOLERANCE` of the true
            depth.
        color_error: Mean absolute colour difference (0..255, the three channels averaged)
            over the covered ones (NaN when none is covered).
    """

    pixels: int
    covered: float
    at_depth: float
    color_error: float

    def row(self) -> str:
        """One line: pixels, covered %, at depth %, colour error."""
        return (
            f"{self.pixels:7d} px  covered {100 * self.covered:6.2f} %  at depth "
            f"{100 * self.at_depth:6.2f} %  colour error {self.color_error:6.2f}"
        )


def compare(truth: View, rendered: View, mask: NDArray[np.bool_]) -> Score:
    """Score ``rendered`` against ``truth`` (same camera) on the pixels of ``mask``."""
    count = int(mask.sum())
    if count == 0:
        return Score(0, math.nan, math.nan, math.nan)
    covered = mask & rendered.covered
    with np.errstate(invalid="ignore"):
        close = np.abs(rendered.depth - truth.depth) <= DEPTH_TOLERANCE * truth.depth
    difference = np.abs(rendered.rgb.astype(np.float64) - truth.rgb.astype(np.float64))
    error = float(difference[covered].mean()) if covered.any() else math.nan
    return Score(count, covered.sum() / count, (covered & close).sum() / count, error)
