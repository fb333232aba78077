"""The Poisson mesh (issue 21): trimmed to what the points support, textured where seen, fast.

Fast tests check the pieces on small arrays (thinning, octree depth, the support trim, the
unsupported-area measure, the two-material GLB, the preview's sRGB colours); slow ones convert
ray-cast rooms and the six real MiDaS small frames with the real command line, and compare
screenshots of ``depth2mesh view``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from helpers.cli import run_cli
from helpers.glb import GlbCheck, glb_chunks
from helpers.gltf_validator import assert_khronos_valid
from helpers.poisson_scenes import convert_room, depth_scores, render_glb_materials
from helpers.scenes import ROOMS, compare, photo_camera, render_room, seen_pixels, side_cameras
from PIL import Image

from depth2mesh.apps.preview import _read_geometry
from depth2mesh.exchange.gltf import encode_glb
from depth2mesh.exchange.gltf_read import read_glb_mesh
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.mesh import MeshArrays, auto_poisson_depth, split_in_four
from depth2mesh.geometry.points import depth_to_points, srgb_to_linear
from depth2mesh.geometry.support import even_sample, supported_faces, unsupported_share

NYU_CAMERA = ["--fx", "518.8579", "--fy", "519.4696", "--cx", "325.5824", "--cy", "253.7362"]
FRAMES = ("00065", "00122", "00438", "00439", "00445", "00543")


def sheet(
    corners: tuple[tuple[float, float, float], ...], steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """A triangulated quadrilateral (corners in order), ``steps`` cells a side."""
    a, b, c, d = (np.asarray(corner, np.float64) for corner in corners)
    s = np.linspace(0.0, 1.0, steps + 1)
    u, v = np.meshgrid(s, s)
    u, v = u.reshape(-1, 1), v.reshape(-1, 1)
    points = (1 - u) * (1 - v) * a + u * (1 - v) * b + u * v * c + (1 - u) * v * d
    index = np.arange((steps + 1) ** 2).reshape(steps + 1, steps + 1)
    top_left, top_right = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    bottom_left, bottom_right = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate(
        [
            np.stack([top_left, bottom_left, top_right], 1),
            np.stack([top_right, bottom_left, bottom_right], 1),
        ]
    )
    return points, faces.astype(np.int64)


def joined(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts as one mesh, and each face's part number."""
    vertices, faces, labels, offset = [], [], [], 0
    for number, (points, triangles) in enumerate(parts):
        vertices.append(points)
        faces.append(triangles + offset)
        labels.append(np.full(len(triangles), number))
        offset += len(points)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(labels)


# --------------------------------------------------------------------------- fast


def test_even_thinning_is_a_regular_lattice_within_the_budget() -> None:
    valid = np.ones((480, 640), bool)
    valid[:, :10] = False
    chosen = even_sample(valid, 50_000)
    assert 30_000 < chosen.sum() <= 50_000
    rows, cols = np.nonzero(chosen)
    assert set(np.diff(np.unique(rows))) == set(np.diff(np.unique(cols))) == {3}
    assert not (chosen & ~valid).any()
    np.testing.assert_array_equal(even_sample(valid, 10**6), valid)  # under budget: all


def test_octree_depth_follows_the_grid() -> None:
    assert auto_poisson_depth((480, 640)) == 7  # deeper only when asked: 2-3x the time
    assert auto_poisson_depth((768, 1024)) == 7
    assert auto_poisson_depth((240, 320)) == 7
    assert auto_poisson_depth((36, 48)) == 5


def test_support_trim_removes_a_bridge_a_far_sheet_and_what_lies_outside_the_frame() -> None:
    # the photo: a near box (z = 2) on the left half of the view, the wall (z = 3) on the right
    intrinsics = Intrinsics(100.0, 100.0, 39.5, 29.5, 80, 60)
    depth = np.full((60, 80), 3.0, np.float32)
    depth[:, :40] = 2.0
    points = depth_to_points(depth, intrinsics)
    valid = np.ones(depth.shape, bool)
    x_step = 0.5 / 100  # the column between the two halves, metres per metre of depth
    near = sheet(
        ((-0.8, -0.6, 2.0), (-x_step, -0.6, 2.0), (-x_step, 0.6, 2.0), (-0.8, 0.6, 2.0)), 40
    )
    wall = sheet(((0.0, -0.9, 3.0), (1.2, -0.9, 3.0), (1.2, 0.9, 3.0), (0.0, 0.9, 3.0)), 40)
    # Poisson's invention: a sheet from the box's edge back to the wall, one behind the wall
    # and a flap beyond the photo's right border
    bridge = sheet(
        ((-x_step, -0.6, 2.0), (0.0, -0.6, 3.0), (0.0, 0.6, 3.0), (-x_step, 0.6, 2.0)), 20
    )
    behind = sheet(((-0.5, -0.5, 3.5), (0.5, -0.5, 3.5), (0.5, 0.5, 3.5), (-0.5, 0.5, 3.5)), 10)
    outside = sheet(((1.3, -0.5, 3.0), (2.0, -0.5, 3.0), (2.0, 0.5, 3.0), (1.3, 0.5, 3.0)), 10)
    vertices, faces, part = joined(near, wall, bridge, behind, outside)
    keep, support = supported_faces(vertices, faces, points, valid, intrinsics)
    assert keep[part == 0].mean() > 0.99
    assert keep[part == 1].mean() > 0.99
    assert keep[part == 2].mean() < 0.1  # only its first row, resting on the box's edge
    assert not keep[part == 3].any()
    assert not keep[part == 4].any()
    # the box and the wall are what the photo saw; behind the wall is not
    first_behind = len(near[0]) + len(wall[0]) + len(bridge[0])
    assert support.seen[: len(near[0])].mean() > 0.99
    assert not support.seen[first_behind : first_behind + len(behind[0])].any()


def test_unsupported_share_is_the_area_away_from_the_points() -> None:
    plane, plane_faces = sheet(((-1, -1, 2.0), (1, -1, 2.0), (1, 1, 2.0), (-1, 1, 2.0)), 50)
    # a quarter of the area again, 0.2 m (10 % of depth) in front of the points
    flap, flap_faces = sheet(((-1, -1, 1.8), (0, -1, 1.8), (0, 0, 1.8), (-1, 0, 1.8)), 20)
    vertices, faces, _ = joined((plane, plane_faces), (flap, flap_faces))
    assert unsupported_share(plane, plane_faces, plane) == 0.0
    assert unsupported_share(vertices, faces, plane) == pytest.approx(0.2, abs=0.01)
    assert unsupported_share(vertices, faces, plane, tolerance=0.2) == 0.0


def _textured_and_coloured(compression: str) -> tuple[bytes, np.ndarray, np.ndarray]:
    positions, faces = sheet(((-1, -1, -2.0), (1, -1, -2.0), (1, 1, -2.0), (-1, 1, -2.0)), 8)
    uvs = (positions[:, :2] * [0.5, -0.5] + 0.5).astype(np.float32)
    colors = srgb_to_linear(np.full((len(positions), 3), (200, 60, 20), np.uint8))
    marked = np.zeros(len(faces), bool)
    marked[::3] = True
    _, png = cv2.imencode(".png", np.full((16, 16, 3), 128, np.uint8))
    data = encode_glb(
        positions,
        faces,
        uvs=uvs,
        colors_linear=colors,
        texture=png.tobytes(),
        texture_mime="image/png",
        colored_faces=marked,
        compression=compression,  # type: ignore[arg-type]
    )
    return data, faces, marked


@pytest.mark.parametrize("compression", ["none", "quantized"])
def test_glb_draws_unseen_triangles_with_vertex_colours_as_a_second_material(
    tmp_path: Path, assert_valid_glb: GlbCheck, compression: str
) -> None:
    data, _faces, marked = _textured_and_coloured(compression)
    path = tmp_path / "two.glb"
    path.write_bytes(data)
    assert_valid_glb(path)
    document, _ = glb_chunks(data)
    assert len(document["materials"]) == 2
    assert "baseColorTexture" not in document["materials"][1]["pbrMetallicRoughness"]
    for primitive in document["meshes"][0]["primitives"]:
        attributes = primitive["attributes"]
        if primitive["material"] == 0:  # the photo alone: no colour multiplies it
            assert "TEXCOORD_0" in attributes
            assert "COLOR_0" not in attributes
        else:
            assert "COLOR_0" in attributes
            assert "TEXCOORD_0" not in attributes
    mesh = read_glb_mesh(data)
    assert mesh.face_materials is not None
    assert (mesh.face_materials == 1).sum() == marked.sum()
    assert (mesh.face_materials == 0).sum() == (~marked).sum()


def test_preview_shows_a_glb_s_linear_vertex_colours_as_srgb(tmp_path: Path) -> None:
    positions, faces = sheet(((-1, -1, -2.0), (1, -1, -2.0), (1, 1, -2.0), (-1, 1, -2.0)), 4)
    srgb = np.random.default_rng(1).integers(0, 256, (len(positions), 3)).astype(np.uint8)
    path = tmp_path / "coloured.glb"
    path.write_bytes(
        encode_glb(positions, faces, colors_linear=srgb_to_linear(srgb), compression="quantized")
    )
    (mesh,) = _read_geometry(o3d, path)
    shown = np.asarray(mesh.vertex_colors)
    np.testing.assert_allclose(shown * 255, srgb, atol=0.51)  # sRGB, as a PLY's colours
    assert not np.allclose(shown, srgb_to_linear(srgb), atol=0.02)  # not the linear values
    data, _, marked = _textured_and_coloured("quantized")
    path.write_bytes(data)
    textured, coloured = _read_geometry(o3d, path)
    assert textured.has_textures()
    assert not textured.has_vertex_colors()
    assert len(coloured.triangles) == marked.sum()
    used = np.unique(np.asarray(coloured.triangles))
    shown = np.asarray(coloured.vertex_colors)[used] * 255
    np.testing.assert_allclose(shown, np.broadcast_to([200, 60, 20], shown.shape), atol=0.51)


# --------------------------------------------------------------------------- slow


@pytest.mark.slow  # two rooms converted with Poisson, six ray-cast views each
@pytest.mark.parametrize("name", sorted(ROOMS))
def test_rooms_are_covered_at_the_true_depth_from_the_photo_and_beside_it(
    tmp_path: Path, name: str
) -> None:
    camera = photo_camera(320, 240)
    room = ROOMS[name]
    result = convert_room(room, camera, tmp_path)
    for view, view_camera in {"photo": camera, **side_cameras(camera, room.middle())}.items():
        truth = render_room(room, view_camera)
        seen = seen_pixels(room, camera, truth)
        poisson = render_glb_materials(result.poisson, view_camera)
        covered, in_front = depth_scores(truth, poisson, seen, tolerance=0.01)
        assert covered >= 0.99, (name, view, covered)
        assert in_front <= 0.005, (name, view, in_front)
        if view == "photo":  # the photo's colours, as the grid mesh shows them
            grid = render_glb_materials(result.grid, view_camera)
            error = compare(truth, poisson, seen).color_error
            assert error <= compare(truth, grid, seen).color_error + 0.5, (name, error)


@pytest.fixture(scope="module")
def real_frames(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The six real MiDaS small frames converted with ``--mesh both`` (one folder each)."""
    work = tmp_path_factory.mktemp("real_midas")
    for frame in FRAMES:
        disparity = work / f"disparity_{frame}.npy"
        source = shared_dir / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy"
        np.save(disparity, np.load(source).astype(np.float32))
        done = run_cli(
            "convert", shared_dir / "real_midas" / f"rgb_{frame}.png", "-o", work / frame,
            "--depth", disparity, "--depth-kind", "disparity", "--near", "1.2", "--far", "5",
            *NYU_CAMERA, "--mesh", "both",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return work


def _triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    corners = vertices[faces].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return np.linalg.norm(cross, axis=1) / 2


def test_split_in_four_keeps_the_surface_its_winding_and_its_vertices() -> None:
    rng = np.random.default_rng(3)
    rows, cols = 7, 9  # a bumpy grid surface: shared edges, a boundary, two windings
    v, u = np.mgrid[0:rows, 0:cols].astype(np.float32)
    z = 3.0 + rng.uniform(-0.2, 0.2, (rows, cols)).astype(np.float32)
    vertices = np.stack([u * 0.1, v * 0.1, z], -1).reshape(-1, 3)
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)]).reshape(-1, 3)
    colors = rng.integers(0, 256, (len(vertices), 3), dtype=np.uint8)
    normals = np.tile(np.float32([0, 0, -1]), (len(vertices), 1))
    mesh = MeshArrays(vertices, faces.astype(np.int64), normals=normals, colors=colors)
    split, edges = split_in_four(mesh)
    assert len(split.faces) == 4 * len(faces)
    sides = {
        tuple(sorted(side)) for face in faces for side in zip(face, np.roll(face, -1), strict=True)
    }
    assert len(edges) == len(sides) == len(split.vertices) - len(vertices)  # one per shared edge
    np.testing.assert_array_equal(split.vertices[: len(vertices)], vertices)
    np.testing.assert_allclose(
        split.vertices[len(vertices) :], (vertices[edges[:, 0]] + vertices[edges[:, 1]]) / 2
    )
    np.testing.assert_array_equal(split.colors[: len(vertices)], colors)
    # the same area, and every small triangle faces the way its parent does
    area = _triangle_areas(vertices, faces).sum()
    assert _triangle_areas(split.vertices, split.faces).sum() == pytest.approx(area, rel=1e-6)

    def facing(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
        corners = points[tris].astype(np.float64)
        return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 2]

    parent = np.repeat(np.sign(facing(vertices, faces)), 4)
    np.testing.assert_array_equal(np.sign(facing(split.vertices, split.faces)), parent)
    # no crack: each interior edge is shared by exactly two small triangles
    small = np.sort(np.concatenate([split.faces[:, [0, 1]], split.faces[:, [1, 2]],
                                    split.faces[:, [2, 0]]]), axis=1)  # fmt: skip
    _, uses = np.unique(small, axis=0, return_counts=True)
    assert set(uses) <= {1, 2}
    assert (uses == 1).sum() == 2 * 2 * ((rows - 1) + (cols - 1))  # the boundary, halved


def _plane_mesh(camera: Intrinsics, step: int, colors_of: np.ndarray) -> MeshArrays:
    """A plane 2 m in front of ``camera``, its vertices every ``step`` pixels from (4, 4)."""
    v, u = np.mgrid[4 : camera.height - 3 : step, 4 : camera.width - 3 : step].astype(np.float64)
    z = np.full(u.shape, 2.0)
    vertices = np.stack([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z], -1)
    index = np.arange(u.size).reshape(u.shape)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)]).reshape(-1, 3)
    return MeshArrays(
        vertices.reshape(-1, 3).astype(np.float32),
        faces.astype(np.int64),
        normals=np.tile(np.float32([0, 0, -1]), (u.size, 1)),
        colors=colors_of[v.astype(int).ravel(), u.astype(int).ravel()],
    )


def test_the_poisson_ply_follows_the_photo_finer_than_the_surface_spacing() -> None:
    """Stripes four pixels wide on a plane meshed every eight pixels: the surface's vertices
    all land on one colour; the PLY is split until its vertices lie two pixels apart, and they
    take the photo's colour where they project."""
    from depth2mesh.pipeline.convert import poisson_ply_mesh

    camera = Intrinsics(80.0, 80.0, 47.5, 31.5, 96, 64)
    stripes = np.where((np.arange(96) // 4) % 2 == 0, 230, 20).astype(np.uint8)
    rgb = np.repeat(np.tile(stripes[None, :, None], (64, 1, 1)), 3, axis=2)
    surface = _plane_mesh(camera, 8, rgb)
    assert surface.colors is not None
    assert len(np.unique(surface.colors)) == 1  # the surface's own vertices miss the stripes
    ply = poisson_ply_mesh(rgb, camera, surface, np.ones(len(surface.vertices), dtype=bool))
    assert len(ply.faces) == 16 * len(surface.faces)  # split twice: 8 -> 4 -> 2 pixels
    assert ply.colors is not None
    projected = ply.vertices.astype(np.float64) @ camera.matrix().T
    column = np.round(projected[:, 0] / projected[:, 2]).astype(int)
    np.testing.assert_array_equal(ply.colors[:, 0], stripes[column])  # the stripes show


def test_the_poisson_ply_averages_next_to_what_the_photo_did_not_see() -> None:
    from depth2mesh.pipeline.convert import poisson_ply_mesh

    camera = Intrinsics(80.0, 80.0, 47.5, 31.5, 96, 64)
    rgb = np.full((64, 96, 3), 100, np.uint8)
    surface = _plane_mesh(camera, 3, rgb)
    assert surface.colors is not None
    surface.colors[7] = 250  # a vertex the photo did not see, with a colour from elsewhere
    seen = np.ones(len(surface.vertices), dtype=bool)
    seen[7] = False
    ply = poisson_ply_mesh(rgb, camera, surface, seen)
    assert len(ply.faces) == 4 * len(surface.faces)  # split once: 3 -> 1.5 pixels
    assert ply.colors is not None
    _, edges = split_in_four(surface)
    beside = (edges == 7).any(axis=1)
    new = ply.colors[len(surface.vertices) :]
    np.testing.assert_array_equal(new[beside], 175)  # the mean of its ends (250, 100)
    np.testing.assert_array_equal(new[~beside], 100)  # the photo's colour


@pytest.mark.slow  # six conversions with Poisson and the Khronos validator
@pytest.mark.parametrize("frame", FRAMES)
def test_real_midas_poisson_surface_holds_no_invented_sheets(real_frames: Path, frame: str) -> None:
    out = real_frames / frame
    stem = f"rgb_{frame}"
    cloud = np.asarray(o3d.io.read_point_cloud(str(out / f"{stem}_points.ply")).points)
    mesh = o3d.io.read_triangle_mesh(str(out / f"{stem}_poisson.ply"))
    assert mesh.has_vertex_colors()
    faces = np.asarray(mesh.triangles, dtype=np.int64)
    assert len(faces) > 50_000
    assert unsupported_share(np.asarray(mesh.vertices), faces, cloud, tolerance=0.02) <= 0.01
    poisson_glb = out / f"{stem}_poisson.glb"
    assert poisson_glb.stat().st_size <= (out / f"{stem}.glb").stat().st_size
    report = assert_khronos_valid(poisson_glb)
    counts = json.loads((out / f"{stem}.json").read_text())["counts"]
    assert report["info"]["totalTriangleCount"] == counts["poisson_faces"]
    # the PLY: the GLB's surface with its triangles split in four, once or twice
    assert counts["poisson_ply_faces"] == len(faces)
    assert len(faces) in (4 * counts["poisson_faces"], 16 * counts["poisson_faces"])


@pytest.mark.slow  # an X server and two Open3D windows
def test_view_shows_the_poisson_glb_as_its_ply(real_frames: Path, tmp_path: Path) -> None:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        if os.environ.get("CI"):
            pytest.fail("xvfb-run is missing: apt-get install xvfb xauth")
        pytest.skip("xvfb-run is missing")
    shots = {}
    for suffix in ("glb", "ply"):
        shot = tmp_path / f"{suffix}.png"
        done = subprocess.run(
            [xvfb, "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-m", "depth2mesh",
             "view", str(real_frames / "00065" / f"rgb_00065_poisson.{suffix}"),
             "--screenshot", str(shot)],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        shots[suffix] = np.asarray(Image.open(shot).convert("RGB")).astype(np.float64)
    background = np.asarray([0.08, 0.08, 0.09]) * 255
    shown = [np.abs(shot - background).max(axis=2) > 3 for shot in shots.values()]
    both = shown[0] & shown[1]
    assert both.mean() > 0.8
    # the same colours: no tone shift between the GLB (linear COLOR_0, shown as sRGB, and the
    # photo's texture) and the PLY (sRGB vertex colours); it was 49/255 darker before
    bias = (shots["glb"] - shots["ply"])[both].mean(axis=0)
    assert np.abs(bias).max() <= 1.0, bias
    # what could differ is detail: the GLB shows the photo's texture where the photo saw the
    # surface, the PLY one colour per vertex, interpolated; its triangles are split in four so
    # that its colours follow the photo (5.2/255 with the GLB's own vertices at octree depth 8)
    difference = np.abs(shots["glb"] - shots["ply"]).mean(axis=2)[both].mean()
    assert difference <= 4.0, difference


def test_poisson_texture_coordinates_address_the_photo_above_the_layer_strip(
    tmp_path: Path,
) -> None:
    """With the background layer (the default) the texture is the photo with a strip below it:
    the Poisson GLB's textured triangles must sample the photo's part, where they project."""
    from depth2mesh import ConvertOptions, convert_photo

    rows, cols = 96, 128
    v, u = np.mgrid[0:rows, 0:cols]
    photo = np.stack([v * 255 // rows, u * 255 // cols, 255 - v * 255 // rows], -1)
    Image.fromarray(photo.astype(np.uint8)).save(tmp_path / "ramp.png")
    depth = np.full((rows, cols), 4.0, np.float32)
    depth[24:72, 40:88] = 2.0  # a box in front of a wall: a torn edge, so a layer and a strip
    np.save(tmp_path / "depth.npy", depth)
    options = ConvertOptions(mesh="both", grid=cols, texture_format="png")
    result = convert_photo(
        tmp_path / "ramp.png", tmp_path / "out", depth_file=tmp_path / "depth.npy", options=options
    )
    sidecar = json.loads(result.paths["sidecar"].read_text())
    assert sidecar["inpaint"]["texture_px"] != sidecar["inpaint"]["photo_px"]  # a strip below
    mesh = read_glb_mesh(result.paths["poisson_glb"].read_bytes())
    assert mesh.texture is not None
    assert mesh.uvs is not None
    texture = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(mesh.texture, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    textured = np.unique(mesh.faces[mesh.face_materials == 0])
    texels = np.floor(mesh.uvs[textured] * texture.shape[1::-1]).astype(int)
    texels = np.minimum(texels, np.array(texture.shape[1::-1]) - 1)
    sampled = texture[texels[:, 1], texels[:, 0]].astype(float)
    # where the vertex projects in the photo (glTF axes back to the camera frame)
    x, y, z = (mesh.positions[textured].astype(float) * [1, -1, -1]).T
    intrinsics = result.intrinsics
    pixel_u = np.clip(np.rint(intrinsics.fx * x / z + intrinsics.cx), 0, cols - 1).astype(int)
    pixel_v = np.clip(np.rint(intrinsics.fy * y / z + intrinsics.cy), 0, rows - 1).astype(int)
    expected = photo[pixel_v, pixel_u].astype(float)
    assert len(textured) > 100
    error = np.abs(sampled - expected).max(axis=1)
    assert float(np.median(error)) <= 3  # the photo's own texel, or the one beside it
    assert float(np.mean(error <= 8)) > 0.9  # (silhouettes and the last row excepted)


def test_two_cores_reconstruct_on_one_thread_and_the_surface_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from depth2mesh.geometry import mesh as mesh_module

    monkeypatch.setattr(mesh_module.os, "cpu_count", lambda: 2)
    assert mesh_module.poisson_threads() == 1
    monkeypatch.setattr(mesh_module.os, "cpu_count", lambda: 16)
    assert mesh_module.poisson_threads() == -1
    rng = np.random.default_rng(5)
    u, v = rng.uniform(-1, 1, (2, 4000))
    points = np.stack([u, v, 3.0 + 0.2 * np.sin(3 * u)], -1).astype(np.float32)
    normals = np.tile(np.float32([0, 0, -1]), (len(points), 1))
    first, second = (mesh_module.poisson_mesh(points, normals, depth=6, threads=1) for _ in "ab")
    np.testing.assert_array_equal(first.vertices, second.vertices)
    np.testing.assert_array_equal(first.faces, second.faces)


def test_open3d_is_imported_on_one_background_thread_however_often_asked() -> None:
    from depth2mesh.geometry.mesh import preload_open3d

    first = preload_open3d()
    assert preload_open3d() is first  # the command line asks first, convert_photo again
    first.join(timeout=60)
    assert not first.is_alive()
