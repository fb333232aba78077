"""The look-around ground truth (tests/helpers/scenes.py): rooms, renderer, hidden pixels."""

from __future__ import annotations

import cv2
import numpy as np
from helpers.scenes import (
    ROOMS,
    compare,
    hidden_pixels,
    photo_camera,
    render_glb,
    render_room,
    seen_pixels,
    side_cameras,
)

from depth2mesh.exchange.gltf import encode_glb
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.mesh import grid_mesh
from depth2mesh.geometry.points import camera_facing_normals, depth_to_points


def test_room_depth_is_exact_and_colours_stay_with_the_world() -> None:
    room = ROOMS["spheres"]
    camera = photo_camera(160, 120)
    photo = render_room(room, camera)
    ball = room.spheres[0]
    u, v, _ = camera.project(np.array(ball.centre))
    distance = float(np.linalg.norm(ball.centre))
    front = photo.depth[round(float(v)), round(float(u))]  # the ray to the ball's centre
    assert abs(front - (distance - ball.radius) * ball.centre[2] / distance) < 0.005
    assert photo.surface[0, 80] == 2  # the ceiling
    assert photo.surface[-1, 80] == 3  # the floor
    assert np.isclose(photo.depth[photo.surface == 4], room.back).all()  # the back wall
    right = side_cameras(camera, room.middle())["right"]
    side = render_room(room, right)
    seen = seen_pixels(room, camera, side)
    toward = side.points[seen]  # the photo camera's rays to the same points see their colours
    _, _, colors = room.cast(np.zeros_like(toward), toward)
    assert (colors == side.rgb[seen]).all(axis=1).mean() > 0.995
    pu, pv, _ = camera.project(side.points[seen])  # and the photo shows them there
    same = photo.rgb[np.rint(pv).astype(int), np.rint(pu).astype(int)] == side.rgb[seen]
    assert same.all(axis=1).mean() > 0.9  # (pixel rounding at checker and stripe edges)


def test_hidden_pixels_lie_behind_the_balls_and_only_there() -> None:
    room = ROOMS["near ball"]
    camera = photo_camera(160, 120)
    assert not hidden_pixels(room, camera, render_room(room, camera)).any()
    for name, view_camera in side_cameras(camera, room.middle()).items():
        view = render_room(room, view_camera)
        hidden = hidden_pixels(room, camera, view)
        assert hidden.sum() > 300, name
        assert (view.surface[hidden] < 6).mean() > 0.9  # walls (and a sliver of the ball)
        columns = np.nonzero(hidden.any(axis=0))[0]
        ball = np.nonzero((view.surface == 6).any(axis=0))[0]
        # moving right uncovers the wall on the ball's right; left, on its left
        assert (columns.mean() > ball.mean()) == (name == "right")


def test_a_glb_of_the_photo_grid_renders_back_as_the_photo() -> None:
    room = ROOMS["spheres"]
    camera = photo_camera(160, 120)
    photo = render_room(room, camera)
    depth = photo.depth.astype(np.float32)
    intrinsics = Intrinsics(camera.fx, camera.fy, camera.cx, camera.cy, 160, 120)
    points = depth_to_points(depth, intrinsics)
    grid = grid_mesh(points, depth, camera_facing_normals(points), edge_threshold=1000.0)
    _, png = cv2.imencode(".png", photo.rgb[:, :, ::-1])
    glb = encode_glb(
        grid.vertices * np.array([1, -1, -1], np.float32),
        grid.faces,
        uvs=grid.uvs,
        texture=png.tobytes(),
        texture_mime="image/png",
        compression="quantized",
        strips=True,
    )
    rendered = render_glb(glb, camera)
    inner = np.zeros(depth.shape, bool)
    inner[1:-1, 1:-1] = True
    score = compare(photo, rendered, inner)
    assert score.covered > 0.99
    assert score.at_depth > 0.99
    assert score.color_error < 0.5
