"""``convert``: the output contract, exact geometry, colours, and real consumers of every file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import trimesh
from helpers.cli import run_cli
from helpers.glb import (
    GlbCheck,
    count_drawn,
    drawn_triangles,
    glb_arrays,
    glb_texture,
    read_cloud,
)
from helpers.gltf_validator import assert_khronos_valid
from helpers.photos import STORE
from PIL import Image

from depth2mesh.depth.model import DepthModel
from depth2mesh.errors import InputError, OutputError
from depth2mesh.exchange.gltf import decode_glb_json
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import linear_to_srgb
from depth2mesh.pipeline.convert import (
    CameraOptions,
    ConvertOptions,
    convert_photo,
    grid_size,
    output_paths,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def backproject_gltf(depth: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Independent reference: pixel (u, v) at depth z -> glTF axes (x, -y, -z)."""
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u].astype(np.float64)
    x = (u - k.cx) * z / k.fx
    y = (v - k.cy) * z / k.fy
    return np.stack([x, -y, -z], axis=1)


@pytest.fixture
def smooth_photo(tmp_path: Path) -> Path:
    """A 96x64 photo of smooth colour gradients."""
    v, u = np.mgrid[0:64, 0:96]
    rgb = np.stack([u * 255 // 95, v * 255 // 63, (u + v) * 255 // 158], axis=2).astype(np.uint8)
    path = tmp_path / "smooth.png"
    Image.fromarray(rgb).save(path)
    return path


def plane_depth(tmp_path: Path, shape: tuple[int, int], metres: float) -> Path:
    path = tmp_path / "plane.npy"
    np.save(path, np.full(shape, metres, np.float32))
    return path


K = CameraOptions(fx=80.0, fy=90.0, cx=47.0, cy=30.5)


# --------------------------------------------------------------------------- exact geometry


def test_fronto_parallel_plane_back_projects_to_the_plane(
    tmp_path: Path, smooth_photo: Path
) -> None:
    depth = plane_depth(tmp_path, (64, 96), 2.5)
    options = ConvertOptions(camera=K, texture_format="png")
    result = convert_photo(smooth_photo, tmp_path / "out", depth_file=depth, options=options)
    points, colors, normals = read_cloud(tmp_path / "out" / "smooth_points.ply")
    assert points.shape == (64 * 96, 3)
    np.testing.assert_allclose(points[:, 2], -2.5, rtol=0, atol=1e-6)
    reference = backproject_gltf(np.full((64, 96), 2.5), result.intrinsics)
    np.testing.assert_allclose(points, reference, rtol=1e-6, atol=1e-6)
    # the pixel at the principal point's column lies on the optical axis
    assert np.isclose(points[47, 0], 0.0, atol=1e-6)
    # a plane facing the camera: every normal is +Z in glTF axes
    np.testing.assert_allclose(normals, np.tile([0.0, 0.0, 1.0], (len(normals), 1)), atol=1e-5)
    # the photo's colours, pixel for pixel (grid = photo size)
    rgb = np.asarray(Image.open(smooth_photo))
    np.testing.assert_array_equal(colors, rgb.reshape(-1, 3))


def test_step_scene_loses_exactly_the_faces_across_the_step(
    tmp_path: Path, smooth_photo: Path
) -> None:
    depth = np.full((64, 96), 2.0, np.float32)
    depth[:, 40:] = 4.0  # a vertical step between columns 39 and 40
    path = tmp_path / "step.npy"
    np.save(path, depth)
    options = ConvertOptions(camera=K, inpaint="off")  # the seen grid alone (no layer)
    result = convert_photo(smooth_photo, tmp_path / "out", depth_file=path, options=options)
    cells = 63 * 95
    crossing = 63 * 1  # one column of cells straddles the step
    assert result.counts["grid_faces"] == 2 * (cells - crossing)
    glb = glb_arrays(tmp_path / "out" / "smooth.glb")
    assert glb["indices"].shape[0] == 2 * (cells - crossing)
    z = glb["POSITION"][:, 2][glb["indices"]]
    assert (np.ptp(z, axis=1) == 0).all()  # no kept triangle spans the step


def test_orientation_top_is_up_and_everything_in_front_of_the_camera(
    tmp_path: Path, smooth_photo: Path
) -> None:
    ramp = np.linspace(1.5, 3.0, 64, dtype=np.float32)[:, None].repeat(96, axis=1)
    path = tmp_path / "ramp.npy"
    np.save(path, ramp)
    convert_photo(smooth_photo, tmp_path / "out", depth_file=path, options=ConvertOptions(camera=K))
    glb = glb_arrays(tmp_path / "out" / "smooth.glb")
    positions = glb["POSITION"].reshape(64, 96, 3)
    assert (positions[0, :, 1] > positions[-1, :, 1]).all()  # photo top row is higher
    assert (positions[:, 0, 0] < positions[:, -1, 0]).all()  # photo left is left
    assert (glb["POSITION"][:, 2] < 0).all()  # in front of a glTF camera looking down -Z
    points, _, _ = read_cloud(tmp_path / "out" / "smooth_points.ply")
    # the PLY overlays the GLB, to the quantisation's bound (1e-4 of the depth range at most)
    record = json.loads((tmp_path / "out" / "smooth.json").read_text())["glb"]
    grid = record["meshes"]["grid"]
    assert record["compression"] == "quantized"
    assert 0 < grid["position_error_bound_m"] <= 1e-4 * grid["depth_range_m"]
    assert grid["depth_range_m"] == pytest.approx(1.5, abs=1e-5)
    np.testing.assert_allclose(points, glb["POSITION"], atol=grid["position_error_bound_m"] + 1e-6)
    # faces are counter-clockwise seen from the camera: normals towards +Z
    corners = glb["POSITION"][glb["indices"]].astype(np.float64)
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert (face_normals[:, 2] > 0).all()


@pytest.mark.parametrize(
    ("name", "folder", "png_scale", "fx", "fy", "cx", "cy"),
    [
        ("00050", "nyu_metric3d", 0.001, 518.8579, 519.46961, 325.58245, 253.73617),
        ("0000000050", "kitti_metric3d", 1 / 256, 707.0493, 707.0493, 604.0814, 180.5066),
    ],
)
def test_ground_truth_depth_back_projects_exactly(
    tmp_path: Path,
    shared_dir: Path,
    name: str,
    folder: str,
    png_scale: float,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    assert_valid_glb: GlbCheck,
) -> None:
    data = shared_dir / "eval" / folder
    photo = next(data.glob(f"rgb_{name}.*"))
    depth_png = next(data.glob(f"*depth_{name}.png"))
    options = ConvertOptions(
        camera=CameraOptions(fx=fx, fy=fy, cx=cx, cy=cy), grid=2048, depth_png_scale=png_scale
    )
    result = convert_photo(photo, tmp_path, depth_file=depth_png, options=options)
    truth = np.asarray(Image.open(depth_png)).astype(np.float64) * png_scale
    reference = backproject_gltf(truth, result.intrinsics)
    points, colors, _ = read_cloud(tmp_path / f"{photo.stem}_points.ply")
    assert points.shape == reference.shape  # exactly the valid pixels
    relative = np.linalg.norm(points - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert relative.max() < 1e-4
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    np.testing.assert_array_equal(colors, rgb[truth > 0])
    assert_valid_glb(tmp_path / f"{photo.stem}.glb")


# --------------------------------------------------------------------------- colours


def test_texture_through_uvs_gives_the_photo_colour(tmp_path: Path, smooth_photo: Path) -> None:
    depth = plane_depth(tmp_path, (64, 96), 3.0)
    for texture_format, tolerance in (("png", 0), ("jpeg", 12)):
        out = tmp_path / texture_format
        options = ConvertOptions(camera=K, texture_format=texture_format)  # type: ignore[arg-type]
        convert_photo(smooth_photo, out, depth_file=depth, options=options)
        glb = glb_arrays(out / "smooth.glb")
        texture = glb_texture(out / "smooth.glb")
        h, w = texture.shape[:2]
        uv = glb["TEXCOORD_0"].astype(np.float64)
        texel = texture[
            np.clip(np.floor(uv[:, 1] * h), 0, h - 1).astype(int),
            np.clip(np.floor(uv[:, 0] * w), 0, w - 1).astype(int),
        ]
        # project each vertex back into the photo through the camera
        x, y, z = glb["POSITION"].astype(np.float64).T * np.array([[1], [-1], [-1]])
        k = Intrinsics(80.0, 90.0, 47.0, 30.5, 96, 64)
        u = np.round(k.fx * x / z + k.cx).astype(int)
        v = np.round(k.fy * y / z + k.cy).astype(int)
        rgb = np.asarray(Image.open(smooth_photo))
        difference = np.abs(texel.astype(int) - rgb[v, u].astype(int))
        assert difference.max() <= tolerance, texture_format


def test_poisson_colours_are_linear_and_match_the_photo(tmp_path: Path, smooth_photo: Path) -> None:
    depth = plane_depth(tmp_path, (64, 96), 3.0)
    options = ConvertOptions(camera=K, mesh="both", poisson_depth=7)
    result = convert_photo(smooth_photo, tmp_path, depth_file=depth, options=options)
    glb = glb_arrays(tmp_path / "smooth_poisson.glb")
    srgb = linear_to_srgb(glb["COLOR_0"][:, :3])
    x, y, z = glb["POSITION"].astype(np.float64).T * np.array([[1], [-1], [-1]])
    k = result.intrinsics
    u = np.round(k.fx * x / z + k.cx).astype(int)
    v = np.round(k.fy * y / z + k.cy).astype(int)
    inside = (u >= 2) & (u <= 93) & (v >= 2) & (v <= 61)  # the photo's frame, less its border
    assert inside.mean() > 0.8
    rgb = np.asarray(Image.open(smooth_photo)).astype(int)
    difference = np.abs(srgb[inside].astype(int) - rgb[v[inside], u[inside]])
    assert np.median(difference) <= 3
    assert np.percentile(difference, 95) <= 10
    # written linear: the sRGB value is brighter than the stored linear value mid-range
    mid = (srgb > 60) & (srgb < 200)
    assert (glb["COLOR_0"][:, :3][mid] * 255 < srgb[mid]).all()
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "smooth_poisson.ply"))
    ply_colors = np.round(np.asarray(mesh.vertex_colors) * 255).astype(np.uint8)
    # PLY: the GLB's vertices first, with the same colours as sRGB; then its edges' midpoints
    np.testing.assert_array_equal(ply_colors[: len(srgb)], srgb)


# --------------------------------------------------------------------------- real consumers


@pytest.mark.slow  # Poisson at depth 8 on 640x480: about 5 s
def test_every_output_is_accepted_by_real_consumers(tmp_path: Path, shared_dir: Path) -> None:
    frame = shared_dir / "real_midas"
    disparity = tmp_path / "disparity.npy"
    np.save(disparity, np.load(frame / "midas_small_outputs" / "disparity_00065.npy"))
    options = ConvertOptions(
        camera=CameraOptions(fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362),
        mesh="both",
        depth_kind="disparity",
        poisson_depth=8,
        face_budget=20_000,
    )
    result = convert_photo(frame / "rgb_00065.png", tmp_path, depth_file=disparity, options=options)
    paths = output_paths(tmp_path, "rgb_00065", "both")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "disparity.npy") == sorted(
        p.name for p in paths.values()
    )
    counts = result.counts
    assert counts["poisson_faces"] <= 20_000

    for key in ("glb", "poisson_glb"):
        report = assert_khronos_valid(paths[key])
        document = decode_glb_json(paths[key].read_bytes())
        camera = document["cameras"][0]["perspective"]
        assert camera["yfov"] == pytest.approx(result.intrinsics.yfov)
        assert camera["aspectRatio"] == pytest.approx(640 / 480)
        triangles = counts["grid_faces"] if key == "glb" else counts["poisson_faces"]
        assert drawn_triangles(paths[key]) == triangles
        modes = {p["mode"] for p in document["meshes"][0]["primitives"]}
        # the grid: triangle strips (the validator counts their joins as triangles too)
        assert modes == ({5} if key == "glb" else {4})
        if key == "poisson_glb":
            assert report["info"]["totalTriangleCount"] == triangles
        else:
            assert report["info"]["totalTriangleCount"] > triangles

    # the quantised grid (307,200 pixels) is split into primitives of at most 65,535 vertices
    # over windows of one vertex array: trimesh makes one geometry of each
    sidecar = json.loads(paths["sidecar"].read_text())
    record = sidecar["glb"]["meshes"]
    # the texture: the photo with the background layer's strip below it (one image, both GLBs)
    texture_size = tuple(sidecar["inpaint"]["texture_px"])
    assert sidecar["inpaint"]["photo_px"] == [640, 480]
    assert texture_size[0] == 640
    assert texture_size[1] > 480
    scene = trimesh.load(paths["glb"], force="scene", process=False)
    parts = list(scene.geometry.values())
    assert len(parts) == record["grid"]["primitives"] > 1
    assert sum(len(part.vertices) for part in parts) == record["grid"]["vertices"]
    assert record["grid"]["vertices"] > counts["grid_vertices"]  # shared rows count twice
    # trimesh reads the strips with their joins, triangles that repeat an index
    assert sum(count_drawn(part.faces) for part in parts) == counts["grid_faces"]
    assert {part.visual.material.baseColorTexture.size for part in parts} == {texture_size}
    # the Poisson GLB: the triangles the photo saw with its texture, the rest with vertex
    # colours (a second material): trimesh makes one geometry of each primitive
    poisson = list(
        trimesh.load(paths["poisson_glb"], force="scene", process=False).geometry.values()
    )
    assert len(poisson) == record["poisson"]["primitives"] == 2
    assert sum(len(part.faces) for part in poisson) == counts["poisson_faces"]
    assert sum(len(part.vertices) for part in poisson) == record["poisson"]["vertices"]
    images = [part.visual.material.baseColorTexture for part in poisson]
    assert [image.size for image in images if image is not None] == [texture_size]

    cloud = trimesh.load(paths["points"], process=False)
    assert len(cloud.vertices) == counts["points"] == 640 * 480
    o3d_cloud = o3d.io.read_point_cloud(str(paths["points"]))
    assert len(o3d_cloud.points) == counts["points"]
    assert o3d_cloud.has_colors()
    assert o3d_cloud.has_normals()
    o3d_mesh = o3d.io.read_triangle_mesh(str(paths["poisson_ply"]))
    assert len(o3d_mesh.triangles) == counts["poisson_ply_faces"]
    assert counts["poisson_ply_faces"] in (
        4 * counts["poisson_faces"],
        16 * counts["poisson_faces"],
    )
    assert len(o3d_mesh.vertices) == counts["poisson_ply_vertices"]
    assert o3d_mesh.has_vertex_colors()
    # (Open3D 0.20 misreads a quantised GLB's positions, lists or strips alike: the preview
    # reads GLBs itself; test_quantize compares it with what Open3D reads from a float32 file)

    sidecar = json.loads(paths["sidecar"].read_text())
    assert sidecar["intrinsics"]["source"] == "explicit"
    assert sidecar["depth"] == {
        "source": "file",
        "path": str(disparity),
        "kind": "disparity",
        "near_m": 1.0,
        "far_m": 10.0,
        "drop_far": False,
    }
    assert sidecar["counts"] == counts
    assert set(sidecar["timings_s"]) >= {"read", "depth", "geometry", "grid_mesh", "total"}


def test_disparity_depth_range_and_drop_far(tmp_path: Path, smooth_photo: Path) -> None:
    disparity = np.tile(np.linspace(0.0, 5.0, 96, dtype=np.float32), (64, 1))
    disparity[:, :20] = 0.0  # sky
    path = tmp_path / "d.npy"
    np.save(path, disparity)
    options = ConvertOptions(camera=K, depth_kind="disparity", near=2.0, far=8.0, drop_far=True)
    result = convert_photo(smooth_photo, tmp_path / "out", depth_file=path, options=options)
    points, _, _ = read_cloud(tmp_path / "out" / "smooth_points.ply")
    assert result.counts["points"] == 64 * (96 - 20)  # exactly the sky is gone
    assert -points[:, 2].min() <= 8.0 + 1e-5
    assert -points[:, 2].max() == pytest.approx(2.0, abs=1e-5)


# --------------------------------------------------------------------------- photos and the model


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_result(
    tmp_path: Path, parity_model: DepthModel, orientation: int
) -> None:
    upright = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB").resize((75, 50)))
    stored = np.ascontiguousarray(STORE[orientation](upright))
    exif = Image.Exif()
    exif[0x0112] = orientation
    (tmp_path / "rotated").mkdir()
    (tmp_path / "upright").mkdir()
    Image.fromarray(stored).save(tmp_path / "rotated" / "cat.png", exif=exif.tobytes())
    Image.fromarray(upright).save(tmp_path / "upright" / "cat.png")
    for folder in ("rotated", "upright"):
        convert_photo(tmp_path / folder / "cat.png", tmp_path / folder, model=parity_model)
    for name in ("cat.glb", "cat_points.ply", "cat_depth.png"):
        assert (tmp_path / "rotated" / name).read_bytes() == (
            tmp_path / "upright" / name
        ).read_bytes()
    sidecar = json.loads((tmp_path / "rotated" / "cat.json").read_text())
    assert sidecar["photo"]["exif_orientation"] == orientation
    assert (sidecar["photo"]["width"], sidecar["photo"]["height"]) == (75, 50)


def test_model_conversion_records_weights(
    tmp_path: Path, parity_model: DepthModel, assert_valid_glb: GlbCheck
) -> None:
    result = convert_photo(SAMPLES / "coffee.png", tmp_path, model=parity_model)
    sidecar = json.loads((tmp_path / "coffee.json").read_text())
    assert sidecar["model"]["weights_sha256"] == parity_model.weights_sha256
    assert sidecar["model"]["backend"] == parity_model.backend
    assert sidecar["intrinsics"]["source"] == "default"
    assert sidecar["intrinsics"]["hfov_deg"] == pytest.approx(60.0)
    assert result.counts["points"] == 400 * 600
    assert_valid_glb(tmp_path / "coffee.glb")


def test_grid_size() -> None:
    assert grid_size(3024, 4032, 1024) == (768, 1024)
    assert grid_size(480, 640, 1024) == (480, 640)  # never upsampled
    assert grid_size(1, 1, 1024) == (2, 2)


# --------------------------------------------------------------------------- errors and safety


def test_existing_outputs_are_never_overwritten(tmp_path: Path, smooth_photo: Path) -> None:
    depth = plane_depth(tmp_path, (64, 96), 2.0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "smooth.json").write_text("mine")
    with pytest.raises(OutputError, match=r"smooth\.json exists already"):
        convert_photo(smooth_photo, out, depth_file=depth, options=ConvertOptions(camera=K))
    assert [p.name for p in out.iterdir()] == ["smooth.json"]
    assert (out / "smooth.json").read_text() == "mine"
    convert_photo(
        smooth_photo, out, depth_file=depth, options=ConvertOptions(camera=K, overwrite=True)
    )
    assert json.loads((out / "smooth.json").read_text())["counts"]["points"] == 64 * 96


@pytest.mark.parametrize("content", ["zeros", "nan"])
def test_depth_file_without_values_is_an_input_error(
    tmp_path: Path, smooth_photo: Path, content: str
) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((64, 96)) if content == "zeros" else np.full((64, 96), np.nan))
    with pytest.raises(InputError, match="no usable value"):
        convert_photo(smooth_photo, tmp_path, depth_file=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "smooth.png"]


def test_flat_disparity_gives_a_flat_valid_result(
    tmp_path: Path, smooth_photo: Path, assert_valid_glb: GlbCheck
) -> None:
    path = tmp_path / "flat.npy"
    np.save(path, np.full((64, 96), 0.7, np.float32))
    options = ConvertOptions(camera=K, depth_kind="disparity", far=9.0)
    convert_photo(smooth_photo, tmp_path / "out", depth_file=path, options=options)
    points, _, _ = read_cloud(tmp_path / "out" / "smooth_points.ply")
    np.testing.assert_allclose(points[:, 2], -9.0, atol=1e-5)
    assert_valid_glb(tmp_path / "out" / "smooth.glb")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--near", "5", "--far", "2"], "--far must be greater than --near"),
        (["--grid", "0"], "--grid must be at least 2"),
        (["--fov", "-5"], "--fov"),
        (["--edge-threshold", "0.5"], "--edge-threshold must be above 1"),
        (["--focal-px", "500", "--focal-35mm", "26"], "focal"),
    ],
)
@pytest.mark.slow  # a subprocess per case
def test_cli_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("convert", SAMPLES / "coffee.png", "-o", tmp_path / "out", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a subprocess with Poisson: over 3 s
def test_cli_convert_with_depth_file(tmp_path: Path, smooth_photo: Path) -> None:
    depth = plane_depth(tmp_path, (64, 96), 2.0)
    result = run_cli(
        "convert",
        smooth_photo,
        "-o",
        tmp_path / "out",
        "--depth",
        depth,
        "--fov",
        "70",
        "--mesh",
        "both",
        "--format",
        "obj",
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\S*smooth\.png: 10 files in \d+\.\d s\n", result.stdout), result.stdout
    sidecar = json.loads((tmp_path / "out" / "smooth.json").read_text())
    assert sidecar["intrinsics"]["source"] == "fov"
    assert sidecar["intrinsics"]["hfov_deg"] == pytest.approx(70.0)
    for name in ("smooth.glb", "smooth_poisson.glb"):
        assert_khronos_valid(tmp_path / "out" / name)


def test_cli_evaluate_reproduces_the_real_midas_figure(tmp_path: Path, shared_dir: Path) -> None:
    frame = shared_dir / "real_midas"
    truth = tmp_path / "truth.npy"
    np.save(truth, np.load(frame / "depth_00065.npy").astype(np.float32))
    result = run_cli("evaluate", frame / "midas_small_outputs" / "disparity_00065.npy", truth)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert float(words[1]) == pytest.approx(0.099, abs=5e-4)
    assert float(words[3]) == pytest.approx(0.871, abs=5e-4)


def test_obj_format_loads_in_trimesh_with_its_texture(tmp_path: Path, smooth_photo: Path) -> None:
    ramp = np.linspace(1.5, 3.0, 64, dtype=np.float32)[:, None].repeat(96, axis=1)
    path = tmp_path / "ramp.npy"
    np.save(path, ramp)
    options = ConvertOptions(camera=K, formats=("obj",), texture_format="png")
    result = convert_photo(smooth_photo, tmp_path / "out", depth_file=path, options=options)
    out = tmp_path / "out"
    assert {"smooth.obj", "smooth.mtl", "smooth_texture.png"} <= {p.name for p in out.iterdir()}
    mesh = trimesh.load(out / "smooth.obj", process=False, maintain_order=True)
    assert len(mesh.faces) == result.counts["grid_faces"]
    glb = glb_arrays(out / "smooth.glb")
    bound = json.loads((out / "smooth.json").read_text())["glb"]["meshes"]["grid"]
    # same axes as the GLB (the GLB's positions are quantised, within the sidecar's bound)
    tolerance = bound["position_error_bound_m"] + 1e-5
    np.testing.assert_allclose(mesh.vertices, glb["POSITION"], atol=tolerance)
    assert mesh.visual.material.image.size == (96, 64)
    # OBJ's v runs upwards: trimesh's UVs are the GLB's with v flipped
    np.testing.assert_allclose(mesh.visual.uv[:, 0], glb["TEXCOORD_0"][:, 0], atol=1e-5)
    np.testing.assert_allclose(mesh.visual.uv[:, 1], 1 - glb["TEXCOORD_0"][:, 1], atol=1e-5)
    with pytest.raises(ValueError, match="formats must be one of obj"):
        ConvertOptions(formats=("fbx",)).check()


def _write_pfm(path: Path, values: np.ndarray, *, little_endian: bool) -> None:
    """Write a single-channel PFM file (rows bottom to top, as the format stores them)."""
    dtype = "<f4" if little_endian else ">f4"
    header = f"Pf\n{values.shape[1]} {values.shape[0]}\n{-1.0 if little_endian else 1.0}\n"
    path.write_bytes(header.encode("ascii") + values[::-1].astype(dtype).tobytes())


@pytest.mark.parametrize("kind", ["pfm-le", "pfm-be", "png-mm", "npy-half-size"])
def test_depth_file_formats_give_the_same_geometry(
    tmp_path: Path, smooth_photo: Path, kind: str
) -> None:
    depth = np.round(np.linspace(1.0, 4.0, 96)[None].repeat(64, axis=0), 3).astype(np.float32)
    path = tmp_path / f"depth.{kind[:3]}"
    if kind.startswith("pfm"):
        _write_pfm(path, depth, little_endian=kind == "pfm-le")
    elif kind == "png-mm":
        Image.fromarray(np.round(depth * 1000).astype(np.uint16)).save(path)
    else:
        np.save(path, depth[::2, ::2])  # half size: resized to the photo (nearest)
    result = convert_photo(
        smooth_photo, tmp_path / "out", depth_file=path, options=ConvertOptions(camera=K)
    )
    points, _, _ = read_cloud(tmp_path / "out" / "smooth_points.ply")
    expected = depth if kind != "npy-half-size" else depth[::2, ::2].repeat(2, 0).repeat(2, 1)
    reference = backproject_gltf(expected, result.intrinsics)
    np.testing.assert_allclose(points, reference, rtol=1e-5, atol=1e-6)


def test_depth_file_errors(tmp_path: Path, smooth_photo: Path) -> None:
    text = tmp_path / "depth.txt"
    text.write_text("1 2 3")
    with pytest.raises(InputError, match=r"must be \.npy, \.pfm or a 16-bit \.png"):
        convert_photo(smooth_photo, tmp_path / "o", depth_file=text)
    broken = tmp_path / "broken.pfm"
    broken.write_bytes(b"Pf\n10 10\n-1.0\n" + b"\0" * 12)
    with pytest.raises(InputError, match="truncated PFM"):
        convert_photo(smooth_photo, tmp_path / "o", depth_file=broken)
    cube = tmp_path / "cube.npy"
    np.save(cube, np.ones((4, 4, 4)))
    with pytest.raises(InputError, match="one 2-D map"):
        convert_photo(smooth_photo, tmp_path / "o", depth_file=cube)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
