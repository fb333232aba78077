"""The Blender add-on in real Blender: the ``bpy`` 4.5 module in its own virtual environment.

Blender runs as a subprocess of ``.venv-blender/bin/python`` (``bpy`` pins numpy<2, so it
cannot share the project's environment) executing ``tests/blender_facts.py``, which enables the
add-on from ``blender_addon/``, runs its operators on files that the real ``depth2mesh convert``
wrote, and prints facts; the assertions are here. Without ``.venv-blender`` these tests skip,
and fail when ``CI`` is set.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from depth2mesh.exchange.gltf import read_glb_json
from depth2mesh.exchange.gltf_read import read_glb_mesh

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "blender_addon"
HELPER = Path(__file__).with_name("blender_facts.py")
BLENDER_VENV = REPO / ".venv-blender"
SAMPLES = REPO / "samples"
NYU = {"fx": 518.8579, "fy": 519.4696, "cx": 325.5824, "cy": 253.7362}
FACTS_PREFIX = "DEPTH2MESH_FACTS "
FOV_TOLERANCE_DEG = 0.1


# ---------------------------------------------------------------------------------------------
# Fixtures: Blender, the CLI, and results made by the real CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def blender_python() -> Path:
    """The Python of ``.venv-blender`` (with ``bpy``); missing: skip, or fail under CI."""
    for candidate in (BLENDER_VENV / "bin" / "python", BLENDER_VENV / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    message = (
        f"Blender's virtual environment {BLENDER_VENV} is missing; create it with "
        "python3.11 -m venv .venv-blender && .venv-blender/bin/pip install 'bpy==4.5.*'"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def cli() -> str:
    """The project's own ``depth2mesh`` executable (beside the interpreter running pytest)."""
    beside = Path(sys.executable).with_name("depth2mesh")
    found = str(beside) if beside.exists() else shutil.which("depth2mesh")
    if found is None:
        pytest.fail("the depth2mesh executable is not installed (pip install -e .)")
    return found


def convert(cli: str, photo: Path, out: Path, *options: str) -> dict[str, Any]:
    """Run ``depth2mesh convert``; return the sidecar with the result's paths added."""
    command = [cli, "convert", str(photo), "--out", str(out), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    stem = out / photo.stem
    sidecar = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    sidecar["paths"] = {
        "stem": str(stem),
        "json": str(stem.with_suffix(".json")),
        "glb": str(stem.with_suffix(".glb")),
        "points": f"{stem}_points.ply",
        "poisson_glb": f"{stem}_poisson.glb",
        "poisson_ply": f"{stem}_poisson.ply",
    }
    return sidecar


@pytest.fixture(scope="module", params=["quantized", "draco"])
def landscape(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shared_dir: Path,
    cli: str,
) -> dict:
    """NYU frame 00065 with the REAL MiDaS small disparity and NYU's intrinsics (640x480).

    Once with the default quantised GLBs, once with Draco GLBs (Blender ships the decoder).
    """
    compression: str = request.param
    if compression == "draco" and importlib.util.find_spec("DracoPy") is None:
        message = "DracoPy is missing: pip install -e '.[draco]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp(f"landscape-{compression}")
    disparity = np.load(shared_dir / "real_midas" / "midas_small_outputs" / "disparity_00065.npy")
    np.save(work / "disparity.npy", disparity.astype(np.float32))
    options = [f"--{key}={value}" for key, value in NYU.items()]
    return convert(
        cli,
        shared_dir / "real_midas" / "rgb_00065.png",
        work / "out",
        "--depth",
        str(work / "disparity.npy"),
        "--depth-kind",
        "disparity",
        "--near",
        "1.2",
        "--far",
        "5",
        "--grid",
        "160",
        "--mesh",
        "both",
        "--glb-compression",
        compression,
        *options,
    )


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory, cli: str) -> dict:
    """A portrait photo (coffee.png turned a quarter) with a smooth synthetic disparity."""
    work = tmp_path_factory.mktemp("portrait")
    photo = work / "coffee_portrait.png"
    Image.open(SAMPLES / "coffee.png").convert("RGB").transpose(Image.Transpose.ROTATE_90).save(
        photo
    )
    width, height = Image.open(photo).size
    assert height > width
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    disparity = 0.3 + 0.6 * rows + 0.1 * np.sin(6.0 * cols)  # the bottom is nearest
    np.save(work / "disparity.npy", disparity.astype(np.float32))
    return convert(
        cli,
        photo,
        work / "out",
        "--depth",
        str(work / "disparity.npy"),
        "--depth-kind",
        "disparity",
        "--fov",
        "50",
        "--grid",
        "120",
    )


def run_blender(python: Path, work: Path, spec: dict) -> dict[str, Any]:
    """Run the helper in Blender with user folders of its own; return its facts."""
    work.mkdir(parents=True, exist_ok=True)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ)
    for name in ("SCRIPTS", "CONFIG", "RESOURCES", "EXTENSIONS", "DATAFILES"):
        env[f"BLENDER_USER_{name}"] = str(work / "blender-user" / name.lower())
    done = subprocess.run(
        [str(python), str(HELPER), str(spec_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(FACTS_PREFIX)]
    output = (
        f"Blender helper exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    assert done.returncode == 0, output
    assert lines, output
    return json.loads(lines[-1][len(FACTS_PREFIX) :])


def legacy(spec: dict) -> dict:
    return {"addon": {"mode": "legacy", "source": str(ADDON)}, **spec}


@pytest.fixture(scope="module")
def landscape_facts(
    blender_python: Path, landscape: dict, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    paths = landscape["paths"]
    actions = [
        {"op": "import", "filepath": paths[key]}
        for key in ("glb", "points", "poisson_ply", "poisson_glb")
    ]
    actions += [
        {"op": "import", "filepath": paths["stem"] + "_missing.glb"},
        {"op": "import", "filepath": paths["json"]},
    ]
    stem = Path(paths["stem"]).name
    cols = landscape["counts"]["grid_cols"]
    spec = legacy(
        {
            "actions": actions,
            "rows": {f"{stem}_points": cols},
            "overlay": {"grid": stem, "points": f"{stem}_points", "cols": cols},
            "photo_parts": {stem: photo_part(landscape)},
        }
    )
    return run_blender(blender_python, tmp_path_factory.mktemp("blender-landscape"), spec)


@pytest.fixture(scope="module")
def portrait_facts(
    blender_python: Path, portrait: dict, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    paths = portrait["paths"]
    stem = Path(paths["stem"]).name
    spec = legacy(
        {
            "actions": [
                {
                    "op": "import_files",
                    "directory": str(Path(paths["stem"]).parent),
                    "files": [Path(paths[key]).name for key in ("points", "glb")],
                }
            ],
            "rows": {f"{stem}_points": portrait["counts"]["grid_cols"]},
            "photo_parts": {stem: photo_part(portrait)},
        }
    )
    return run_blender(blender_python, tmp_path_factory.mktemp("blender-portrait"), spec)


def photo_part(sidecar: dict) -> tuple[float, float]:
    """The (u, v) share of the grid GLB's texture that is the photo (the rest: the layer)."""
    layer = sidecar.get("inpaint", {})
    if not layer.get("texture_px"):
        return 1.0, 1.0
    (width, height), (photo_width, photo_height) = layer["texture_px"], layer["photo_px"]
    return photo_width / width, photo_height / height


# ---------------------------------------------------------------------------------------------
# Importing results
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_addon_is_enabled_with_menu_entries_and_drop_handler(landscape_facts: dict) -> None:
    assert landscape_facts["blender"].startswith("4.5")
    assert landscape_facts["addon_enabled"]
    assert landscape_facts["import_menu_has_entries"]
    assert landscape_facts["file_handler"] == {
        "operator": "import_scene.depth2mesh_result",
        "extensions": ".glb;.ply",
    }
    assert landscape_facts["actions"][:4] == [{"result": ["FINISHED"]}] * 4


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_imported_objects_have_the_sidecar_counts(landscape: dict, landscape_facts: dict) -> None:
    counts = landscape["counts"]
    stem = Path(landscape["paths"]["stem"]).name
    objects = landscape_facts["objects"]
    meshes = landscape["glb"]["meshes"]  # what a glTF reader gets (Draco splits a few vertices)
    if landscape["glb"]["compression"] == "quantized":
        assert meshes["grid"]["vertices"] == counts["grid_vertices"]  # one primitive here
        # the Poisson GLB's two primitives (textured where seen, vertex colours elsewhere)
        # each hold every vertex
        poisson = meshes["poisson"]
        assert poisson["vertices"] == counts["poisson_vertices"] * poisson["primitives"]
    assert objects[stem]["vertices"] == meshes["grid"]["vertices"]
    assert objects[stem]["faces"] == counts["grid_faces"]
    assert objects[f"{stem}_points"]["vertices"] == counts["points"]
    assert objects[f"{stem}_points"]["faces"] == 0
    assert objects[f"{stem}_points"]["evaluated"]["points"] == counts["points"]
    # the PLY: the same surface with its triangles split in four, once or twice (colours at a
    # finer spacing)
    assert objects[f"{stem}_poisson"]["vertices"] == counts["poisson_ply_vertices"]
    assert objects[f"{stem}_poisson"]["faces"] == counts["poisson_ply_faces"]
    assert counts["poisson_ply_faces"] in (
        4 * counts["poisson_faces"],
        16 * counts["poisson_faces"],
    )
    # Blender makes each primitive's vertices from the indices it uses: a vertex on the line
    # between the textured and the vertex-coloured triangles once per primitive
    poisson_glb = read_glb_mesh(Path(landscape["paths"]["poisson_glb"]).read_bytes())
    referenced = len(np.unique(poisson_glb.faces))  # vertices come once per primitive here
    assert objects[f"{stem} (Poisson)"]["vertices"] == referenced
    assert objects[f"{stem} (Poisson)"]["faces"] == counts["poisson_faces"]


def _sources(entry: dict) -> list[dict]:
    assert len(entry["materials"]) == 1, entry["materials"]
    return entry["materials"][0]["base_color"]


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_grid_mesh_material_is_the_photo_texture(landscape: dict, landscape_facts: dict) -> None:
    stem = Path(landscape["paths"]["stem"]).name
    textures = [s for s in _sources(landscape_facts["objects"][stem]) if s["type"] == "TEX_IMAGE"]
    assert len(textures) == 1
    photo = np.asarray(Image.open(landscape["photo"]["path"]).convert("RGB"), dtype=np.float64)
    layer = landscape["inpaint"]
    assert layer["mode"] == "on"  # the default: the photo on top, the layer's strip below it
    assert layer["photo_px"] == [photo.shape[1], photo.shape[0]]
    assert textures[0]["image_size"] == layer["texture_px"]
    # The texture is the photo (JPEG in the GLB): the same mean colour, channel by channel
    # (the strip, the layer's colours from the photo's far sides, is a sixth of the image).
    np.testing.assert_allclose(textures[0]["image_mean"], photo.mean(axis=(0, 1)) / 255, atol=0.03)


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_point_cloud_renders_its_colour_attribute(landscape: dict, landscape_facts: dict) -> None:
    stem = Path(landscape["paths"]["stem"]).name
    points = landscape_facts["objects"][f"{stem}_points"]
    readers = [s for s in _sources(points) if s["type"] == "ATTRIBUTE"]
    assert len(readers) == 1
    assert readers[0]["attribute_type"] == "GEOMETRY"
    evaluated = points["evaluated"]
    assert readers[0]["attribute"] in evaluated["point_attributes"]
    assert evaluated["point_materials"] == [points["materials"][0]["name"]]
    assert evaluated["mesh_vertices"] == 0  # rendered as points, not as a mesh
    assert "GeometryNodeMeshToPoints" in points["node_group"]
    # Radii grow with distance: about a grid cell at 1.2 m to 5 m from the camera.
    cell = (landscape["intrinsics"]["width"] / landscape["counts"]["grid_cols"]) / NYU["fx"]
    assert 0.3 * cell * 1.2 < evaluated["radius_min"] < evaluated["radius_max"] < 2 * cell * 6


def _read_ply_colors(path: str, count: int) -> np.ndarray:
    data = Path(path).read_bytes()
    body = data[data.index(b"end_header\n") + len(b"end_header\n") :]
    record = np.dtype(
        [("xyz", "<f4", 3), ("rgb", "u1", 3), ("n", "<f4", 3)]
    )  # the documented layout of <stem>_points.ply
    return np.frombuffer(body, dtype=record, count=count)["rgb"]


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_point_colours_are_the_files_colours(landscape: dict, landscape_facts: dict) -> None:
    stem = Path(landscape["paths"]["stem"]).name
    samples = np.array(landscape_facts["objects"][f"{stem}_points"]["sample_colors"])
    srgb = _read_ply_colors(landscape["paths"]["points"], landscape["counts"]["points"])
    expected = srgb[samples[:, 0].astype(int)] / 255.0
    linear = np.where(expected <= 0.04045, expected / 12.92, ((expected + 0.055) / 1.055) ** 2.4)
    assert len(samples) >= 40
    assert np.ptp(linear) > 0.3
    np.testing.assert_allclose(samples[:, 1:], linear, atol=2e-3)


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_poisson_meshes_show_their_vertex_colours(landscape: dict, landscape_facts: dict) -> None:
    stem = Path(landscape["paths"]["stem"]).name
    ply, glb = (
        landscape_facts["objects"][name] for name in (f"{stem}_poisson", f"{stem} (Poisson)")
    )
    # the PLY: vertex colours everywhere; the GLB: the photo where the photo saw the surface
    # (material 0), vertex colours elsewhere (material 1)
    assert len(glb["materials"]) == 2
    textures = [s for s in glb["materials"][0]["base_color"] if s["type"] == "TEX_IMAGE"]
    assert len(textures) == 1
    # the grid GLB's texture: the photo, with the background layer's strip below it
    assert textures[0]["image_size"] == landscape["inpaint"]["texture_px"]
    for name, sources in (
        (f"{stem}_poisson", _sources(ply)),
        (f"{stem} (Poisson)", glb["materials"][1]["base_color"]),
    ):
        entry = landscape_facts["objects"][name]
        attributes = [a["name"] for a in entry["color_attributes"]]
        readers = [s for s in sources if s["type"] == "VERTEX_COLOR"]
        assert attributes, name
        assert len(readers) == 1, name
        # "" is Blender's "the active colour attribute"
        assert readers[0]["attribute"] in ["", *attributes], name


def _assert_camera_matches(facts: dict, result: dict) -> None:
    intrinsics = result["intrinsics"]
    camera = facts["camera"]
    assert facts["cameras"] == [camera["name"]]  # one camera, whatever was imported
    assert camera["tag"] == result["paths"]["json"]
    assert abs(camera["hfov_deg"] - intrinsics["hfov_deg"]) < FOV_TOLERANCE_DEG
    assert abs(camera["vfov_deg"] - intrinsics["vfov_deg"]) < FOV_TOLERANCE_DEG
    assert facts["resolution"] == [intrinsics["width"], intrinsics["height"]]
    assert facts["resolution_percentage"] == 100
    np.testing.assert_allclose(camera["location"], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(camera["forward"], [0, 1, 0], atol=1e-6)  # glTF -Z = Blender +Y
    np.testing.assert_allclose(camera["up"], [0, 0, 1], atol=1e-6)
    # The principal point: the frame's centre, in tangent units.
    expected = [
        ((intrinsics["width"] - 1) / 2 - intrinsics["cx"]) / intrinsics["fx"],
        (intrinsics["cy"] - (intrinsics["height"] - 1) / 2) / intrinsics["fy"],
    ]
    np.testing.assert_allclose(camera["center_tan"], expected, atol=1e-4)


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_landscape_camera_is_the_glbs_with_the_photos_view(
    landscape: dict, landscape_facts: dict
) -> None:
    assert landscape_facts["camera"]["name"] == "photo camera"  # the GLB's, not a second one
    _assert_camera_matches(landscape_facts, landscape)


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_portrait_camera_fits_the_long_side(portrait: dict, portrait_facts: dict) -> None:
    # Both files in one call, the point cloud first: it added a camera, which the GLB reused.
    assert portrait_facts["actions"] == [{"result": ["FINISHED"]}]
    assert portrait["intrinsics"]["height"] > portrait["intrinsics"]["width"]
    assert portrait_facts["camera"]["sensor_fit"] == "AUTO"
    _assert_camera_matches(portrait_facts, portrait)


@pytest.mark.slow  # real Blender (a bpy subprocess)
@pytest.mark.parametrize("which", ["landscape", "portrait"])
def test_photo_is_upright_in_z_up(
    which: str, request: pytest.FixtureRequest, landscape: dict, portrait: dict
) -> None:
    result = landscape if which == "landscape" else portrait
    facts = request.getfixturevalue(f"{which}_facts")
    stem = Path(result["paths"]["stem"]).name
    grid, points = facts["objects"][stem], facts["objects"][f"{stem}_points"]
    assert grid["top_mean_z"] > grid["bottom_mean_z"] + 0.3  # texture top above its bottom
    assert points["first_row_mean_z"] > points["last_row_mean_z"] + 0.3  # row 0 is the top
    assert grid["bbox_min"][1] > 0
    assert points["bbox_min"][1] > 0


@pytest.mark.slow  # real Blender (a bpy subprocess)
@pytest.mark.parametrize("which", ["landscape", "portrait"])
def test_camera_sees_each_vertex_where_the_photo_shows_it(
    which: str, request: pytest.FixtureRequest, landscape: dict, portrait: dict
) -> None:
    result = landscape if which == "landscape" else portrait
    facts = request.getfixturevalue(f"{which}_facts")
    stem = Path(result["paths"]["stem"]).name
    intrinsics = result["intrinsics"]
    # fx and fy of NYU differ by 0.1 %: Blender's square pixels are exact on the long side only.
    anisotropy = abs(intrinsics["fx"] / intrinsics["fy"] - 1)
    tolerance = 1e-4 + anisotropy / 2
    # the GLB's storage moves a vertex by up to its bound per axis: seen from the nearest depth
    grid = result["glb"]["meshes"]["grid"]
    nearest = -grid["bounds_m"][1][2]
    moved = 3**0.5 * grid["position_error_bound_m"] * intrinsics["fx"] / intrinsics["width"]
    stored = tolerance + moved / nearest + 0.5 / 65535  # and a 16-bit texture coordinate
    assert facts["objects"][stem]["projection_vs_uv_max_error"] < stored
    assert facts["objects"][f"{stem}_points"]["projection_vs_grid_max_error"] < tolerance


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_point_cloud_overlays_the_mesh(landscape: dict, landscape_facts: dict) -> None:
    stem = Path(landscape["paths"]["stem"]).name
    grid, points = landscape_facts["objects"][stem], landscape_facts["objects"][f"{stem}_points"]
    # The same pixel is at the same place in the GLB and in the PLY: to float32 precision and
    # the bound that the GLB's storage states per axis (at most 1e-4 of the depth range)
    grid_record = landscape["glb"]["meshes"]["grid"]
    assert grid_record["position_error_bound_m"] <= 1e-4 * grid_record["depth_range_m"]
    tolerance = 1e-5 + 3**0.5 * grid_record["position_error_bound_m"]
    assert landscape_facts["overlay_max_error"] < tolerance
    # The grid mesh drops only pixels no triangle uses: its box holds the points' box, to
    # 0.1 m (the background layer and the rim may reach past the photo's border).
    assert np.all(np.asarray(grid["bbox_min"]) <= np.asarray(points["bbox_min"]) + 0.1)
    assert np.all(np.asarray(grid["bbox_max"]) >= np.asarray(points["bbox_max"]) - 0.1)


def _one_line_error(outcome: dict) -> str:
    assert "error" in outcome, outcome
    text = outcome["error"].strip()
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_import_failures_are_one_line_reports(landscape_facts: dict) -> None:
    missing, not_a_result = landscape_facts["actions"][4:6]
    assert "no such file" in _one_line_error(missing)
    assert "expected a .glb or .ply" in _one_line_error(not_a_result)


# ---------------------------------------------------------------------------------------------
# Photo to 3D: the real CLI, run by the add-on
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_photo_to_3d_runs_the_cli_and_imports_the_result(
    blender_python: Path, cli: str, parity_weights: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture", encoding="utf-8")
    preferences = {
        "executable": cli,
        "weights": str(parity_weights),
        "mesh": "grid",
        "near": 1.0,
        "far": 6.0,
        "extra_args": "--grid 96",
        "import_points": True,
    }
    chelsea, rocket = SAMPLES / "chelsea.png", SAMPLES / "rocket.jpg"
    spec = legacy(
        {
            "preferences": preferences,
            "actions": [
                # As a script runs it: blocking.
                {"op": "photo", "filepath": str(chelsea), "output_dir": str(tmp_path / "out")},
                # As the UI runs it: in the background, polled on timer events.
                {"op": "photo_modal", "filepath": str(rocket), "output_dir": str(tmp_path / "ui")},
                {"op": "photo_modal", "filepath": str(chelsea), "escape_after": 2},
                # Failures.
                {"op": "photo", "filepath": str(broken), "output_dir": str(tmp_path / "bad")},
                {"op": "preferences", "values": {"executable": str(tmp_path / "no-such-cli")}},
                {"op": "photo", "filepath": str(chelsea)},
            ],
            "rows": {"chelsea_points": 96, "rocket_points": 96},
        }
    )
    facts = run_blender(blender_python, tmp_path / "blender", spec)
    blocking, background, cancelled, bad_photo, _, bad_cli = facts["actions"]
    objects = facts["objects"]

    assert blocking == {"result": ["FINISHED"]}
    sidecar = json.loads((tmp_path / "out" / "chelsea.json").read_text(encoding="utf-8"))
    assert sidecar["depth"]["near_m"] == 1.0
    assert sidecar["depth"]["far_m"] == 6.0
    assert sidecar["counts"]["grid_cols"] == 96
    assert objects["chelsea"]["vertices"] == sidecar["counts"]["grid_vertices"]
    assert objects["chelsea_points"]["vertices"] == sidecar["counts"]["points"]
    assert objects["chelsea"]["top_mean_z"] > objects["chelsea"]["bottom_mean_z"]
    assert (
        objects["chelsea_points"]["first_row_mean_z"] > objects["chelsea_points"]["last_row_mean_z"]
    )

    assert background["result"] == ["FINISHED"]
    assert background["timers_left"] == 0
    assert background["status_texts"][-1] is None
    running = [text for text in background["status_texts"] if text]
    assert running
    assert all(text.startswith("depth2mesh: converting rocket.jpg") for text in running)
    assert "rocket.jpg converted" in background["reports"][-1][1]
    rocket_sidecar = json.loads((tmp_path / "ui" / "rocket.json").read_text(encoding="utf-8"))
    assert objects["rocket"]["vertices"] == rocket_sidecar["counts"]["grid_vertices"]
    camera = facts["camera"]  # the latest result's camera is the scene camera
    assert camera["tag"] == str(tmp_path / "ui" / "rocket.json")
    assert abs(camera["hfov_deg"] - rocket_sidecar["intrinsics"]["hfov_deg"]) < FOV_TOLERANCE_DEG
    assert abs(camera["vfov_deg"] - rocket_sidecar["intrinsics"]["vfov_deg"]) < FOV_TOLERANCE_DEG
    assert facts["resolution"] == [640, 427]
    assert len(facts["cameras"]) == 2  # one per result

    assert cancelled["result"] == ["CANCELLED"]
    assert cancelled["ticks"] == 2
    assert cancelled["process_returncode"] != 0  # the process was stopped
    assert cancelled["reports"] == [
        [["WARNING"], "depth2mesh: conversion of chelsea.png cancelled"]
    ]
    assert cancelled["timers_left"] == 0

    assert _one_line_error(bad_photo).startswith("Error: depth2mesh failed: error:")
    assert "broken.png" in bad_photo["error"]
    assert "no-such-cli" in _one_line_error(bad_cli)


# ---------------------------------------------------------------------------------------------
# The package: extension manifest, legacy bl_info, imports
# ---------------------------------------------------------------------------------------------


def _blender_ext_cli(blender_python: Path) -> tuple[Path, Path]:
    scripts = next(BLENDER_VENV.glob("lib/python3*/site-packages/bpy/*/scripts"), None)
    if scripts is None:
        scripts = next(BLENDER_VENV.glob("Lib/site-packages/bpy/*/scripts"))
    cli = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    tags = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    assert cli.exists()
    assert tags.exists()
    return cli, tags


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_extension_builds_installs_and_imports(
    blender_python: Path, portrait: dict, tmp_path: Path
) -> None:
    ext_cli, tags = _blender_ext_cli(blender_python)
    build = subprocess.run(
        [
            str(blender_python),
            str(ext_cli),
            "build",
            "--source-dir",
            str(ADDON),
            "--output-dir",
            str(tmp_path),
            "--valid-tags",
            str(tags),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (package,) = tmp_path.glob("depth2mesh-*.zip")
    names = zipfile.ZipFile(package).namelist()
    assert {"blender_manifest.toml", "__init__.py", "importer.py", "operators.py"} <= set(names)
    assert not any("__pycache__" in name for name in names)

    spec = {
        "addon": {"mode": "extension", "zip": str(package)},
        "actions": [{"op": "import", "filepath": portrait["paths"]["glb"]}],
    }
    facts = run_blender(blender_python, tmp_path / "blender", spec)
    assert facts["addon_module"] == "bl_ext.user_default.depth2mesh"
    assert facts["addon_enabled"]
    assert facts["actions"] == [{"result": ["FINISHED"]}]
    stem = Path(portrait["paths"]["stem"]).name
    assert facts["objects"][stem]["vertices"] == portrait["counts"]["grid_vertices"]


def test_manifest_and_bl_info_agree() -> None:
    tomllib = pytest.importorskip("tomllib")
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text(encoding="utf-8"))
    assert manifest["type"] == "add-on"
    assert "Import-Export" in manifest["tags"]
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    # "Photo to 3D" runs depth2mesh, which downloads the weights when none are found
    assert set(manifest["permissions"]) == {"files", "network"}
    minimum = tuple(int(part) for part in manifest["blender_version_min"].split("."))
    assert minimum >= (4, 2, 0)
    tree = ast.parse((ADDON / "__init__.py").read_text(encoding="utf-8"))
    (bl_info,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "bl_info"
    ]
    assert bl_info["category"] == "Import-Export"
    assert bl_info["blender"] == minimum
    assert ".".join(map(str, bl_info["version"])) == manifest["version"]


def test_addon_imports_only_blender_and_the_standard_library() -> None:
    allowed = {"bpy", "bpy_extras", "mathutils", *sys.stdlib_module_names}
    for path in ADDON.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] in allowed, f"{path.name} imports {module}"


# ---------------------------------------------------------------------------------------------
# The add-on's pure-Python parts, without Blender
# ---------------------------------------------------------------------------------------------


def _load(name: str) -> Any:
    """Load one bpy-free module of the add-on by path (its package needs bpy)."""
    spec = importlib.util.spec_from_file_location(f"d2m_addon_{name}", ADDON / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def test_command_is_an_argument_list_with_the_preferences(tmp_path: Path) -> None:
    runner = _load("runner")
    executable = tmp_path / "depth2mesh"
    executable.write_text("#!/bin/sh\n", encoding="utf-8")
    executable.chmod(0o755)
    settings = runner.ConvertSettings(
        executable=str(executable),
        weights="w.pt",
        mesh="both",
        near=0.5,
        far=4.0,
        fov=70.0,
        extra_args="--grid 256 --texture-format 'png'",
    )
    command = runner.build_command(settings, "/photos/a b.jpg", "/out dir")
    assert command[:3] == [str(executable), "convert", "/photos/a b.jpg"]
    assert command[3:9] == ["--out", "/out dir", "--model", "midas-small", "--mesh", "both"]
    assert command[9:13] == ["--near", "0.5", "--far", "4.0"]
    assert command[13:17] == ["--fov", "70.0", "--weights", str(Path("w.pt").resolve())]
    assert command[17:] == ["--overwrite", "--grid", "256", "--texture-format", "png"]
    with pytest.raises(runner.ConvertError, match="near"):
        runner.build_command(
            runner.ConvertSettings(executable=str(executable), near=3, far=2), "p", "o"
        )
    with pytest.raises(runner.ConvertError, match="not found on PATH"):
        runner.resolve_executable("depth2mesh-surely-not-installed")


def test_job_reports_the_clis_error_line() -> None:
    runner = _load("runner")
    script = "print('working'); print('error: x.png: cannot read'); raise SystemExit(1)"
    job = runner.ConvertJob([sys.executable, "-c", script])
    code = job.wait(timeout=60)
    assert code == 1
    assert job.failure(code) == "error: x.png: cannot read"
    assert "PYTHONHOME" not in runner.child_environment()


def test_camera_settings_for_landscape_and_portrait() -> None:
    sidecar = _load("sidecar")
    landscape = sidecar.camera_settings(sidecar.Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480))
    assert landscape.lens == pytest.approx(36 * 500 / 640)
    assert (landscape.shift_x, landscape.shift_y) == (0.0, 0.0)
    portrait = sidecar.camera_settings(sidecar.Intrinsics(500.0, 400.0, 239.5, 330.0, 480, 640))
    assert portrait.lens == pytest.approx(36 * 400 / 640)  # fy spans the long (vertical) side
    assert portrait.shift_y == pytest.approx((330.0 - 319.5) / 640)
    assert (portrait.resolution_x, portrait.resolution_y) == (480, 640)
    assert sidecar.sidecar_path("/nowhere/x_points.ply") is None


@pytest.mark.slow  # real Blender (a bpy subprocess)
def test_split_quantised_grid_imports_whole(
    blender_python: Path, cli: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A grid of more than 65,535 vertices: primitives over windows of one vertex array."""
    work = tmp_path_factory.mktemp("split")
    width, height = Image.open(SAMPLES / "coffee.png").size
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    disparity = np.repeat(0.2 + 0.8 * rows, width, axis=1)
    np.save(work / "disparity.npy", disparity)
    depth = ["--depth", str(work / "disparity.npy"), "--depth-kind", "disparity"]
    options = ["--grid", "400", "--fov", "60", *depth]
    result = convert(cli, SAMPLES / "coffee.png", work / "out", *options)
    grid = result["glb"]["meshes"]["grid"]
    assert grid["primitives"] >= 2
    # each primitive a triangle strip whose joins repeat an index: Blender leaves them out
    primitives = read_glb_json(result["paths"]["glb"])["meshes"][0]["primitives"]
    assert {primitive["mode"] for primitive in primitives} == {5}
    stem = Path(result["paths"]["stem"]).name
    spec = legacy({"actions": [{"op": "import", "filepath": result["paths"]["glb"]}]})
    facts = run_blender(blender_python, work / "blender", spec)
    imported = facts["objects"][stem]
    assert imported["faces"] == result["counts"]["grid_faces"]
    assert result["counts"]["grid_vertices"] <= imported["vertices"] <= grid["vertices"]
    # Blender's Z-up: glTF (x, y, z) is Blender (x, -z, y)
    low, high = np.array(grid["bounds_m"])
    expected_min = [low[0], -high[2], low[1]]
    expected_max = [high[0], -low[2], high[1]]
    tolerance = grid["position_error_bound_m"] + 1e-5
    np.testing.assert_allclose(imported["bbox_min"], expected_min, atol=tolerance)
    np.testing.assert_allclose(imported["bbox_max"], expected_max, atol=tolerance)
    assert len(_sources(imported)) >= 1


def test_addon_models_are_the_registrys() -> None:
    from depth2mesh.depth.registry import MODELS

    runner = _load("runner")
    assert (
        tuple((spec.name, spec.title, spec.summary, spec.output) for spec in MODELS.values())
        == runner.MODELS
    )
    assert runner.METRIC_MODELS == ("dav2-metric-indoor", "dav2-metric-outdoor")


@pytest.mark.parametrize(
    ("model", "extra", "scaled"),
    [
        ("midas-small", "", True),
        ("dav2-small", "--grid 64", True),
        ("dav2-metric-indoor", "", False),
        ("dav2-metric-outdoor", "--grid 64", False),
        ("midas-small", "--depth-at 10,20=1.5", False),
        ("dav2-small", "--depth-at=10,20=1.5 --depth-at 30,5=4", False),
    ],
)
def test_command_passes_the_model_and_near_far_only_where_they_apply(
    tmp_path: Path, model: str, extra: str, scaled: bool
) -> None:
    runner = _load("runner")
    executable = tmp_path / "depth2mesh"
    executable.write_text("#!/bin/sh\n", encoding="utf-8")
    executable.chmod(0o755)
    # near > far is refused only where near/far are passed
    settings = runner.ConvertSettings(
        executable=str(executable),
        weights="w.pt",
        model=model,
        near=3.0,
        far=2.0 if not scaled else 5.0,
        extra_args=extra,
    )
    command = runner.build_command(settings, "p.jpg", "out")
    assert command[command.index("--model") + 1] == model
    assert ("--near" in command) is scaled
    assert ("--far" in command) is scaled
    assert ("--weights" in command) is (model == "midas-small")  # the MiDaS checkpoint only
    assert command[len(command) - len(extra.split()) :] == extra.split()
    with pytest.raises(runner.ConvertError, match="model must be one of midas-small"):
        runner.build_command(runner.ConvertSettings(model="dav3"), "p", "o")


def test_result_properties_name_the_model() -> None:
    sidecar = _load("sidecar")
    data = {
        "depth": {"source": "Depth Anything V2 Metric Indoor Small (Hypersim)", "kind": "metric"},
        "model": {
            "name": "Depth Anything V2 Metric Indoor Small (Hypersim)",
            "model": "dav2-metric-indoor",
            "input_size": 392,
            "max_depth_m": 20.0,
        },
    }
    assert sidecar.result_properties(data, "/r/a.json") == {
        "depth2mesh_sidecar": "/r/a.json",
        "depth2mesh_depth_source": "network",
        "depth2mesh_depth_kind": "metric",
        "depth2mesh_model": "dav2-metric-indoor",
        "depth2mesh_model_title": "Depth Anything V2 Metric Indoor Small (Hypersim)",
        "depth2mesh_input_size": 392,
        "depth2mesh_max_depth_m": 20.0,
    }
    from_file = {"depth": {"source": "file", "kind": "disparity"}, "model": None}
    assert sidecar.result_properties(from_file, "/r/b.json") == {
        "depth2mesh_sidecar": "/r/b.json",
        "depth2mesh_depth_source": "file",
        "depth2mesh_depth_kind": "disparity",
    }
    assert sidecar.result_properties(None, None) == {}


@pytest.mark.slow  # real Blender (a bpy subprocess) running the CLI with a Depth Anything model
def test_photo_to_3d_with_a_metric_model(
    blender_python: Path,
    cli: str,
    parity_weights: Path,
    upcast_weights: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the CLI that the add-on runs finds the metric weights through their variable
    monkeypatch.setenv(
        "DEPTH2MESH_WEIGHTS_DAV2_METRIC_INDOOR", str(upcast_weights["metric_hypersim"])
    )
    monkeypatch.setenv("DEPTH2MESH_OFFLINE", "1")
    preferences = {
        "executable": cli,
        "weights": str(parity_weights),  # MiDaS's: not passed with the metric model
        "model": "dav2-metric-indoor",
        "mesh": "grid",
        "near": 1.0,
        "far": 6.0,  # would be a usage error with a metric model: not passed
        "extra_args": "--grid 64 --input-size 392 --backend torch",
    }
    chelsea = SAMPLES / "chelsea.png"
    spec = legacy(
        {
            "preferences": preferences,
            "actions": [
                {"op": "photo", "filepath": str(chelsea), "output_dir": str(tmp_path / "metric")},
                # the operator's own choice overrides the preferences'
                {"op": "preferences", "values": {"extra_args": "--grid 64"}},
                {
                    "op": "photo",
                    "filepath": str(SAMPLES / "coffee.png"),
                    "output_dir": str(tmp_path / "midas"),
                    "model": "midas-small",
                },
            ],
        }
    )
    facts = run_blender(blender_python, tmp_path / "blender", spec)
    metric, _, midas = facts["actions"]
    assert metric == {"result": ["FINISHED"]}, metric
    sidecar = json.loads((tmp_path / "metric" / "chelsea.json").read_text(encoding="utf-8"))
    assert sidecar["model"]["model"] == "dav2-metric-indoor"
    assert sidecar["depth"]["kind"] == "metric"
    assert "near_m" not in sidecar["depth"]
    properties = facts["objects"]["chelsea"]["properties"]
    assert properties["depth2mesh_model"] == "dav2-metric-indoor"
    assert properties["depth2mesh_depth_kind"] == "metric"
    assert properties["depth2mesh_max_depth_m"] == 20.0
    assert properties["depth2mesh_input_size"] == 392
    assert facts["objects"]["chelsea"]["vertices"] == sidecar["counts"]["grid_vertices"]

    assert midas == {"result": ["FINISHED"]}, midas
    sidecar = json.loads((tmp_path / "midas" / "coffee.json").read_text(encoding="utf-8"))
    assert sidecar["model"]["model"] == "midas-small"
    assert (sidecar["depth"]["near_m"], sidecar["depth"]["far_m"]) == (1.0, 6.0)
    assert facts["objects"]["coffee"]["properties"]["depth2mesh_model"] == "midas-small"
