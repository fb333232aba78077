"""The web page: upload a photo, see its depth and its 3D result, download the files.

``depth2mesh serve`` (the ``[web]`` extra) runs :func:`serve`: a gradio page on
http://127.0.0.1:7860 where a photo goes in (drag and drop, paste, or a sample photo) and
out come the inferno depth picture, the photo and the depth picture under one slider, an
interactive 3D view of the GLB that opens at the photo's own viewpoint, and download links
for the GLB, the PLY point cloud and the 16-bit depth PNG. Every conversion is
:func:`depth2mesh.pipeline.convert.convert_photo`, the pipeline that the command line runs.

Safe by default:

- it listens on 127.0.0.1 (this computer only) unless ``host`` says otherwise;
- uploads larger than ``max_upload_mb`` are refused by the server, photos with more than
  ``max_megapixels`` are refused before decoding, and an upload is only ever decoded as an
  image (:func:`depth2mesh.exchange.photo.read_photo`, whatever its name says);
- conversions run one at a time (a queue; ``queue_size`` requests wait at most);
- the page offers every model of :mod:`depth2mesh.depth.registry`; a model is loaded the first time
  it is chosen and kept until another is chosen (one in memory at a time: loading another
  releases it, see :class:`WebModels`); a model that cannot be loaded (no weights offline)
  gives one line on the page, and the others keep working;
- uploads and results live in one temporary folder: only the last ``keep_results`` results
  are kept, and the folder is deleted when the server stops;
- the page loads nothing from the internet (fonts and scripts come from this server).

The 3D view: gradio's ``Model3D`` is a Babylon.js viewer whose orbit camera always looks at
the centre of the model's bounding box. The page shows a copy of the GLB whose box is
centred on the photo's optical axis (:func:`viewer_glb` adds one zero-area triangle), and
sets the camera's ``(alpha, beta, radius)`` (:func:`viewer_camera`) to the origin, where the
photo's camera is in the GLB (glTF axes: y up, the camera looks down -z). So the first view
shows the scene as the photo did; dragging orbits away from it. The viewer keeps its own
field of view (0.8 rad vertically): a photo whose frame does not fit it (a portrait photo)
is first seen from straight behind its viewpoint, just far enough back to fit.
"""

from __future__ import annotations

import gc
import html
import logging
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import cv2
import gradio as gr
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from depth2mesh.depth.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_model
from depth2mesh.depth.weights import file_sha256
from depth2mesh.errors import Depth2MeshError, NamesParameters, ParameterError
from depth2mesh.exchange.gltf import DRACO, decode_glb_json, encode_glb, pack_glb, split_glb
from depth2mesh.exchange.gltf_read import position_bounds, read_glb_mesh
from depth2mesh.exchange.photo import EXIF_FOCAL_35MM, EXIF_IFD, read_photo
from depth2mesh.exchange.pictures import encode_png
from depth2mesh.geometry.camera import DEFAULT_FOV_DEG, ESTIMATED_PREFIX, Intrinsics
from depth2mesh.geometry.mesh import DEFAULT_GRID
from depth2mesh.geometry.scale import DEFAULT_FAR, DEFAULT_NEAR
from depth2mesh.pipeline.convert import (
    STAGES,
    CameraOptions,
    ConvertOptions,
    ConvertResult,
    MeshKind,
    convert_photo,
)

if TYPE_CHECKING:
    from depth2mesh.depth.model import DepthModel

DEFAULT_HOST: Final = "127.0.0.1"
"""Listen on this computer only."""

DEFAULT_PORT: Final = 7860
"""gradio's usual port."""

MIB: Final = 1 << 20
"""Bytes in a megabyte as upload limits count them (gradio's page shows limits in these)."""

DEFAULT_MAX_UPLOAD_MB: Final = 40.0
"""Largest upload, megabytes of 2**20 bytes (a 48-megapixel phone JPEG is 10 to 25 MB)."""

DEFAULT_MAX_MEGAPIXELS: Final = 50.0
"""Largest photo, megapixels (8064x6048 = 48.8)."""

DEFAULT_KEEP_RESULTS: Final = 8
"""Results kept on disk; older ones are deleted as new ones arrive."""

DEFAULT_QUEUE_SIZE: Final = 16
"""Requests that may wait for the one conversion running at a time."""

VIEWER_FOV: Final = 0.8
"""Vertical field of view of gradio's 3D viewer (Babylon.js's default camera), radians."""

VIEWER_ASPECT: Final = 1.6
"""Width/height of the viewer's canvas that the first view is planned for (narrower crops)."""

PREVIEW_SIZE: Final = 1280
"""Longest side of the pictures under the photo/depth slider, pixels."""

REPO_SAMPLES: Final = Path(__file__).resolve().parents[2] / "samples"
"""The sample photos of a source checkout (absent from an installed wheel)."""

SAMPLE_SUFFIXES: Final = (".jpg", ".jpeg", ".png", ".webp")

CAMERA_EXIF: Final = "EXIF focal length, else the FOV below"
CAMERA_FOV: Final = "The FOV below"

STAGE_PROGRESS: Final[Mapping[str, tuple[float, str]]] = dict(
    zip(
        STAGES,
        [
            (0.02, "Reading the photo"),
            (0.08, "Predicting depth ({model})"),
            (0.40, "Back-projecting pixels to 3D"),
            (0.50, "Writing the depth pictures"),
            (0.58, "Writing the point cloud"),
            (0.66, "Building the textured grid mesh"),
            (0.80, "Building the Poisson mesh"),
            (0.92, "Writing the sidecar"),
        ],
        strict=True,
    )
)
"""The page's progress bar per stage of :data:`depth2mesh.pipeline.convert.STAGES`: (fraction,
text); ``{model}`` stands for the model's title."""

DOWNLOADS: Final = ("glb", "poisson_glb", "points", "poisson_ply", "depth")
"""Kinds of :func:`depth2mesh.pipeline.convert.output_paths` offered for download, in this order."""

_CSS: Final = """
#d2m-convert { min-height: 3rem; }
footer { display: none !important; }
"""

log = logging.getLogger(__name__)

ModelLoader = Callable[[str], "DepthModel"]
"""Loads the model of a ``--model`` name (:func:`depth2mesh.load_model` with the page's
settings); raises :class:`~depth2mesh.errors.Depth2MeshError` when it cannot."""


class WebModels:
    """The page's depth models: each loaded on first use, the last one used kept.

    One model is in memory at a time: choosing another first releases the one kept (so a
    server never holds two networks), then loads the new one. A model that fails to load
    leaves none kept; the next request loads what it asks for.

    Args:
        initial: The ``--model`` name the page starts with.
        load: Loads a model by name (see :func:`model_loader`).
        loaded: The initial model, already loaded (kept until another is chosen).
    """

    def __init__(self, initial: str, load: ModelLoader, loaded: DepthModel | None = None) -> None:
        self.initial = get_model(initial).name
        self._load = load
        self._lock = threading.Lock()
        self.current: DepthModel | None = loaded
        if loaded is not None and loaded.spec.name != self.initial:
            raise ValueError(f"the loaded model is {loaded.spec.name}, not {self.initial}")

    def get(self, name: str, on_load: Callable[[ModelSpec], None] | None = None) -> DepthModel:
        """Return the model called ``name``, loading it (and releasing the kept one) if needed.

        Args:
            name: A ``--model`` name.
            on_load: Called with the model's entry before a load (for the progress bar).

        Raises:
            ParameterError: Unknown name.
            Depth2MeshError: The model cannot be loaded (the loader's one line).
        """
        spec = get_model(name)
        with self._lock:
            if self.current is not None and self.current.spec.name == spec.name:
                return self.current
            self.current = None  # release the kept network before loading the next
            gc.collect()
            if on_load is not None:
                on_load(spec)
            model = self._load(spec.name)
            self.current = model
            return model


def model_loader(
    *,
    device: str = "auto",
    backend: str = "auto",
    weights: dict[str, str | Path] | None = None,
    input_size: int | None = None,
) -> ModelLoader:
    """Return a loader of models by name, as :func:`depth2mesh.load_model` finds their weights.

    Args:
        device: Their device ("auto", "cpu", "cuda", ...).
        backend: Their backend ("auto", "torch", "onnxruntime", "openvino").
        weights: ``--model`` name -> checkpoint, for the models given one (``serve --weights``
            names the initial model's); the others are found through their own variable
            (``DEPTH2MESH_WEIGHTS``, ``DEPTH2MESH_WEIGHTS_DAV2_SMALL``, ...), the torch.hub
            cache, then a verified download.
        input_size: Network input size of the Depth Anything models (None: their default);
            MiDaS small's is fixed, MoGe-2's (a token count) stays its default.

    Returns:
        ``load(name) -> DepthModel``. A checkpoint that is not the official release loads
        quietly: the page says so under each result.
    """
    chosen = dict(weights or {})

    def load(name: str) -> DepthModel:
        from depth2mesh.depth.model import load_model

        spec = get_model(name)
        # the Depth Anything models' input size; MoGe-2's is a token count (its default)
        size = None if spec.network.fixed_input_size or spec.output == "points" else input_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the page shows the weights' status itself
            return load_model(
                chosen.get(spec.name),
                model=spec.name,
                device=device,
                backend=backend,
                input_size=size,
            )

    return load


def model_choices() -> list[tuple[str, str]]:
    """The page's model choice: ("title: one-line summary", ``--model`` name), registry order."""
    return [(f"{spec.title}: {spec.summary}", spec.name) for spec in MODELS.values()]


NO_NEAR_FAR: Final = (
    "Depth in metres from the model (at most {max_depth:g} m): Near and Far do not apply; "
    "Leave out the sky drops what lies within 1 % of {max_depth:g} m."
)
"""The note under the model choice for a metric model."""


POINTS_NOTE: Final = (
    "Depth in metres from the model's point map: Near and Far do not apply; Leave out the sky "
    'drops what its mask leaves out. It also estimates the camera: with "{exif}", a photo '
    "without an EXIF focal length gets the model's field of view, not the slider's."
)
"""The note under the model choice for a model that predicts points (MoGe-2)."""


def _metric_note(spec: ModelSpec) -> str:
    """The note under the model choice: why Near and Far are hidden, or "" for a relative one.

    :data:`NO_NEAR_FAR` for a metric model, :data:`POINTS_NOTE` for a points model.
    """
    if spec.output == "points":
        return POINTS_NOTE.format(exif=CAMERA_EXIF)
    if spec.max_depth is None:
        return ""
    return NO_NEAR_FAR.format(max_depth=spec.max_depth)


def model_controls(name: str) -> tuple[Any, Any, Any, Any]:
    """Updates of (Near, Far, Leave out the sky, the model note) for the chosen model.

    A metric model (or one that predicts points, in metres) gives metres itself: Near and
    Far are hidden (and ignored), and the note says why.
    """
    spec = get_model(name)
    metric = spec.output != "disparity"
    note = _metric_note(spec)
    sky = {
        "metric": "Leave out the sky (where the model saturates)",
        "points": "Leave out the sky (what the model's mask leaves out)",
    }.get(spec.output, "Leave out the sky (everything at Far)")
    return (
        gr.update(visible=not metric),
        gr.update(visible=not metric),
        gr.update(label=sky),
        gr.update(value=note, visible=metric),
    )


@dataclass(frozen=True)
class WebLimits:
    """What one request may cost the server.

    Attributes:
        max_upload_bytes: Largest upload, bytes (refused by the server before it is stored).
        max_pixels: Largest photo, pixels (refused before it is decoded).
        keep_results: Results kept on disk; older ones are deleted.
        queue_size: Requests that may wait while one conversion runs.
    """

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * MIB)
    max_pixels: int = int(DEFAULT_MAX_MEGAPIXELS * 1_000_000)
    keep_results: int = DEFAULT_KEEP_RESULTS
    queue_size: int = DEFAULT_QUEUE_SIZE

    def check(self) -> None:
        """Raise :class:`ParameterError`, naming the field, for values that cannot work."""
        for name, unit in (("max_upload_bytes", " B"), ("max_pixels", " pixels")):
            if getattr(self, name) < 1:
                raise ParameterError(
                    f"{{{name}}} must be positive, got {getattr(self, name)}{unit}", name
                )
        for name in ("keep_results", "queue_size"):
            if getattr(self, name) < 1:
                raise ParameterError(
                    f"{{{name}}} must be at least 1, got {getattr(self, name)}", name
                )


class ResultStore:
    """One folder per conversion under ``root``; only the newest ``keep`` folders are kept."""

    def __init__(self, root: Path, keep: int) -> None:
        self.root = root
        self.keep = keep
        self._folders: deque[Path] = deque()
        self._lock = threading.Lock()

    def new_folder(self) -> Path:
        """Create a folder with an unguessable name, deleting the oldest beyond ``keep``."""
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        with self._lock:
            self._folders.append(folder)
            while len(self._folders) > self.keep:
                shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return folder

    def discard(self, folder: Path) -> None:
        """Delete a folder now (a failed conversion)."""
        with self._lock:
            if folder in self._folders:
                self._folders.remove(folder)
        shutil.rmtree(folder, ignore_errors=True)


def glb_bounds(data: bytes) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the (min, max) corners of the scene's meshes in a GLB, metres.

    From the POSITION accessors' bounds through their nodes' transforms (a quantised GLB keeps
    its dequantisation there; see :func:`depth2mesh.exchange.gltf_read.position_bounds`).

    Raises:
        ValueError: Not a GLB, no mesh, or a POSITION accessor without bounds.
    """
    return position_bounds(decode_glb_json(data))


def viewer_glb(
    glb_path: str | Path, out_path: str | Path
) -> tuple[Path, NDArray[np.float64], NDArray[np.float64]]:
    """Write the copy of a GLB that the page's 3D view shows: its bounds centred on the axis.

    gradio's viewer (Babylon.js) always orbits the centre of the model's bounding box, which
    is seldom on the photo's optical axis (the -z axis of the GLB). The copy adds one
    zero-area triangle (it draws nothing) that mirrors the box's x and y extents about that
    axis, so that the box centre lies on it and a camera at the origin can look straight down
    -z, as the photo's camera did. The downloads are the unchanged files.

    The viewer (Babylon.js) decodes ``KHR_mesh_quantization`` itself, but would fetch its Draco
    decoder from the internet: a Draco GLB's copy is re-encoded quantised
    (:func:`viewer_source`), so the page works offline.

    Args:
        glb_path: A GLB that :func:`convert_photo` wrote.
        out_path: Where to write the copy.

    Returns:
        ``out_path`` and the (min, max) corners of the copy's bounds, metres.

    Raises:
        ValueError: The file is not a GLB with a binary chunk and POSITION bounds.
    """
    data = viewer_source(Path(glb_path).read_bytes())
    document, binary = split_glb(data)
    low, high = glb_bounds(data)
    if not binary or len(binary) % 4:
        raise ValueError(f"{glb_path} has no complete binary chunk after its JSON")
    half_x = max(abs(low[0]), abs(high[0]))
    half_y = max(abs(low[1]), abs(high[1]))
    mid_z = (low[2] + high[2]) / 2.0
    corner_low, corner_high = [-half_x, -half_y, mid_z], [half_x, half_y, mid_z]
    extra = np.array([corner_low, corner_high, corner_low], dtype="<f4").tobytes()
    document["buffers"][0]["byteLength"] = len(binary) + len(extra)
    document.setdefault("bufferViews", []).append(
        {"buffer": 0, "byteOffset": len(binary), "byteLength": len(extra), "target": 34962}
    )
    bounds = np.array([corner_low, corner_high], dtype=np.float32).astype(float)
    document.setdefault("accessors", []).append(
        {
            "bufferView": len(document["bufferViews"]) - 1,
            "componentType": 5126,
            "count": 3,
            "type": "VEC3",
            "min": bounds[0].tolist(),
            "max": bounds[1].tolist(),
        }
    )
    document["meshes"].append(
        {
            "name": "viewer bounds (zero area, draws nothing)",
            "primitives": [{"attributes": {"POSITION": len(document["accessors"]) - 1}}],
        }
    )
    document["nodes"].append({"name": "viewer bounds", "mesh": len(document["meshes"]) - 1})
    document["scenes"][document.get("scene", 0)]["nodes"].append(len(document["nodes"]) - 1)
    out = Path(out_path)
    out.write_bytes(pack_glb(document, binary + extra))
    return out, np.array([-half_x, -half_y, low[2]]), np.array([half_x, half_y, high[2]])


def viewer_source(data: bytes) -> bytes:
    """The GLB the page's viewer can show offline: ``data`` itself, or a quantised copy of Draco.

    Args:
        data: A GLB that :func:`convert_photo` wrote.

    Returns:
        ``data`` unless it uses ``KHR_draco_mesh_compression``; then the same mesh, texture
        and camera re-encoded with ``KHR_mesh_quantization`` (decoding needs DracoPy, which
        wrote it).
    """
    document = decode_glb_json(data)
    if DRACO not in document.get("extensionsUsed", []):
        return data
    mesh = read_glb_mesh(data)
    return encode_glb(
        mesh.positions,
        mesh.faces,
        normals=mesh.normals,
        uvs=mesh.uvs,
        colors_linear=mesh.colors_linear,
        texture=mesh.texture,
        texture_mime=mesh.texture_mime or "image/jpeg",
        camera=mesh.camera,
        name=document["meshes"][0].get("name", "depth2mesh"),
        generator=document.get("asset", {}).get("generator", "depth2mesh"),
        compression="quantized",
    )


def viewer_camera(
    low: NDArray[np.floating],
    high: NDArray[np.floating],
    intrinsics: Intrinsics | None = None,
    *,
    viewer_fov: float = VIEWER_FOV,
    viewer_aspect: float = VIEWER_ASPECT,
) -> tuple[float, float, float]:
    """Return the Model3D ``camera_position`` that shows a :func:`viewer_glb` as the photo.

    The viewer orbits the box centre ``(0, 0, zc)`` from ``centre + radius * (cos(alpha)
    sin(beta), cos(beta), sin(alpha) sin(beta))`` (right-handed, glTF axes). alpha = beta =
    90 degrees puts the camera on the +z side looking down -z, and radius = -zc puts it at the
    origin: the photo's own viewpoint. When the photo's frame (at the depth of the box centre)
    is larger than the viewer's field of view (a portrait photo in the viewer's 0.8 rad, for
    instance), the camera starts straight behind that point, just far enough back for it to
    fit.

    Args:
        low: (3,) minimum corner of the viewer GLB's bounds, metres.
        high: (3,) maximum corner.
        intrinsics: The photo's camera; without it the camera starts at the origin.
        viewer_fov: The viewer's vertical field of view, radians (Babylon's default 0.8).
        viewer_aspect: The width/height of the viewer's canvas to plan for.

    Returns:
        ``(alpha, beta, radius)``: degrees, degrees, metres.
    """
    depth = max(-(float(low[2]) + float(high[2])) / 2.0, 1e-6)
    back = 0.0
    if intrinsics is not None:
        # the photo's frame at the depth of the box centre, as seen from the origin
        us = np.array([-0.5, intrinsics.width - 0.5]) - intrinsics.cx
        vs = np.array([-0.5, intrinsics.height - 0.5]) - intrinsics.cy
        half_x = float(np.abs(us).max()) / intrinsics.fx * depth
        half_y = float(np.abs(vs).max()) / intrinsics.fy * depth
        tan_y = math.tan(viewer_fov / 2.0)
        needed = max(half_y / tan_y, half_x / (tan_y * viewer_aspect))
        back = max(0.0, needed - depth)
    return 90.0, 90.0, round(depth + back, 6)


def safe_stem(name: str) -> str:
    """Turn an uploaded file's name into a safe output stem ("photo" when nothing is left)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_-")[:64]
    return stem or "photo"


def _probe(path: Path) -> tuple[int, int, bool] | None:
    """Read an image header: (width, height, has an EXIF 35 mm focal length); None if unreadable.

    Nothing is decoded here; :func:`read_photo` (inside :func:`convert_photo`) decodes the
    pixels and reports what is wrong with a file that is not an image. Pillow's own
    decompression-bomb limit (about 179 megapixels) still applies to the header: such a file
    gives ``(0, 0, False)`` and is refused as too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
                focal = image.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
    except Image.DecompressionBombError:
        return 0, 0, False
    except Exception:  # read_photo gives the message
        return None
    return width, height, bool(focal)


def _preview(image: NDArray[np.uint8], size: int = PREVIEW_SIZE) -> NDArray[np.uint8]:
    height, width = image.shape[:2]
    scale = size / max(height, width)
    if scale >= 1.0:
        return image
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, shape, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _write_preview(path: Path, image: NDArray[np.uint8]) -> Path:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        path = path.with_suffix(".png")
        path.write_bytes(encode_png(image))
    else:
        path.write_bytes(data.tobytes())
    return path


def _page_error(message: str) -> gr.Error:
    """An error that the page shows until it is closed: one sentence, no traceback in the log.

    The page renders the message as HTML, so a file name cannot smuggle markup into it.
    """
    return gr.Error(html.escape(message, quote=False), duration=None, print_exception=False)


LABELS: Final = {
    "near": "Near",
    "far": "Far",
    "fov_deg": "Horizontal FOV",
    "grid": "Grid size",
    "mesh": "Mesh",
    "drop_far": "Leave out the sky",
}
"""How the page names the parameters its controls set (the controls' labels, short)."""


def _sentence(error: BaseException | str) -> str:
    """One line, ending with a full stop; parameters named as the page's controls are."""
    if isinstance(error, NamesParameters):
        text = error.render(lambda name: LABELS.get(name, name.replace("_", " ")))
    else:
        text = str(error)
    line = " ".join(text.split())
    return line if line.endswith((".", "!", "?")) else line + "."


def _camera_text(result: ConvertResult, exif_wanted: bool) -> str:
    intrinsics = result.intrinsics
    if intrinsics.source == "exif":
        source = "from the photo's EXIF focal length"
    elif intrinsics.source.startswith(ESTIMATED_PREFIX):
        source = f"the photo has no EXIF focal length: {intrinsics.source} from the photo itself"
    elif exif_wanted:
        source = "the photo has no EXIF focal length: the FOV on this page"
    else:
        source = "the FOV on this page"
    return f"{intrinsics.hfov_deg:.1f}° horizontal FOV ({source}), fx {intrinsics.fx:.1f} px"


@dataclass(frozen=True)
class PageControls:
    """The values of the page's controls for one conversion, as gradio hands them over.

    Attributes:
        model: The ``--model`` name chosen.
        camera_mode: :data:`CAMERA_EXIF` or :data:`CAMERA_FOV`.
        fov: Horizontal field of view, degrees (used unless EXIF is wanted and present).
        near: Depth of the nearest content, metres (relative models only).
        far: Depth of the farthest content, metres (relative models only).
        mesh: "grid", "poisson" or "both".
        grid: Long side of the mesh grid, vertices (a slider's float).
        drop_far: Leave out sky and everything at ``far``.
    """

    model: str
    camera_mode: str
    fov: float
    near: float
    far: float
    mesh: str
    grid: float
    drop_far: bool

    def options(self, *, use_exif: bool, max_pixels: int, metric: bool = False) -> ConvertOptions:
        """The conversion options these controls ask for (EXIF focal length when ``use_exif``).

        With ``metric`` (a model that gives metres: a metric model or MoGe-2's points) Near
        and Far are not used: they are left unset, as
        :func:`depth2mesh.pipeline.convert.convert_photo` wants with such a model.
        """
        camera = CameraOptions() if use_exif else CameraOptions(fov_deg=float(self.fov))
        mesh = self.mesh if self.mesh in ("poisson", "both") else "grid"
        return ConvertOptions(
            near=None if metric else float(self.near),
            far=None if metric else float(self.far),
            grid=round(float(self.grid)),
            mesh=cast(MeshKind, mesh),
            drop_far=bool(self.drop_far),
            camera=camera,
            depth_kind="disparity",
            max_pixels=max_pixels,
        )


@dataclass
class _Converter:
    """The page's one event handler, with what it needs between requests."""

    models: WebModels | None
    store: ResultStore
    limits: WebLimits
    disparity_files: Mapping[str, Path] = field(default_factory=dict)

    def __call__(
        self,
        photo: dict[str, Any] | None,
        model: str,
        camera_mode: str,
        fov: float,
        near: float,
        far: float,
        mesh: str,
        grid: float,
        drop_far: bool,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's convention)
    ) -> tuple[Any, ...]:
        if not photo or not photo.get("path"):
            raise _page_error(
                "Add a photo first: drop it on the left, paste it, or click a sample."
            )
        upload = Path(str(photo["path"]))
        name = Path(str(photo.get("orig_name") or upload.name)).name
        size = upload.stat().st_size if upload.is_file() else 0
        if size > self.limits.max_upload_bytes:
            raise _page_error(
                f"{name} is {size / MIB:.1f} MB, more than the "
                f"{self.limits.max_upload_bytes / MIB:.1f} MB this page accepts."
            )
        folder = self.store.new_folder()
        suffix = Path(name).suffix.lower()
        local = folder / (
            safe_stem(name) + (suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else "")
        )
        controls = PageControls(model, camera_mode, fov, near, far, mesh, grid, drop_far)
        try:
            shutil.copyfile(upload, local)
            return self._convert(local, name, controls, progress)
        except gr.Error:
            self.store.discard(folder)
            raise
        except (Depth2MeshError, ValueError) as error:
            self.store.discard(folder)
            message = _sentence(error).replace(str(local), name)
            raise _page_error(message.replace(str(folder), "the result folder")) from None
        except Exception as error:
            self.store.discard(folder)
            log.exception("conversion of %s failed", name)
            raise _page_error(
                f"Unexpected {type(error).__name__} while converting {name}; the server's log "
                "has the details."
            ) from None

    def _convert(
        self, local: Path, name: str, controls: PageControls, progress: gr.Progress
    ) -> tuple[Any, ...]:
        probe = self._probe_size(local, name)
        spec = get_model(controls.model or DEFAULT_MODEL)
        # without EXIF, a model that estimates the camera (MoGe-2) comes before the slider
        estimates = spec.output == "points"
        has_exif = probe is not None and probe[2]
        use_exif = controls.camera_mode != CAMERA_FOV and (has_exif or estimates)
        options = controls.options(
            use_exif=bool(use_exif),
            max_pixels=self.limits.max_pixels,
            metric=spec.output != "disparity",
        )
        depth_file = self.disparity_files.get(file_sha256(local))
        model = None
        if depth_file is None:
            model = self._model(spec, progress)

        def step(stage: str) -> None:
            fraction, text = STAGE_PROGRESS[stage]
            progress(fraction, desc=text.format(model=spec.title))

        result = convert_photo(
            local,
            local.parent,
            model=model,
            options=options,
            depth_file=depth_file,
            step=step,
        )
        progress(0.95, desc="Preparing the page")
        files = result.paths
        glb = files["poisson_glb"] if options.mesh == "poisson" else files["glb"]
        shown, low, high = viewer_glb(glb, local.parent / "viewer.glb")
        first_view = viewer_camera(low, high, result.intrinsics)
        return (
            str(files["inferno"]),
            self._slider(local, files["inferno"]),
            gr.Model3D(value=str(shown), camera_position=first_view),
            [str(files[kind]) for kind in DOWNLOADS if kind in files],
            self._summary(
                name, result, options, depth_file, controls.camera_mode != CAMERA_FOV, model
            ),
        )

    def _model(self, spec: ModelSpec, progress: gr.Progress) -> DepthModel:
        """The chosen model, loaded now if it is not the one kept; one line if it cannot be."""
        if self.models is None:
            raise _page_error("This server has no depth model loaded.")

        def loading(spec: ModelSpec) -> None:
            progress(0.04, desc=f"Loading {spec.title}")

        try:
            return self.models.get(spec.name, on_load=loading)
        except Depth2MeshError as error:
            raise _page_error(
                f"{spec.title} ({spec.name}) cannot be loaded: "
                f"{_sentence(error).rstrip('.')}; the other models still work."
            ) from None

    def _probe_size(self, local: Path, name: str) -> tuple[int, int, bool] | None:
        """Refuse a photo with more pixels than the page accepts; return :func:`_probe`'s."""
        probe = _probe(local)
        if probe == (0, 0, False):
            raise _page_error(
                f"{name} has far more than the {self.limits.max_pixels / 1e6:.3g} megapixels "
                "this page accepts; scale it down first."
            )
        if probe is not None and probe[0] * probe[1] > self.limits.max_pixels:
            width, height = probe[:2]
            raise _page_error(
                f"{name} has {width}x{height} = {width * height / 1e6:.3g} megapixels, more "
                f"than the {self.limits.max_pixels / 1e6:.3g} megapixels this page accepts; "
                "scale it down first."
            )
        return probe

    def _slider(self, local: Path, inferno: Path) -> tuple[str, str]:
        """The photo and its depth picture at one size, for the photo|depth slider (JPEGs)."""
        photo_small = _preview(read_photo(local, max_pixels=self.limits.max_pixels).rgb)
        # the depth picture is at the grid's size: the slider needs both at one size
        rows, cols = photo_small.shape[:2]
        heat_rgb = read_photo(inferno).rgb
        heat_small = cv2.resize(heat_rgb, (cols, rows), interpolation=cv2.INTER_LINEAR)
        return (
            str(_write_preview(local.parent / "preview_photo.jpg", photo_small)),
            str(_write_preview(local.parent / "preview_depth.jpg", np.asarray(heat_small))),
        )

    def _summary(
        self,
        name: str,
        result: ConvertResult,
        options: ConvertOptions,
        depth_file: Path | None,
        exif_wanted: bool,
        model: DepthModel | None,
    ) -> str:
        counts = result.counts
        intrinsics = result.intrinsics
        poisson = counts.get("poisson_faces")
        lines = [
            f"**{name}**: {intrinsics.width}x{intrinsics.height} pixels, "
            f"{counts['points']:,} points, {counts['grid_faces']:,} grid triangles"
            + ("" if poisson is None else f", {poisson:,} Poisson triangles")
            + f", {result.timings_s['total']:.1f} s.",
            f"Camera: {_camera_text(result, exif_wanted)}. {_depth_text(model, options)}",
        ]
        lines += [f"Note: {note}." for note in result.notes]
        if depth_file is not None:
            lines.append(
                "Depth source: a disparity file that the server was started with for this exact "
                f"photo ({depth_file.name}), not the network."
            )
        elif model is not None:
            lines.append(_weights_text(model))
        return "\n\n".join(lines)


def _depth_text(model: DepthModel | None, options: ConvertOptions) -> str:
    """The summary's depth sentence: the model, and the metres it gave or Near/Far."""
    near, far = options.near_far()
    if model is None:
        return (
            f"Depth: nearest content at {near:g} m, farthest at {far:g} m (from a disparity file)."
        )
    spec = model.spec
    if spec.output == "points":
        sky = "; what its mask leaves out (sky) is left out" if options.drop_far else ""
        return (
            f"Depth: {spec.title} ({spec.name}, {model.input_size} tokens), metres from its "
            f"metric point map (Near and Far do not apply{sky})."
        )
    if spec.output == "metric":
        sky = f"; sky within 1 % of {spec.max_depth:g} m left out" if options.drop_far else ""
        return (
            f"Depth: {spec.title} ({spec.name}, input {model.input_size} px), metres as the "
            f"model gives them, at most {spec.max_depth:g} m (Near and Far do not apply{sky})."
        )
    return (
        f"Depth: {spec.title} ({spec.name}, input {model.input_size} px), nearest content at "
        f"{near:g} m, farthest at {far:g} m (it predicts relative depth only)."
    )


def _weights_text(model: DepthModel) -> str:
    """The summary's line on the weights: official, not official, or no published sha256."""
    digest = model.weights_sha256[:12]
    title = model.spec.title
    if model.official is None:
        return (
            f"Weights of {title}: sha256 not published for this release; the file passed the "
            f"strict key and shape check (sha256 {digest}... recorded in the sidecar)."
        )
    if not model.official:
        return (
            f"**Warning:** the server's weights are not the official {title} release "
            f"(sha256 {digest}...), so this depth may be meaningless."
        )
    return f"Weights: the official {title} release (sha256 {digest}...)."


def sample_photos(folder: Path = REPO_SAMPLES) -> list[Path]:
    """The photos in ``folder`` (sorted), or none when it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def _option_controls(initial: str = DEFAULT_MODEL) -> list[Any]:
    """The page's options, in the order of the handler's parameters after the photo.

    Args:
        initial: The model chosen when the page opens.
    """
    metric = get_model(initial).output != "disparity"
    model = gr.Radio(
        model_choices(),
        value=get_model(initial).name,
        label="Depth model (loaded when first used)",
        elem_id="d2m-model",
    )
    note = gr.Markdown(
        _metric_note(get_model(initial)),
        visible=metric,
        elem_id="d2m-model-note",
    )
    camera_mode = gr.Radio(
        [CAMERA_EXIF, CAMERA_FOV],
        value=CAMERA_EXIF,
        label="Camera",
        elem_id="d2m-camera",
    )
    fov = gr.Slider(
        10,
        150,
        value=DEFAULT_FOV_DEG,
        step=0.1,
        label="Horizontal FOV (degrees)",
        elem_id="d2m-fov",
    )
    with gr.Row():
        near = gr.Number(
            DEFAULT_NEAR,
            label="Near (metres)",
            minimum=0.01,
            elem_id="d2m-near",
            visible=not metric,
        )
        far = gr.Number(
            DEFAULT_FAR, label="Far (metres)", minimum=0.02, elem_id="d2m-far", visible=not metric
        )
    mesh = gr.Radio(
        [("Textured grid", "grid"), ("Poisson", "poisson"), ("Both", "both")],
        value="grid",
        label="Mesh",
    )
    grid = gr.Slider(
        64,
        2048,
        value=DEFAULT_GRID,
        step=64,
        label="Grid size (vertices, long side)",
        elem_id="d2m-grid",
    )
    drop_far = gr.Checkbox(
        False,
        label="Leave out the sky (where the model saturates)"
        if metric
        else "Leave out the sky (everything at Far)",
        elem_id="d2m-drop-far",
    )
    model.change(model_controls, inputs=[model], outputs=[near, far, drop_far, note], queue=False)
    return [model, camera_mode, fov, near, far, mesh, grid, drop_far]


def build_app(
    model: DepthModel | WebModels | None,
    *,
    results_dir: str | Path,
    limits: WebLimits | None = None,
    examples: list[Path] | None = None,
    disparity_files: Mapping[str | Path, str | Path] | None = None,
) -> gr.Blocks:
    """Build the page (not started: see :func:`launch`).

    Args:
        model: The page's models (:class:`WebModels`), or one loaded model: the page starts
            with it, and loads the others (releasing it) with its device and backend, their
            weights found as :func:`depth2mesh.load_model` finds them.
        results_dir: Where each conversion gets its own folder; the newest
            ``limits.keep_results`` folders are kept.
        limits: Upload, pixel, result and queue limits (defaults: :class:`WebLimits`).
        examples: Sample photos shown one click away (default: the checkout's ``samples/``).
        disparity_files: Developer option, for documentation pictures: photo file -> MiDaS
            disparity file (.npy, .pfm or 16-bit .png). An upload whose bytes equal such a
            photo uses that disparity instead of the network, and the page says so.

    Returns:
        The gradio Blocks.
    """
    limits = limits or WebLimits()
    limits.check()
    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    known = {
        file_sha256(Path(photo)): Path(disparity)
        for photo, disparity in (disparity_files or {}).items()
    }
    models = as_web_models(model)
    handler = _Converter(models, ResultStore(results, limits.keep_results), limits, known)
    samples = sample_photos() if examples is None else examples
    initial = models.initial if models is not None else DEFAULT_MODEL

    app = gr.Blocks(title="depth2mesh", analytics_enabled=False, delete_cache=(1800, 3600))
    with app:
        gr.Markdown(
            "# depth2mesh\n"
            "One photo in; its depth and a 3D mesh out. A depth model (MiDaS v2.1 small, or "
            "Depth Anything V2 Small: relative, or metric in metres) predicts depth, "
            "depth2mesh turns it into a textured mesh (GLB) and a point cloud (PLY)."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photo, options, button = _input_controls(samples, initial)
            with gr.Column(scale=1):
                heat, slider = _depth_views()
        viewer, downloads, summary = _result_views()
        button.click(
            handler,
            inputs=[photo, *options],
            outputs=[heat, slider, viewer, downloads, summary],
            preprocess=False,  # the upload is decoded by read_photo, nothing else
            api_name="convert",
            concurrency_limit=1,
        )
    app.queue(default_concurrency_limit=1, max_size=limits.queue_size)
    return app


def _input_controls(
    samples: list[Path], initial: str = DEFAULT_MODEL
) -> tuple[gr.Image, list[Any], gr.Button]:
    """Add the photo upload, the sample photos, the options and the convert button.

    Call it inside the page's layout (a ``gr.Column``).

    Args:
        samples: Sample photos to show; none: no samples block.
        initial: The model chosen when the page opens.

    Returns:
        The photo upload, the option controls (in :class:`_Converter`'s argument order) and
        the "Make 3D" button.
    """
    photo = gr.Image(
        label="Photo: drop, paste or click to upload",
        type="filepath",
        sources=["upload", "clipboard"],
        image_mode=None,
        height=360,
        elem_id="d2m-photo",
    )
    if samples:
        gr.Examples(
            examples=[[str(path)] for path in samples],
            inputs=[photo],
            label="Sample photos",
            examples_per_page=12,
            elem_id="d2m-samples",
        )
    with gr.Accordion("Options", open=True):
        options = _option_controls(initial)
    button = gr.Button("Make 3D", variant="primary", elem_id="d2m-convert")
    return photo, options, button


def _depth_views() -> tuple[gr.Image, gr.ImageSlider]:
    """Add the depth heat map and the photo | depth slider (inside the page's layout)."""
    heat = gr.Image(
        label="Depth (inferno: near is bright)",
        type="filepath",
        interactive=False,
        height=360,
        elem_id="d2m-heat",
    )
    slider = gr.ImageSlider(
        label="Photo | depth (drag the handle)",
        type="filepath",
        interactive=False,
        max_height=420,
        elem_id="d2m-slider",
    )
    return heat, slider


def _result_views() -> tuple[gr.Model3D, gr.File, gr.Markdown]:
    """Add the 3D viewer, then a row with the downloads and the summary (inside the page)."""
    viewer = gr.Model3D(
        label="3D: opens at the photo's viewpoint; drag to orbit, scroll to zoom",
        clear_color=(0.12, 0.12, 0.14, 1.0),
        height=520,
        interactive=False,
        elem_id="d2m-viewer",
    )
    with gr.Row():
        downloads = gr.File(
            label="Downloads: GLB, PLY, depth PNG",
            file_count="multiple",
            interactive=False,
            elem_id="d2m-files",
        )
        summary = gr.Markdown(elem_id="d2m-summary")
    return viewer, downloads, summary


def as_web_models(model: DepthModel | WebModels | None) -> WebModels | None:
    """The page's models from :func:`build_app`'s ``model``: one loaded model starts them."""
    if model is None or isinstance(model, WebModels):
        return model
    load = model_loader(
        device=model.device,
        backend=model.backend,
        weights={model.spec.name: model.weights_path},
        input_size=None if model.spec.network.fixed_input_size else model.input_size,
    )
    return WebModels(model.spec.name, load, model)


def launch(
    app: gr.Blocks, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, limits: WebLimits
) -> str:
    """Start a page from :func:`build_app` in a background thread; return its URL.

    Raises:
        Depth2MeshError: The address cannot be listened on (for instance the port is taken).
    """
    try:
        app.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            share=False,
            inbrowser=False,
            show_error=False,
            max_file_size=limits.max_upload_bytes,
            footer_links=[],
            run_history=False,
            enable_monitoring=False,
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            theme=gr.themes.Default(primary_hue="orange"),
            css=_CSS,
        )
    except OSError as error:
        raise Depth2MeshError(
            f"cannot listen on {host}:{port} ({error}); pass another --port"
        ) from None
    url: str = app.local_url or f"http://{host}:{port}/"
    return url


@dataclass
class WebServer:
    """A running (or stopped) page from :func:`serve`.

    Attributes:
        url: Where the page is, e.g. ``http://127.0.0.1:7860/``.
        app: The gradio Blocks.
        work_dir: The temporary folder holding uploads and results; deleted by :meth:`close`.
    """

    url: str
    app: gr.Blocks
    work_dir: Path
    _previous_temp_dir: str | None = None
    _closed: bool = False

    def close(self) -> None:
        """Stop the server and delete every upload and result (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self.app.close(verbose=False)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        _restore_temp_dir(self._previous_temp_dir)


def serve(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    weights: str | Path | None = None,
    device: str = "auto",
    model: DepthModel | WebModels | None = None,
    model_name: str = DEFAULT_MODEL,
    input_size: int | None = None,
    backend: str = "auto",
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    keep_results: int = DEFAULT_KEEP_RESULTS,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    examples: list[Path] | None = None,
    disparity_files: Mapping[str | Path, str | Path] | None = None,
    ready: Callable[[str], None] | None = None,
    block: bool = True,
) -> WebServer:
    """Run the web page: upload a photo, see its depth and 3D result, download the files.

    The page starts with the model ``model_name``, loaded before the page opens (so missing
    weights stop it at once); the others are loaded when first chosen, one in memory at a time
    (:class:`WebModels`). Uploads and results go to a new temporary folder (gradio's upload
    folder, ``GRADIO_TEMP_DIR``, points into it while the server runs), which is deleted when
    the server stops.

    Args:
        host: Address to listen on. The default, 127.0.0.1, serves this computer only;
            "0.0.0.0" serves the whole network (anyone who can reach it can use the page).
        port: TCP port.
        weights: The checkpoint of ``model_name`` (default: as :func:`depth2mesh.load_model`
            finds it: its variable, ``$DEPTH2MESH_WEIGHTS`` for MiDaS small,
            ``$DEPTH2MESH_WEIGHTS_DAV2_SMALL`` etc., the torch.hub cache, a verified
            download); the other models' are always found that way.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        model: An already loaded model, or the page's models (then ``model_name``,
            ``weights``, ``device``, ``backend`` and ``input_size`` are not used).
        model_name: The model the page starts with (``--model``).
        input_size: Network input size of the Depth Anything models (None: 518).
        backend: The models' backend ("auto", "torch", "onnxruntime", "openvino").
        max_upload_mb: Largest upload, megabytes.
        max_megapixels: Largest photo, megapixels.
        keep_results: Results kept on disk; older ones are deleted.
        queue_size: Requests that may wait while one conversion runs.
        examples: Sample photos on the page (default: the checkout's ``samples/``).
        disparity_files: Developer option, see :func:`build_app`.
        ready: Called with the page's URL once it answers.
        block: Wait until interrupted (Ctrl+C), then stop and clean up. With False, return
            at once; call :meth:`WebServer.close` to stop.

    Returns:
        The server (already stopped when ``block`` is true).

    Raises:
        WeightsError, DeviceError: The initial model cannot be loaded.
        ParameterError: Unknown ``model_name`` or an input size it cannot take.
        Depth2MeshError: The address cannot be listened on.
        ValueError: A limit is not positive.
    """
    limits = WebLimits(
        max_upload_bytes=int(max_upload_mb * MIB),
        max_pixels=int(max_megapixels * 1_000_000),
        keep_results=keep_results,
        queue_size=queue_size,
    )
    limits.check()
    if model is None:
        spec = get_model(model_name)
        load = model_loader(
            device=device,
            backend=backend,
            weights={spec.name: weights} if weights is not None else None,
            input_size=input_size,
        )
        if input_size is not None:
            from depth2mesh.depth.registry import check_input_size

            check_input_size(spec, input_size)
        model = WebModels(spec.name, load, load(spec.name))
    server = _start(
        model,
        limits,
        host=host,
        port=port,
        examples=examples,
        disparity_files=disparity_files,
    )
    if ready is not None:
        ready(server.url)
    if block:
        _run_until_interrupted(server)
    return server


def _start(
    model: DepthModel | WebModels,
    limits: WebLimits,
    *,
    host: str,
    port: int,
    examples: list[Path] | None,
    disparity_files: Mapping[str | Path, str | Path] | None,
) -> WebServer:
    """Build and launch the page over a new temporary folder (``GRADIO_TEMP_DIR`` points there).

    The arguments are :func:`serve`'s, checked.

    Returns:
        The running server.

    Raises:
        Depth2MeshError: The address cannot be listened on. Whatever fails, the folder is
            deleted and ``GRADIO_TEMP_DIR`` restored first.
    """
    work_dir = Path(tempfile.mkdtemp(prefix="depth2mesh-web-"))
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir)
    app: gr.Blocks | None = None
    try:
        app = build_app(
            model,
            results_dir=work_dir / "results",
            limits=limits,
            examples=examples,
            disparity_files=disparity_files,
        )
        url = launch(app, host=host, port=port, limits=limits)
    except BaseException:
        if app is not None:
            app.close(verbose=False)
        shutil.rmtree(work_dir, ignore_errors=True)
        _restore_temp_dir(previous)
        raise
    return WebServer(url, app, work_dir, previous)


def _restore_temp_dir(previous: str | None) -> None:
    """Set ``GRADIO_TEMP_DIR`` back to ``previous`` (None: unset it)."""
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous


def _run_until_interrupted(server: WebServer) -> None:
    """Wait while the page runs, until Ctrl+C (or SIGTERM in the main thread); then close it."""
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        # a plain `kill` (SIGTERM) stops the page as Ctrl+C does, and cleans up
        previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while server.app.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
