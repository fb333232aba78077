"""three.js' GLTFLoader (npm ``three``) opens the GLBs of every compression (issue 15).

``tests/three_loader.mjs`` loads the files in headless Chromium (Debian's ``chromium``, through
playwright-core) with ``GLTFLoader`` and the ``DRACOLoader`` that three ships (its decoder is
served from ``node_modules/three``, nothing is fetched from elsewhere), and reports the vertex
and triangle counts and the world bounding box three.js built; they are compared with the
sidecar. Under CI a missing node, Chromium or ``npm ci`` fails the tests; elsewhere they skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from helpers.browser import require_browser, run_driver

from depth2mesh.exchange.draco import draco_installed
from depth2mesh.exchange.gltf import read_glb_json
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions, convert_photo

REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("three_loader.mjs")
THREE = REPO / "node_modules" / "three"

pytestmark = pytest.mark.slow  # a browser


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """coffee.png at grid 400 (106,800 vertices: a split grid) with both meshes, per compression."""
    require_browser(THREE / "package.json")
    compressions = ["none", "quantized"]
    if draco_installed():
        compressions.append("draco")
    elif os.environ.get("CI"):
        pytest.fail("DracoPy is missing: pip install -e '.[draco]'")
    work = tmp_path_factory.mktemp("three")
    photo = REPO / "samples" / "coffee.png"
    height, width = cv2.imread(str(photo)).shape[:2]
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    disparity = 0.2 + 0.7 * rows + 0.1 * np.sin(9.0 * cols) * (cols > 0.5)
    np.save(work / "disparity.npy", disparity)
    results = {}
    for compression in compressions:
        options = ConvertOptions(
            grid=400,
            mesh="both",
            depth_kind="disparity",
            camera=CameraOptions(fov_deg=60.0),
            glb_compression=compression,  # type: ignore[arg-type]
        )
        out = work / compression
        convert_photo(photo, out, depth_file=work / "disparity.npy", options=options)
        results[compression] = json.loads((out / "coffee.json").read_text())
        results[compression]["files"] = [str(out / "coffee.glb"), str(out / "coffee_poisson.glb")]
    return results


@pytest.fixture(scope="module")
def loaded(converted: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    files = [file for sidecar in converted.values() for file in sidecar["files"]]
    report = run_driver(DRIVER, {"files": files, "three": str(THREE)})
    by_file = {result["file"]: result for result in report["results"]}
    return {name: [by_file[f] for f in sidecar["files"]] for name, sidecar in converted.items()}


@pytest.mark.parametrize("compression", ["none", "quantized", "draco"])
def test_gltfloader_builds_what_the_sidecar_says(
    compression: str, converted: dict[str, dict[str, Any]], loaded: dict[str, list[dict]]
) -> None:
    if compression not in converted:
        pytest.skip("DracoPy is not installed")
    sidecar = converted[compression]
    record = sidecar["glb"]
    grid, poisson = loaded[compression]
    for name, result, faces in (
        ("grid", grid, sidecar["counts"]["grid_faces"]),
        ("poisson", poisson, sidecar["counts"]["poisson_faces"]),
    ):
        assert "error" not in result, result["error"]
        mesh = record["meshes"][name]
        assert result["extensionsUsed"] == (
            [] if record["extension"] is None else [record["extension"]]
        )
        assert result["triangles"] == faces
        assert result["vertices"] == mesh["vertices"]
        assert result["primitives"] == mesh["primitives"]
        assert result["cameras"] == 1
        # three.js' world box: the dequantised vertices, node transforms applied
        tolerance = mesh["position_error_bound_m"] + 1e-5
        np.testing.assert_allclose(result["box"], mesh["bounds_m"], atol=tolerance)
    assert grid["textured"]
    if compression != "draco":  # the grid's triangle strips, unrolled with their joins
        primitives = read_glb_json(sidecar["files"][0])["meshes"][0]["primitives"]
        assert {primitive["mode"] for primitive in primitives} == {5}
        assert grid["degenerate"] > 0
    if compression == "quantized":
        assert record["meshes"]["grid"]["primitives"] >= 2  # 106,800 vertices: split
