"""The web page (issue 7): its helpers, its server, and a real headless Chromium using it.

The browser tests need Debian's ``chromium`` (``/usr/bin/chromium``, or ``$DEPTH2MESH_CHROMIUM``)
and ``npm ci`` (``node_modules/playwright-core``); under CI they fail when either is missing,
elsewhere they skip. All traffic stays on 127.0.0.1: the page's requests to any other host are
recorded and aborted by the driver (``tests/web_browser.mjs``), and the tests require none.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import struct
import urllib.request
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from helpers.browser import require_browser, run_driver
from helpers.glb import GlbCheck
from helpers.gltf_validator import issue_summary, validate_glb

from depth2mesh.depth.model import DepthModel
from depth2mesh.depth.registry import MODEL_NAMES, get_model
from depth2mesh.errors import WeightsError
from depth2mesh.exchange.gltf import decode_glb_json, encode_glb
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.pipeline.convert import ConvertOptions

try:
    import gradio as gr
except ImportError:  # the [web] extra is not installed
    if os.environ.get("CI"):
        raise
    pytest.skip("gradio is missing: pip install -e '.[web]'", allow_module_level=True)

from depth2mesh.apps import web

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DRIVER = Path(__file__).with_name("web_browser.mjs")

# The browser tests' server: coffee.png (467 KB, 600x400) passes both limits, astronaut.png
# (792 KB) is over the upload limit and rocket.jpg (640x427 = 0.273 MP) over the pixel limit.
UPLOAD_LIMIT_MB = 600_000 / web.MIB
PIXEL_LIMIT_MP = 0.25
BACKGROUND = np.array([0.12, 0.12, 0.14]) * 255  # the 3D view's clear colour, RGB


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> bytes:
    assert url.startswith("http://127.0.0.1:"), f"only loopback traffic, got {url}"
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
        return body


def _variance(png: Path) -> float:
    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert image is not None, f"{png} is not a PNG"
    return float(image.astype(np.float64).var())


# --------------------------------------------------------------------------- helpers


def _asymmetric_glb(path: Path) -> Path:
    """A small grid whose bounding box is far off the -z axis, like real scenes' boxes."""
    rows, cols = 6, 9
    u, v = np.meshgrid(np.linspace(-0.2, 1.4, cols), np.linspace(-0.3, 0.9, rows))
    z = -(2.0 + u + 0.5 * v)
    positions = np.stack([u * -z / 2, -v * -z / 2, z], axis=-1).reshape(-1, 3).astype(np.float32)
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    path.write_bytes(encode_glb(positions, faces, name="asymmetric"))
    return path


def test_viewer_glb_centres_the_bounds_on_the_optical_axis(
    tmp_path: Path, assert_valid_glb: GlbCheck
) -> None:
    original = _asymmetric_glb(tmp_path / "scene.glb")
    low, high = web.glb_bounds(original.read_bytes())
    assert abs(low[0] + high[0]) > 0.5  # far off the axis before

    shown, view_low, view_high = web.viewer_glb(original, tmp_path / "viewer.glb")
    data = shown.read_bytes()
    centre = (view_low + view_high) / 2
    assert centre[:2] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert centre[2] == pytest.approx((low[2] + high[2]) / 2)
    assert web.glb_bounds(data)[0] == pytest.approx(view_low, abs=1e-5)
    assert web.glb_bounds(data)[1] == pytest.approx(view_high, abs=1e-5)
    # the photo's mesh is unchanged: same accessors, same bytes before the added triangle
    before, after = decode_glb_json(original.read_bytes()), decode_glb_json(data)
    assert after["accessors"][: len(before["accessors"])] == before["accessors"]
    assert after["meshes"][0] == before["meshes"][0]
    assert_valid_glb(shown)


def test_viewer_camera_starts_at_the_photos_viewpoint() -> None:
    low, high = np.array([-2.0, -1.5, -6.0]), np.array([2.0, 1.5, -1.0])
    # no intrinsics: at the origin, looking down -z at the box centre (0, 0, -3.5)
    assert web.viewer_camera(low, high) == (90.0, 90.0, 3.5)
    # a landscape photo whose vertical FOV (42 degrees) fits the viewer's 0.8 rad: origin
    landscape = Intrinsics(519.6, 519.6, 299.5, 199.5, 600, 400, "fov")
    assert web.viewer_camera(low, high, landscape) == (90.0, 90.0, 3.5)
    # a portrait photo (vertical FOV 75 degrees): straight back until its frame fits
    portrait = Intrinsics(346.4, 346.4, 199.5, 299.5, 400, 600, "fov")
    alpha, beta, radius = web.viewer_camera(low, high, portrait)
    assert (alpha, beta) == (90.0, 90.0)
    half_height = 300 / 346.4 * 3.5  # the frame's half-height at the box centre's depth
    assert math.atan(half_height / radius) == pytest.approx(web.VIEWER_FOV / 2, abs=1e-4)


def test_safe_stem_and_sentence() -> None:
    assert web.safe_stem("holiday photo (1).JPG") == "holiday_photo_1"
    assert web.safe_stem("../../etc/passwd") == "passwd"
    assert web.safe_stem("....jpg") == "photo"
    assert web.safe_stem("é.png") == "photo"
    with pytest.raises(ValueError, match="far") as caught:
        ConvertOptions(near=5.0, far=2.0).check()
    assert web._sentence(caught.value) == "Far must be greater than Near (5.0), got 2.0."
    assert web._sentence("a\nb.") == "a b."


def test_result_store_keeps_only_the_newest(tmp_path: Path) -> None:
    store = web.ResultStore(tmp_path, keep=2)
    folders = [store.new_folder() for _ in range(4)]
    assert [folder.is_dir() for folder in folders] == [False, False, True, True]
    store.discard(folders[3])
    assert not folders[3].exists()
    assert folders[2].is_dir()


def test_limits_are_checked() -> None:
    web.WebLimits().check()
    with pytest.raises(ValueError, match="keep_results"):
        web.WebLimits(keep_results=0).check()
    with pytest.raises(ValueError, match="max_upload_bytes"):
        web.WebLimits(max_upload_bytes=0).check()


# --------------------------------------------------------------------------- the handler


@pytest.fixture
def handler(parity_model: DepthModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # where Model3D copies to
    limits = web.WebLimits(max_upload_bytes=600_000, max_pixels=250_000)
    models = web.as_web_models(parity_model)
    return web._Converter(models, web.ResultStore(tmp_path / "results", 3), limits)


def _call(handler: Any, path: Path, name: str | None = None, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "model": "midas-small",
        "camera_mode": web.CAMERA_EXIF,
        "fov": 60.0,
        "near": 1.0,
        "far": 10.0,
        "mesh": "grid",
        "grid": 128,
        "drop_far": False,
    }
    arguments.update(options)
    return handler({"path": str(path), "orig_name": name or path.name}, **arguments)


def _bomb(folder: Path) -> Path:
    """A PNG declaring 20000x20000 pixels, with no pixel data (it is never decoded)."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    data += struct.pack(">I", zlib.crc32(chunk))
    data += struct.pack(">I", 0) + b"IDAT" + struct.pack(">I", zlib.crc32(b"IDAT"))
    (folder / "bomb.png").write_bytes(data)
    return folder / "bomb.png"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "notes.jpg", r"^notes\.jpg is not an image file"),
        (_bomb, r"^bomb\.png has far more than the 0\.25 megapixels"),
        (lambda d: SAMPLES / "rocket.jpg", r"^rocket\.jpg has 640x427 = 0\.273 megapixels"),
        (lambda d: SAMPLES / "astronaut.png", r"^astronaut\.png is 0\.8 MB, more than the 0\.6"),
    ],
    ids=["text-file", "bomb", "too-many-pixels", "too-large"],
)
def test_handler_refuses_with_one_sentence(
    handler: Any, tmp_path: Path, make: Any, expected: str
) -> None:
    (tmp_path / "notes.jpg").write_text("these are notes, not a photo\n")
    with pytest.raises(gr.Error) as caught:
        _call(handler, make(tmp_path))
    message = caught.value.message
    assert message.endswith("."), message
    assert "\n" not in message, message
    assert ". " not in message, message
    assert str(tmp_path) not in message
    assert "Traceback" not in message
    assert re.match(expected, message), message
    results = tmp_path / "results"
    assert not results.exists() or list(results.iterdir()) == []  # nothing left behind


def test_handler_reports_bad_options_and_escapes_names(handler: Any, tmp_path: Path) -> None:
    with pytest.raises(gr.Error) as caught:
        _call(handler, SAMPLES / "chelsea.png", near=5.0, far=2.0)
    assert caught.value.message == "Far must be greater than Near (5.0), got 2.0."
    (tmp_path / "x.jpg").write_text("not a photo")
    with pytest.raises(gr.Error) as caught:
        _call(handler, tmp_path / "x.jpg", name="<img src=x onerror=alert(1)>.jpg")
    assert "<img" not in caught.value.message
    assert "&lt;img" in caught.value.message


def test_handler_returns_the_page_contents(handler: Any) -> None:
    heat, (photo, depth), viewer, downloads, summary = _call(handler, SAMPLES / "chelsea.png")
    assert Path(heat).name == "chelsea_depth_inferno.png"
    assert cv2.imread(photo).shape == cv2.imread(depth).shape == (300, 451, 3)
    assert [Path(p).name for p in downloads] == [
        "chelsea.glb",
        "chelsea_points.ply",
        "chelsea_depth.png",
    ]
    assert isinstance(viewer, gr.Model3D)
    assert Path(str(viewer.value["path"])).name == "viewer.glb"
    assert viewer.camera_position[:2] == (90.0, 90.0)
    assert "not the official MiDaS" in summary  # the random test weights are called out
    assert "Depth: MiDaS v2.1 small (midas-small, input 256 px), nearest content at 1 m" in summary


@pytest.mark.slow
def test_handler_shows_the_poisson_mesh_when_asked(handler: Any) -> None:
    _, _, viewer, downloads, summary = _call(handler, SAMPLES / "chelsea.png", mesh="poisson")
    names = [Path(p).name for p in downloads]
    assert names == [
        "chelsea.glb",
        "chelsea_poisson.glb",
        "chelsea_points.ply",
        "chelsea_poisson.ply",
        "chelsea_depth.png",
    ]
    shown = decode_glb_json(Path(str(viewer.value["path"])).read_bytes())
    assert shown["meshes"][0]["name"] == "chelsea (Poisson)"
    assert "Poisson triangles" in summary


# --------------------------------------------------------------------------- the models


def test_model_choice_is_the_registry_with_one_line_each() -> None:
    choices = web.model_choices()
    assert [name for _, name in choices] == list(MODEL_NAMES)
    for label, name in choices:
        spec = get_model(name)
        assert label == f"{spec.title}: {spec.summary}"
        assert spec.summary
        assert "\n" not in spec.summary


def test_near_far_hide_for_metric_models_only() -> None:
    near, far, sky, note = web.model_controls("dav2-metric-outdoor")
    assert near["visible"] is False
    assert far["visible"] is False
    assert note["visible"] is True
    assert "at most 80 m" in note["value"]
    assert "saturates" in sky["label"]
    near, far, sky, note = web.model_controls("midas-small")
    assert near["visible"] is True
    assert far["visible"] is True
    assert note["visible"] is False
    assert sky["label"] == "Leave out the sky (everything at Far)"


def test_near_far_hide_for_moge2_which_also_estimates_the_camera() -> None:
    near, far, sky, note = web.model_controls("moge2-small")
    assert (near["visible"], far["visible"], note["visible"]) == (False, False, True)
    assert "estimates the camera" in note["value"]
    assert web.CAMERA_EXIF in note["value"]
    assert "mask" in sky["label"]


@pytest.mark.slow  # builds a ViT-S MoGe-2 and converts: seconds
def test_handler_with_moge2_uses_its_camera_and_its_metres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: dict[str, str]
) -> None:
    from helpers.moge2 import pinhole_checkpoint, synthetic_photo

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    weights = pinhole_checkpoint(tmp_path / "model.pt")
    # served with a Depth Anything input size: MoGe-2 keeps its own token count
    load = web.model_loader(
        device="cpu", backend="torch", weights={"moge2-small": weights}, input_size=392
    )
    models = web.WebModels("moge2-small", load)
    handler = web._Converter(models, web.ResultStore(tmp_path / "results", 3), web.WebLimits())
    photo = tmp_path / "no_exif.png"
    cv2.imwrite(str(photo), synthetic_photo(120, 160, 5)[..., ::-1])
    # the page's Near and Far (sent whatever the model) do not apply: no refusal
    *_, downloads, summary = _call(handler, photo, model="moge2-small", near=1.0, far=10.0)
    sidecar = json.loads(Path(downloads[0]).with_suffix(".json").read_text())
    assert sidecar["intrinsics"]["source"] == "estimated by moge2-small"
    assert sidecar["model"]["model"] == "moge2-small"
    assert sidecar["model"]["input_size"] == 1200
    assert sidecar["normals"]["source"] == "moge2-small"
    assert "estimated by moge2-small" in summary
    assert "Depth: MoGe-2" in summary
    assert "1200 tokens" in summary
    fov = sidecar["intrinsics"]["hfov_deg"]
    assert fov != pytest.approx(web.DEFAULT_FOV_DEG, abs=1.0)
    # "The FOV below" imposes the slider's
    *_, downloads, summary = _call(
        handler, photo, model="moge2-small", camera_mode=web.CAMERA_FOV, fov=50.0
    )
    sidecar = json.loads(Path(downloads[0]).with_suffix(".json").read_text())
    assert (sidecar["intrinsics"]["source"], sidecar["intrinsics"]["hfov_deg"]) == (
        "fov",
        pytest.approx(50.0),
    )


@pytest.fixture
def two_models(
    parity_weights: Path, upcast_weights: dict[str, Path], isolated_env: dict[str, str]
) -> dict[str, Any]:
    """A loader of the parity weights of midas-small and dav2-metric-indoor, counting loads;
    dav2-small has no weights (offline, empty cache)."""
    load = web.model_loader(
        device="cpu",
        backend="torch",
        weights={
            "midas-small": parity_weights,
            "dav2-metric-indoor": upcast_weights["metric_hypersim"],
        },
        input_size=392,
    )
    calls: list[str] = []

    def counting(name: str) -> DepthModel:
        calls.append(name)
        return load(name)

    return {"load": counting, "calls": calls}


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_models_load_on_first_use_and_keep_only_the_last(two_models: dict[str, Any]) -> None:
    models = web.WebModels("midas-small", two_models["load"])
    assert models.current is None  # nothing loaded before it is used
    midas = models.get("midas-small")
    assert models.get("midas-small") is midas
    assert two_models["calls"] == ["midas-small"]
    released = weakref.ref(midas)
    del midas
    indoor = models.get("dav2-metric-indoor")
    assert released() is None  # the first network is gone: one in memory at a time
    assert models.current is indoor
    assert (indoor.spec.name, indoor.input_size) == ("dav2-metric-indoor", 392)
    with pytest.raises(WeightsError):
        models.get("dav2-small")
    assert models.current is None
    assert models.get("midas-small").spec.name == "midas-small"
    assert two_models["calls"] == [
        "midas-small",
        "dav2-metric-indoor",
        "dav2-small",
        "midas-small",
    ]


@pytest.mark.slow  # loads two models and converts: seconds
def test_handler_uses_the_chosen_model_and_shows_load_errors(
    two_models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    models = web.WebModels("midas-small", two_models["load"])
    handler = web._Converter(models, web.ResultStore(tmp_path / "results", 3), web.WebLimits())
    # Near > Far would be refused for a relative model: a metric model ignores both
    *_, downloads, summary = _call(
        handler, SAMPLES / "chelsea.png", model="dav2-metric-indoor", near=5.0, far=2.0
    )
    sidecar = json.loads(Path(downloads[0]).with_suffix(".json").read_text())
    assert sidecar["model"]["model"] == "dav2-metric-indoor"
    assert sidecar["model"]["official_weights"] is None
    assert sidecar["depth"]["kind"] == "metric"
    assert "Near and Far do not apply" in summary
    assert "sha256 not published" in summary
    assert "Warning" not in summary  # the release's sha256 is unknown: no false alarm
    with pytest.raises(gr.Error) as caught:
        _call(handler, SAMPLES / "chelsea.png", model="dav2-small")
    message = caught.value.message
    assert message.startswith("Depth Anything V2 Small (dav2-small) cannot be loaded: ")
    assert message.endswith("; the other models still work.")
    assert "\n" not in message
    *_, downloads, summary = _call(handler, SAMPLES / "chelsea.png")
    sidecar = json.loads(Path(downloads[0]).with_suffix(".json").read_text())
    assert sidecar["model"]["model"] == "midas-small"
    assert "not the official MiDaS v2.1 small release" in summary


# --------------------------------------------------------------------------- the server


def test_serve_binds_loopback_queues_and_cleans_up(parity_model: DepthModel) -> None:
    previous = os.environ.get("GRADIO_TEMP_DIR")
    port = _free_port()
    server = web.serve(port=port, model=parity_model, block=False)
    try:
        assert server.url == f"http://127.0.0.1:{port}/"
        assert os.environ["GRADIO_TEMP_DIR"] == str(server.work_dir)
        assert b"depth2mesh" in _get(server.url)
        # one conversion at a time; the others wait in a bounded queue
        (convert,) = [fn for fn in server.app.fns.values() if fn.api_name == "convert"]
        assert convert.concurrency_limit == 1
        assert server.app._queue.max_size == web.DEFAULT_QUEUE_SIZE
        assert server.app.max_file_size == web.DEFAULT_MAX_UPLOAD_MB * web.MIB
    finally:
        server.close()
    assert not server.work_dir.exists()
    assert os.environ.get("GRADIO_TEMP_DIR") == previous
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser_ready() -> None:
    require_browser()


@pytest.fixture(scope="module")
def page_server(browser_ready: None, parity_model: DepthModel) -> Iterator[Any]:
    server = web.serve(
        port=_free_port(),
        model=parity_model,
        max_upload_mb=UPLOAD_LIMIT_MB,
        max_megapixels=PIXEL_LIMIT_MP,
        block=False,
    )
    try:
        yield server
    finally:
        server.close()


def _browse(job: dict[str, Any]) -> dict[str, Any]:
    return run_driver(DRIVER, job)


def _content_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of what is not the 3D view's background (2 px border off)."""
    content = np.abs(image.astype(np.float64) - BACKGROUND).max(axis=2) > 12
    content[:2], content[-2:], content[:, :2], content[:, -2:] = False, False, False, False
    rows = np.flatnonzero(content.mean(axis=1) > 0.1)  # edge cuts leave holes: not 0.5
    cols = np.flatnonzero(content.mean(axis=0) > 0.1)
    assert rows.size, "the 3D view shows no model"
    assert cols.size, "the 3D view shows no model"
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _likeness(view: np.ndarray, photo: np.ndarray) -> float:
    """Correlation of the view's grey levels with the photo's, where the view shows the mesh."""
    shown = np.abs(view.astype(np.float64) - BACKGROUND).max(axis=2) > 12
    size = photo.shape[1], photo.shape[0]
    grey = cv2.resize(view.astype(np.float64).mean(axis=2), size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(shown.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return float(np.corrcoef(grey[mask], photo.astype(np.float64).mean(axis=2)[mask])[0, 1])


@pytest.mark.slow
def test_page_turns_an_uploaded_photo_into_depth_and_3d(page_server: Any, tmp_path: Path) -> None:
    page_png, canvas_png = tmp_path / "page.png", tmp_path / "canvas.png"
    report = _browse(
        {
            "url": page_server.url,
            "photo": str(SAMPLES / "coffee.png"),
            "options": {"grid": 256},
            "expect": "result",
            "screenshot": str(page_png),
            "canvasScreenshot": str(canvas_png),
        }
    )
    assert report["toasts"] == []
    # progress was shown while it worked (gradio shows the stage with a percentage, or only the
    # elapsed time when the conversion ends before the page samples the bar again)
    assert report["progressTexts"], "no progress was shown"
    assert all(re.search(r"\d", text) for text in report["progressTexts"])

    # the heat map and the photo | depth slider
    heat = cv2.imdecode(np.frombuffer(_get(report["heatSrc"]), np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape == (171, 256, 3)  # the depth pictures come at the grid's size
    assert heat.std() > 10
    assert report["sliderImages"] == 2

    # the downloads: a GLB the Khronos validator accepts, the PLY and the 16-bit depth PNG
    links = {item["name"]: item["href"] for item in report["downloads"]}
    assert list(links) == ["coffee.glb", "coffee_points.ply", "coffee_depth.png"]
    glb = tmp_path / "coffee.glb"
    glb.write_bytes(_get(links["coffee.glb"]))
    assert glb.read_bytes()[:4] == b"glTF"
    validation = validate_glb(glb)
    issues = validation["issues"]
    assert issues["numErrors"] == 0, issue_summary(validation)
    assert issues["numWarnings"] == 0, issue_summary(validation)
    primitives = decode_glb_json(glb.read_bytes())["meshes"][0]["primitives"]
    assert {primitive["mode"] for primitive in primitives} == {5}  # strips: Babylon draws them
    assert _get(links["coffee_points.ply"]).startswith(b"ply\nformat binary_little_endian")
    depth = cv2.imdecode(np.frombuffer(_get(links["coffee_depth.png"]), np.uint8), -1)
    assert depth.dtype == np.uint16
    assert depth.shape == (171, 256)

    # the 3D view: a WebGL canvas showing the mesh from the photo's viewpoint, so that it
    # looks like the photo: a centred, upright frame of the photo's aspect ratio, as tall as
    # the photo's vertical FOV (42.1 degrees) is in the viewer's 0.8 rad
    assert report["canvases"] == 1
    assert _variance(canvas_png) > 200
    view = cv2.cvtColor(cv2.imread(str(canvas_png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, width = view.shape[:2]
    # where the photo's frame must be: centred, as tall as its vertical FOV is in the viewer's
    # (the background layer may go on past the frame's edges behind a near object along them,
    # so the frame is found by the photo it shows, not by where the mesh ends)
    expected = (200 / (300 / math.tan(math.radians(30)))) / math.tan(web.VIEWER_FOV / 2)
    photo = cv2.cvtColor(cv2.imread(str(SAMPLES / "coffee.png")), cv2.COLOR_BGR2RGB)

    def frame(scale: float, shift: float = 0.0) -> np.ndarray:
        box_height = expected * height * scale
        box_width = box_height * 600 / 400
        top = round(height / 2 - box_height / 2)
        left = round(width / 2 - box_width / 2 + shift * box_width)
        return view[max(top, 0) : top + round(box_height), max(left, 0) : left + round(box_width)]

    framed = frame(1.0)
    likeness = _likeness(framed, photo)
    assert likeness > 0.5
    # ... at that size and place: a frame a sixth larger or smaller, or shifted, is less alike
    for scale, shift in ((1 / 1.15, 0.0), (1.15, 0.0), (1.0, 0.15), (1.0, -0.15)):
        assert likeness > _likeness(frame(scale, shift), photo) + 0.05, (scale, shift)
    # the mesh fills at least the frame
    top, bottom, left, right = _content_box(view)
    half_height, half_width = expected * height / 2, expected * height * 600 / 400 / 2
    assert top <= height / 2 - half_height + 2
    assert bottom >= height / 2 + half_height - 2
    assert left <= width / 2 - half_width + 2
    assert right >= width / 2 + half_width - 2
    # ... and shows the photo the right way round (not mirrored, not upside down)
    assert likeness > _likeness(framed, photo[:, ::-1]) + 0.2
    assert likeness > _likeness(framed, photo[::-1]) + 0.2

    # the whole page is not blank
    assert _variance(page_png) > 500


@pytest.mark.slow
def test_page_shows_one_sentence_for_a_text_file_named_jpg(
    page_server: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("Shopping list: eggs, milk. This is not a photo.\n")
    report = _browse({"url": page_server.url, "photo": str(notes), "expect": "error"})
    assert report["toasts"] == ["notes.jpg is not an image file (or a format Pillow cannot read)."]


@pytest.mark.slow
def test_page_refuses_too_large_uploads_with_one_sentence(page_server: Any) -> None:
    big = _browse(
        {"url": page_server.url, "photo": str(SAMPLES / "astronaut.png"), "expect": "error"}
    )
    assert any(
        "exceed the maximum allowed size" in text and "astronaut.png" in text
        for text in big["toasts"]
    ), big["toasts"]
    wide = _browse(
        {"url": page_server.url, "photo": str(SAMPLES / "rocket.jpg"), "expect": "error"}
    )
    assert wide["toasts"] == [
        "rocket.jpg has 640x427 = 0.273 megapixels, more than the 0.25 megapixels this page "
        "accepts; scale it down first."
    ]


@pytest.mark.slow
def test_page_converts_a_sample_photo_in_one_click(page_server: Any) -> None:
    report = _browse(
        {"url": page_server.url, "sample": 1, "options": {"grid": 128}, "expect": "result"}
    )
    assert report["toasts"] == []
    assert next(item["name"] for item in report["downloads"]) == "chelsea.glb"
    assert "chelsea.png" in report["summary"]


@pytest.fixture
def two_model_server(
    browser_ready: None,
    parity_weights: Path,
    upcast_weights: dict[str, Path],
    isolated_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """A page that finds midas-small's and dav2-metric-indoor's parity weights through their
    variables, as ``depth2mesh serve`` would; dav2-small has none (offline, empty cache)."""
    monkeypatch.setenv("DEPTH2MESH_WEIGHTS", str(parity_weights))
    monkeypatch.setenv(
        "DEPTH2MESH_WEIGHTS_DAV2_METRIC_INDOOR", str(upcast_weights["metric_hypersim"])
    )
    monkeypatch.delenv("DEPTH2MESH_WEIGHTS_DAV2_SMALL", raising=False)
    server = web.serve(
        port=_free_port(), model_name="midas-small", device="cpu", backend="torch", block=False
    )
    try:
        yield server
    finally:
        server.close()


def _newest_sidecar(server: Any, stem: str) -> dict[str, Any]:
    sidecars = sorted(
        (server.work_dir / "results").glob(f"*/{stem}.json"), key=lambda p: p.stat().st_mtime
    )
    assert sidecars, "no result on the server"
    sidecar: dict[str, Any] = json.loads(sidecars[-1].read_text())
    return sidecar


@pytest.mark.slow
def test_page_switches_models_and_reports_the_one_used(two_model_server: Any) -> None:
    url = two_model_server.url
    metric = _browse(
        {
            "url": url,
            "photo": str(SAMPLES / "coffee.png"),
            "options": {"model": "dav2-metric-indoor", "grid": 128, "dropFar": True},
            "expect": "result",
        }
    )
    assert metric["toasts"] == []
    assert metric["nearVisible"] is False  # Near and Far do not apply to a metric model
    assert "Near and Far do not apply" in metric["modelNote"]
    assert "Depth Anything V2 Metric Indoor Small" in metric["summary"]
    assert "sha256 not published" in metric["summary"]
    assert "Warning" not in metric["summary"]
    sidecar = _newest_sidecar(two_model_server, "coffee")
    assert sidecar["model"]["model"] == "dav2-metric-indoor"
    assert sidecar["depth"]["kind"] == "metric"
    assert sidecar["depth"]["drop_far"] is True

    missing = _browse(
        {
            "url": url,
            "photo": str(SAMPLES / "coffee.png"),
            "options": {"model": "dav2-small"},
            "expect": "error",
        }
    )
    (toast,) = missing["toasts"]
    assert toast.startswith("Depth Anything V2 Small (dav2-small) cannot be loaded: ")
    assert "DEPTH2MESH_WEIGHTS_DAV2_SMALL" in toast

    relative = _browse(
        {
            "url": url,
            "photo": str(SAMPLES / "coffee.png"),
            "options": {"model": "midas-small", "grid": 128, "near": 2, "far": 6},
            "expect": "result",
        }
    )
    assert relative["toasts"] == []
    assert relative["nearVisible"] is True
    assert "not the official MiDaS v2.1 small release" in relative["summary"]
    sidecar = _newest_sidecar(two_model_server, "coffee")
    assert sidecar["model"]["model"] == "midas-small"
    assert (sidecar["depth"]["near_m"], sidecar["depth"]["far_m"]) == (2, 6)


def _docs_api_example() -> str:
    """The ```python block of docs/web.md's "From a script" section, as written."""
    text = (REPO / "docs" / "web.md").read_text(encoding="utf-8")
    section = text.split("## From a script: the `/convert` API", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow  # a real `depth2mesh serve` subprocess and its first model load
def test_docs_api_example_converts_through_a_real_server(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import subprocess
    import sys

    import trimesh
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    code = _docs_api_example()
    assert "http://127.0.0.1:7860/" in code
    port = _free_port()
    env = {
        **os.environ,
        "DEPTH2MESH_CACHE": str(tmp_path / "cache"),
        "DEPTH2MESH_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    weights = shared_dir / "midas" / "midas_small_random_init.pt"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "depth2mesh",
            "serve",
            "--port",
            str(port),
            "--weights",
            str(weights),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = ""
        for line in server.stdout:  # until the page is up (or the server ends)
            found = re.search(r"web page: (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found[1]
                break
        assert url == f"http://127.0.0.1:{port}/", "the server did not start"
        work = tmp_path / "work"
        work.mkdir()
        (work / "samples").symlink_to(SAMPLES, target_is_directory=True)
        monkeypatch.chdir(work)
        exec(compile(code.replace("http://127.0.0.1:7860/", url), "docs/web.md", "exec"), {})
        printed = capsys.readouterr().out
        assert re.search(r"\*\*coffee\.png\*\*: 600x400 pixels, [\d,]+ points", printed)
        assert "['coffee.glb', 'coffee_depth.png', 'coffee_points.ply']" in printed
        [glb] = (work / "web-results").glob("*/coffee.glb")
        mesh = trimesh.load(glb, force="mesh")
        assert len(mesh.faces) > 100_000  # the 512-vertex grid of the 600x400 photo

        notes = work / "notes.jpg"
        notes.write_text("just text\n")
        with pytest.raises(AppError, match=r"not an image") as refused:
            Client(url, verbose=False).predict(photo=handle_file(str(notes)), api_name="/convert")
        assert len(str(refused.value).strip().splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_page_finds_the_checkouts_sample_photos() -> None:
    from depth2mesh.apps.web import REPO_SAMPLES, sample_photos

    assert Path(__file__).resolve().parents[1] / "samples" == REPO_SAMPLES
    assert [path.name for path in sample_photos()] == sorted(
        path.name for path in REPO_SAMPLES.iterdir() if path.suffix in {".png", ".jpg"}
    )
    assert len(sample_photos()) >= 4
