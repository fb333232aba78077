"""Poisson results in the ray-cast rooms of :mod:`helpers.scenes`: convert, render, score.

:func:`render_glb_materials` renders a GLB as its materials say (the Poisson GLB textures the
triangles the photo saw and gives the rest vertex colours, a second material);
:func:`convert_room` runs the real command line on a room's exact depth; :func:`depth_scores`
measures what the issue asks at a tight depth tolerance: the share of what the photo saw
covered within ``tolerance`` of the true depth, and the share of the view in front of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.exchange.gltf_read import read_glb_mesh
from helpers.cli import run_cli
from helpers.scenes import (
    GLTF_TO_CAMERA,
    Camera,
    Room,
    View,
    linear_to_srgb,
    render_mesh,
    render_room,
)

BAND_PIXELS = 32_000
"""render_mesh samples a texture with one cv2.remap row, which OpenCV limits to 32,767
pixels: larger cameras are rendered in bands of rows."""


def render_glb_materials(data: bytes, camera: Camera) -> View:
    """Render a GLB through ``camera``: material 0 with its texture, other materials with
    their vertex colours (linear ``COLOR_0`` shown as sRGB)."""
    rows = max(1, BAND_PIXELS // camera.width)
    if camera.height <= rows:
        return _render_materials(data, camera)
    bands = [
        _render_materials(
            data, replace(camera, cy=camera.cy - top, height=min(rows, camera.height - top))
        )
        for top in range(0, camera.height, rows)
    ]
    return View(
        *(np.concatenate([getattr(band, name) for band in bands]) for name in View.__annotations__)
    )


def _render_materials(data: bytes, camera: Camera) -> View:
    mesh = read_glb_mesh(data)
    vertices = mesh.positions.astype(np.float64) * GLTF_TO_CAMERA
    colors = None if mesh.colors_linear is None else linear_to_srgb(mesh.colors_linear[:, :3])
    textured = None
    if mesh.texture is not None and mesh.uvs is not None:
        decoded = cv2.imdecode(np.frombuffer(mesh.texture, np.uint8), cv2.IMREAD_COLOR)
        texture = np.ascontiguousarray(decoded[:, :, ::-1], dtype=np.uint8)
        textured = render_mesh(vertices, mesh.faces, camera, uvs=mesh.uvs, texture=texture)
    plain = render_mesh(vertices, mesh.faces, camera, colors_srgb=colors)
    if textured is None:
        return plain
    materials = mesh.face_materials
    if materials is None:
        return textured
    by_colour = plain.covered & (materials[np.maximum(plain.surface, 0)] != 0)
    rgb = np.where(by_colour[..., None], plain.rgb, textured.rgb)
    return View(textured.depth, rgb, textured.points, textured.covered, textured.surface)


@dataclass(frozen=True)
class RoomResult:
    """The files of one room's conversion.

    Attributes:
        photo: The room's photo view (exact depth and colours).
        grid: The grid GLB's bytes.
        poisson: The Poisson GLB's bytes.
        sidecar: The sidecar's path.
    """

    photo: View
    grid: bytes
    poisson: bytes
    sidecar: Path


def convert_room(room: Room, camera: Camera, folder: Path, *extra: str) -> RoomResult:
    """Take the room's photo through ``camera`` and convert its exact depth, ``--mesh both``."""
    photo = render_room(room, camera)
    folder.mkdir(parents=True, exist_ok=True)
    image, depth = folder / "room.png", folder / "room_depth.npy"
    cv2.imwrite(str(image), photo.rgb[:, :, ::-1])
    np.save(depth, photo.depth.astype(np.float32))
    out = folder / "out"
    done = run_cli(
        "convert", str(image), "-o", str(out), "--depth", str(depth), "--mesh", "both",
        *camera.options(), *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return RoomResult(
        photo,
        (out / "room.glb").read_bytes(),
        (out / "room_poisson.glb").read_bytes(),
        out / "room.json",
    )


def depth_scores(
    truth: View, rendered: View, mask: NDArray[np.bool_], *, tolerance: float = 0.01
) -> tuple[float, float]:
    """Share of ``mask`` covered within ``tolerance`` of the true depth, and share of the whole
    view where the render lies more than ``tolerance`` in front of the truth."""
    with np.errstate(invalid="ignore"):
        close = rendered.covered & (np.abs(rendered.depth - truth.depth) <= tolerance * truth.depth)
        front = rendered.covered & (rendered.depth < (1 - tolerance) * truth.depth)
    return float((close & mask).sum() / max(int(mask.sum()), 1)), float(front.mean())
