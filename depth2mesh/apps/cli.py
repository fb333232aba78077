"""The ``depth2mesh`` command line (typer). The only module that prints or exits.

Every command is a thin layer over documented Python functions; heavy imports (torch, timm)
happen inside the commands, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import ast
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer
from rich.console import Console

from depth2mesh._version import __version__
from depth2mesh.depth.registry import DEFAULT_MODEL, MODELS, model_help
from depth2mesh.errors import Depth2MeshError, NamesParameters, ParameterError
from depth2mesh.exchange.gltf import (
    DEFAULT_GLB_COMPRESSION,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_TEXTURE_SIZE,
)
from depth2mesh.exchange.photo import MAX_PIXELS
from depth2mesh.geometry.edges import (
    DEFAULT_EDGE_RADIUS,
    DEFAULT_EDGES,
    DEFAULT_STEP_RATIO,
    DEFAULT_STRONG_RATIO,
)
from depth2mesh.geometry.mesh import DEFAULT_DENSITY_QUANTILE, DEFAULT_GRID, DEFAULT_POISSON_DEPTH
from depth2mesh.geometry.points import DEFAULT_EDGE_THRESHOLD
from depth2mesh.geometry.scale import DEFAULT_FAR, DEFAULT_NEAR

if TYPE_CHECKING:
    from rich.progress import Progress

    from depth2mesh.depth.model import DepthModel
    from depth2mesh.pipeline.batch import Outcome, WorkItem
    from depth2mesh.pipeline.convert import ConvertOptions

app = typer.Typer(
    name="depth2mesh",
    help=(
        "Turn one ordinary photo into 3D: a depth network (--model) predicts depth, "
        "depth2mesh writes depth maps, point clouds and meshes.\n\n"
        f"Models (--model): {model_help()}.\n\n"
        "Weights are found in this order: --weights PATH, the model's variable "
        f"({', '.join('$' + spec.weights_env for spec in MODELS.values())}), the torch.hub "
        "cache (~/.cache/torch/hub/checkpoints/<the release's file name>), else the official "
        "release is downloaded once, sha256-verified. DEPTH2MESH_OFFLINE=1 forbids the "
        "download."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        out.print(f"depth2mesh {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Photo to 3D with MiDaS v2.1 small or Depth Anything V2 Small."""
    _state["debug"] = debug


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


_FLAGS: Final = {"fov_deg": "--fov", "formats": "--format"}
"""Parameters whose option is not ``--`` + the name with dashes (see :func:`_flag`)."""

_SERVE_FLAGS: Final = {"max_upload_bytes": "--max-upload-mb", "max_pixels": "--max-megapixels"}
"""``serve``'s options for the fields of :class:`depth2mesh.apps.web.WebLimits`."""


def _flag(parameter: str, flags: Mapping[str, str] = _FLAGS) -> str:
    """The command-line option of a Python parameter: ``near`` -> ``--near``."""
    return flags.get(parameter) or _FLAGS.get(parameter) or "--" + parameter.replace("_", "-")


def _message(error: BaseException, flags: Mapping[str, str] = _FLAGS) -> str:
    """An error's one line, with the parameters it names said as command-line options.

    ``{overwrite=True}`` becomes ``--overwrite``, ``{backend='torch'}`` ``--backend torch``.
    """
    if isinstance(error, NamesParameters):
        return error.render(
            lambda parameter: _flag(parameter, flags),
            lambda parameter, value: _setting(_flag(parameter, flags), value),
        )
    return str(error)


def _setting(flag: str, value: str) -> str:
    """A command-line option set to a value given as Python writes it: ``--backend torch``."""
    literal = ast.literal_eval(value)
    return flag if literal is True else f"{flag} {literal}"


def _reason(outcome: Outcome) -> str:
    """Why a photo failed or was skipped, parameters said as command-line options."""
    if isinstance(outcome.error, NamesParameters):
        return " ".join(_message(outcome.error).split())
    return outcome.reason


def _report(error: BaseException, context: str = "") -> None:
    if _state["debug"]:
        err.print("".join(traceback.format_exception(error)), markup=False)
    prefix = f"{context}: " if context else ""
    if isinstance(error, Depth2MeshError | ParameterError):
        _fail(f"{prefix}{_message(error)}")
    else:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _fail(
            f"{prefix}unexpected {type(error).__name__}: {first} "
            "(rerun with --debug for the traceback, and please report it)"
        )


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for item in caught:
                err.print(f"[yellow]warning:[/] {item.message}", markup=True, highlight=False)


def _load_model(
    weights: Path | None,
    device: str,
    backend: str,
    model: str = DEFAULT_MODEL,
    input_size: int | None = None,
) -> DepthModel:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from depth2mesh.depth.model import load_model
    from depth2mesh.depth.registry import get_model

    title = get_model(model).title
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = None

    def progress(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:  # the bar appears only when a download really starts
            bar.start()
            task = bar.add_task(f"Downloading {title} weights", total=total)
        bar.update(task, completed=done, total=total)

    try:
        with _warnings_as_lines():
            return load_model(
                weights,
                model=model,
                device=device,
                backend=backend,
                progress=progress,
                input_size=input_size,
            )
    finally:
        if task is not None:
            bar.stop()


def _prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder, or exit with one line saying why it cannot be."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _fail(f"cannot create the output folder {out_dir}: {error.strerror or error}")
        raise typer.Exit(1) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        _fail(f"cannot write into the output folder {out_dir}: permission denied")
        raise typer.Exit(1)


def _run_batch(
    items: list[WorkItem],
    out_dir: Path,
    run: Callable[..., list[Outcome]],
    verb: str,
) -> None:
    """Run a batch with a progress bar and one line per photo; exit 0/1/2/130.

    A batch of several photos ends with a summary table; one photo's line says it all.
    """
    from depth2mesh.pipeline.batch import BatchProgress

    outcomes: list[Outcome] = []
    progress = BatchProgress(len(items))
    with _batch_progress() as bar:
        task = bar.add_task(verb, total=len(items))

        def on_start(item: WorkItem) -> None:
            bar.update(task, description=f"{item.photo.name}")

        def step(item: WorkItem, name: str) -> None:
            bar.update(task, description=f"{item.photo.name}: {name.replace('_', ' ')}")

        def on_done(outcome: Outcome) -> None:
            outcomes.append(outcome)
            progress.update(outcome)
            _print_outcome(outcome)
            bar.update(task, advance=1, description=progress.describe())

        try:
            run(items, on_start=on_start, on_done=on_done, step=step)
        except KeyboardInterrupt:
            bar.stop()
            if len(items) > 1:
                _print_summary(outcomes, len(items), out_dir, verb)
            _fail(
                f"interrupted after {len(outcomes)} of {len(items)} photos: every file written is "
                "complete; run again with --skip-existing to go on"
            )
            raise typer.Exit(130) from None
    if len(items) > 1:
        _print_summary(outcomes, len(items), out_dir, verb)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:  # 2 when every failure was a usage error (e.g. --depth-at pins that contradict)
        raise typer.Exit(2 if all(isinstance(o.error, ParameterError) for o in failed) else 1)


def _print_outcome(outcome: Outcome) -> None:
    name = str(outcome.item.photo)
    if outcome.status == "failed":
        if _state["debug"] and outcome.traceback:
            err.print(outcome.traceback, markup=False)
        _fail(f"{name}: {_reason(outcome)}")
    elif outcome.status == "skipped":
        out.print(f"skipped {name}: {outcome.reason}", markup=False)
    else:
        out.print(f"{name}: {len(outcome.files)} files in {outcome.seconds:.1f} s", markup=False)
    for note in outcome.notes:
        err.print(f"[yellow]note:[/] {name}: {note}", markup=True, highlight=False)


def _print_summary(outcomes: list[Outcome], total: int, out_dir: Path, verb: str) -> None:
    from rich.table import Table

    from depth2mesh.pipeline.batch import summarize

    counts = summarize(outcomes)
    table = Table(title=f"{verb}: {len(outcomes)} of {total} photos into {out_dir}")
    table.add_column("result")
    table.add_column("photos", justify="right")
    table.add_column("details")
    files = sum(len(o.files) for o in outcomes)
    table.add_row("converted", str(counts["converted"]), f"{files} files written")
    table.add_row("skipped", str(counts["skipped"]), "results complete already")
    table.add_row("failed", str(counts["failed"]), "")
    for outcome in outcomes:
        if outcome.status == "failed":
            table.add_row("", "", f"{outcome.item.photo}: {_reason(outcome)}")
    out.print(table)
    out.print(
        f"{counts['converted']} converted, {counts['skipped']} skipped, {counts['failed']} failed",
        markup=False,
    )


def _load_model_or_exit(
    weights: Path | None,
    device: str,
    backend: str,
    model: str = DEFAULT_MODEL,
    input_size: int | None = None,
) -> DepthModel:
    try:
        return _load_model(weights, device, backend, model, input_size)
    except ParameterError as error:  # a usage error: --model, --input-size
        _fail(_message(error))
        raise typer.Exit(2) from None
    except Exception as error:  # one line for the user; --debug shows more
        _report(error)
        raise typer.Exit(1) from None


def _batch_progress() -> Progress:
    """The progress bar over a batch of photos (drawn only on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="The chosen model's checkpoint (.pt/.pth). Default: the model's variable "
        f"(${MODELS[DEFAULT_MODEL].weights_env} for {DEFAULT_MODEL}), the torch.hub cache, "
        "else a verified download of the official release.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help=f"The depth network. {model_help()}. Relative models are scaled by --near/--far; "
        "metric ones give metres without them, which assume the photo's real focal length "
        "(EXIF, or --focal-35mm/--fov) and fail for unusual lenses (fisheye, strong zoom, "
        "crops).",
    ),
]
InputSizeOption = Annotated[
    int | None,
    typer.Option(
        "--input-size",
        help="Network input size, pixels, where the model allows another (Depth Anything: "
        "the shorter side, a multiple of 14, default 518; more is sharper and slower; "
        f"{DEFAULT_MODEL}'s is fixed at {MODELS[DEFAULT_MODEL].input_size}).",
        show_default=False,
    ),
]
TokensOption = Annotated[
    int | None,
    typer.Option(
        "--tokens",
        help="moge2-small only: the network's base token count, 1200-3600 (default 1200): more "
        "is finer and slower. The camera comes from --fx/--fy/--cx/--cy, --focal-px, "
        "--focal-35mm or --fov, else EXIF, else moge2-small's own estimate (the sidecar says "
        "'estimated by moge2-small'), else 60 degrees.",
        show_default=False,
        rich_help_panel="Depth and scale",
    ),
]
BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="What runs the network: auto (on the CPU the fastest installed: openvino, then "
        "onnxruntime, else torch; torch on GPUs), torch (eager, the reference), onnxruntime, "
        "openvino.",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the network runs: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.",
    ),
]


OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Output folder (created if missing).", show_default=False),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing output files.")
]
RecursiveOption = Annotated[
    bool, typer.Option("--recursive", "-r", help="Also take photos from subfolders.")
]
SkipOption = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="Skip photos whose results are complete (resume an interrupted batch).",
    ),
]
MaxPixelsOption = Annotated[
    int,
    typer.Option(
        "--max-pixels", help="Refuse larger images (decompression bombs); raise for huge photos."
    ),
]
PhotosArgument = Annotated[
    list[str],
    typer.Argument(
        help="Photos, folders of photos and glob patterns (quote them: 'shots/*.jpg').",
        show_default=False,
    ),
]


@app.command()
def depth(
    photos: PhotosArgument,
    out_dir: OutOption,
    model_name: ModelOption = DEFAULT_MODEL,
    input_size: InputSizeOption = None,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    save_raw: Annotated[
        bool,
        typer.Option(
            "--save-raw",
            help="Also write OUT/STEM_disparity.npy (float32, unnormalised); with a metric "
            "model OUT/STEM_depth_metres.npy (float32 metres) instead.",
        ),
    ] = False,
    overwrite: OverwriteOption = False,
    recursive: RecursiveOption = False,
    max_pixels: MaxPixelsOption = MAX_PIXELS,
) -> None:
    """Predict depth for photos and write depth pictures.

    For each PHOTO writes OUT/STEM_depth.png (16-bit, disparity scaled min..max to
    0..65535, near is bright) and OUT/STEM_depth_inferno.png (the same, coloured with the
    inferno colormap). Relative models (midas-small, dav2-small) output disparity (relative
    inverse depth), not metres. Metric models (dav2-metric-indoor, dav2-metric-outdoor)
    output metres: the pictures show 1/depth the same way (near is bright, scaled min..max),
    and --save-raw keeps the metres (OUT/STEM_depth_metres.npy).

    Example: depth2mesh depth samples/coffee.png -o out/ --model dav2-small
    """
    from depth2mesh.atomic import refuse_existing
    from depth2mesh.depth.model import predict_depth, predict_disparity
    from depth2mesh.exchange.photo import read_photo
    from depth2mesh.exchange.pictures import write_depth_pictures, write_metric_depth_pictures
    from depth2mesh.pipeline.batch import find_photos, run_batch
    from depth2mesh.pipeline.convert import depth_paths

    items = find_photos(photos, recursive=recursive)
    _prepare_out_dir(out_dir)
    model = _load_model_or_exit(weights, device, backend, model_name, input_size)
    metric = model.spec.output == "metric"

    def process(item: WorkItem) -> tuple[list[Path], tuple[str, ...]]:
        target = out_dir / item.out_subdir
        paths = depth_paths(target, item.photo.stem, save_raw=save_raw, metric=metric)
        refuse_existing(paths.values(), overwrite=overwrite)  # before spending the network
        photo = read_photo(item.photo, max_pixels=max_pixels)
        if metric:
            metres = predict_depth(photo.rgb, model)
            target.mkdir(parents=True, exist_ok=True)
            return write_metric_depth_pictures(metres, paths, overwrite=overwrite), photo.notes
        disparity = predict_disparity(photo.rgb, model)
        target.mkdir(parents=True, exist_ok=True)
        return write_depth_pictures(disparity, paths, overwrite=overwrite), photo.notes

    def run(batch: list[WorkItem], **callbacks: Any) -> list[Outcome]:
        callbacks.pop("step")
        return run_batch(batch, process, **callbacks)

    _run_batch(items, out_dir, run, "depth")


MeshChoice = Literal["grid", "poisson", "both"]


@app.command()
def convert(
    photos: PhotosArgument,
    out_dir: OutOption,
    model_name: ModelOption = DEFAULT_MODEL,
    input_size: InputSizeOption = None,
    tokens: TokensOption = None,
    near: Annotated[
        float | None,
        typer.Option(
            "--near",
            help=f"Depth of the nearest content, metres. Default: {DEFAULT_NEAR:g}. Relative "
            "models only: metric models give metres themselves.",
            show_default=False,
        ),
    ] = None,
    far: Annotated[
        float | None,
        typer.Option(
            "--far",
            help=f"Depth of the farthest content and sky, metres. Default: {DEFAULT_FAR:g}. "
            "Relative models only.",
            show_default=False,
        ),
    ] = None,
    depth_at: Annotated[
        list[str] | None,
        typer.Option(
            "--depth-at",
            metavar="U,V=METRES",
            help="A known depth instead of the --near/--far guess: pixel column U, row V of "
            "the photo as shown (upright; 0,0 is the centre of the top-left pixel; fractions "
            "allowed) lies METRES away along the camera's axis (a tape measure, a depth "
            "camera, a known object). Once: the whole scene is scaled so that it holds. "
            "Twice, on a near and a far pixel (--depth-at 120,400=1.2 --depth-at 500,150=4.8): "
            "scale and shift are both fixed, and both pixels lie exactly at their depths. "
            "With --depth-kind metric it corrects the depth file the same way. One photo only.",
            show_default=False,
        ),
    ] = None,
    fov: Annotated[
        float | None,
        typer.Option("--fov", help="Horizontal field of view, degrees. Default: EXIF, else 60."),
    ] = None,
    focal_35mm: Annotated[
        float | None,
        typer.Option("--focal-35mm", help="35 mm-equivalent focal length, millimetres."),
    ] = None,
    focal_px: Annotated[
        float | None, typer.Option("--focal-px", help="Focal length in pixels of the photo.")
    ] = None,
    fx: Annotated[float | None, typer.Option("--fx", help="Focal length x, pixels.")] = None,
    fy: Annotated[float | None, typer.Option("--fy", help="Focal length y, pixels.")] = None,
    cx: Annotated[float | None, typer.Option("--cx", help="Principal point x, pixels.")] = None,
    cy: Annotated[float | None, typer.Option("--cy", help="Principal point y, pixels.")] = None,
    grid: Annotated[
        int, typer.Option("--grid", help="Long side of the mesh grid and point cloud, vertices.")
    ] = DEFAULT_GRID,
    edge_threshold: Annotated[
        float,
        typer.Option(
            "--edge-threshold",
            help="Cut grid triangles whose max/min corner depth exceeds this ratio.",
        ),
    ] = DEFAULT_EDGE_THRESHOLD,
    edges: Annotated[
        Literal["on", "off"],
        typer.Option(
            "--edges",
            help="on (default): also tear the grid mesh at occlusion edges, where a smooth "
            "depth ramp meets an edge of the photo, and move the ramp's floating points onto a "
            "side, so no rubber sheets join near objects to what is behind them; off: only "
            "--edge-threshold cuts (the earlier mesh). Known limit: a textured surface that "
            "slopes away, such as an open door, is cut into strands with holes.",
        ),
    ] = DEFAULT_EDGES,
    edge_radius: Annotated[
        float,
        typer.Option(
            "--edge-radius",
            help="Half-width of the depth ramps looked for, as a fraction of the grid's long "
            "side (0.014: 9 pixels of a 640 grid).",
        ),
    ] = DEFAULT_EDGE_RADIUS,
    edge_step: Annotated[
        float,
        typer.Option(
            "--edge-step",
            help="Tear at a photo edge where the depth steps by more than this ratio across it.",
        ),
    ] = DEFAULT_STEP_RATIO,
    edge_strong: Annotated[
        float,
        typer.Option(
            "--edge-strong",
            help="Tear a depth step above this ratio at its middle even without a photo edge.",
        ),
    ] = DEFAULT_STRONG_RATIO,
    mesh: Annotated[
        MeshChoice, typer.Option("--mesh", help="Meshes to build: grid, poisson or both.")
    ] = "grid",
    drop_far: Annotated[
        bool,
        typer.Option(
            "--drop-far",
            help="Leave out sky: everything at --far (relative models, disparity files) or, "
            "with a metric model, within 1 % of its max depth, where it saturates (19.8 m of "
            "20, 79.2 m of 80).",
        ),
    ] = False,
    poisson_depth: Annotated[
        int, typer.Option("--poisson-depth", help="Poisson octree depth (5..12).")
    ] = DEFAULT_POISSON_DEPTH,
    density_quantile: Annotated[
        float,
        typer.Option("--density-quantile", help="Trim this fraction of low-density vertices."),
    ] = DEFAULT_DENSITY_QUANTILE,
    face_budget: Annotated[
        int | None,
        typer.Option("--face-budget", help="Decimate the Poisson mesh to this many triangles."),
    ] = None,
    texture_format: Annotated[
        Literal["jpeg", "png"],
        typer.Option("--texture-format", help="GLB texture encoding."),
    ] = "jpeg",
    glb_compression: Annotated[
        Literal["none", "quantized", "draco"],
        typer.Option(
            "--glb-compression",
            help="How the GLBs store vertices: quantized (KHR_mesh_quantization: 16-bit "
            "positions and texture coordinates, 16-bit indices; about half the size of float32 "
            "files, within 1e-4 of the depth range; trimesh misreads its texture coordinates), "
            "draco (KHR_draco_mesh_compression: smallest, slower to write; needs pip install "
            "'depth2mesh[draco]'; not every viewer decodes it) or none (float32). The grid's "
            "triangles are triangle strips in none and quantized.",
        ),
    ] = DEFAULT_GLB_COMPRESSION,
    texture_size: Annotated[
        int,
        typer.Option(
            "--texture-size", help="Longest side of the GLB texture, pixels (larger is shrunk)."
        ),
    ] = DEFAULT_TEXTURE_SIZE,
    jpeg_quality: Annotated[
        int | None,
        typer.Option(
            "--jpeg-quality",
            help="Encode the texture at this JPEG quality (1..100). Default: a JPEG photo that "
            f"is upright and fits --texture-size is embedded as is (no second loss), "
            f"anything else is encoded at {DEFAULT_JPEG_QUALITY}.",
            show_default=False,
        ),
    ] = None,
    depth_size: Annotated[
        Literal["grid", "photo"],
        typer.Option(
            "--depth-size",
            help="Size of STEM_depth.png and STEM_depth_inferno.png: grid (the --grid size; "
            "the network sees 256 pixels, so more is interpolation) or photo (the photo's "
            "own size: slower, larger files).",
        ),
    ] = "grid",
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            help="Also write the grid mesh as OBJ + MTL + texture (--format obj).",
            show_default=False,
        ),
    ] = None,
    depth_file: Annotated[
        Path | None,
        typer.Option(
            "--depth",
            help="Use this depth map instead of the network (.npy, .pfm, 16-bit .png).",
            show_default=False,
        ),
    ] = None,
    depth_kind: Annotated[
        Literal["metric", "disparity"],
        typer.Option("--depth-kind", help="--depth holds metric depth or disparity."),
    ] = "metric",
    depth_png_scale: Annotated[
        float,
        typer.Option("--depth-png-scale", help="Metres per unit of a 16-bit --depth PNG."),
    ] = 0.001,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    overwrite: OverwriteOption = False,
    preview: Annotated[
        bool,
        typer.Option("--preview", help="Open the point cloud in an Open3D window when done."),
    ] = False,
    recursive: RecursiveOption = False,
    skip_existing: SkipOption = False,
    max_pixels: MaxPixelsOption = MAX_PIXELS,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            help="Photos converted at once (threads). See the README's batch benchmark.",
        ),
    ] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Convert on the Ray cluster at this address (auto, HOST:PORT, "
            "ray://HOST:10001); photos, OUTDIR and --weights on storage that every node sees. "
            "Needs pip install 'depth2mesh[ray]'. See the README's cluster section.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert photos to 3D: textured GLB mesh, PLY point cloud, depth pictures.

    For each PHOTO writes OUT/STEM.glb (grid mesh textured with the photo, with the photo's
    camera), OUT/STEM_points.ply (binary: xyz float32, rgb uint8, normals), OUT/STEM_depth.png,
    OUT/STEM_depth_inferno.png and OUT/STEM.json (intrinsics, near/far, weights, counts,
    timings); with --mesh poisson or both also OUT/STEM_poisson.glb and .ply.

    Axes: glTF's, Y up, the camera at the origin looking down -Z, metres; the PLY files use
    the same axes so they overlay the GLB.

    Example: depth2mesh convert samples/coffee.png -o out/ --mesh both
    """
    from depth2mesh.depth.registry import check_input_size, get_model
    from depth2mesh.geometry.scale import parse_depth_pin
    from depth2mesh.pipeline.batch import convert_many, find_photos
    from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions, pins_with_near_far

    try:
        spec = get_model(model_name)
        if tokens is not None:
            if spec.output != "points" or input_size is not None:
                _fail("--tokens applies to moge2-small alone, without --input-size")
                raise typer.Exit(2)
            input_size = tokens
        check_input_size(spec, input_size)
        pins = tuple(parse_depth_pin(text) for text in depth_at or ())
        if pins and (near is not None or far is not None):
            raise pins_with_near_far()
    except ParameterError as error:
        _fail(_message(error))
        raise typer.Exit(2) from None
    scaling = [flag for flag, value in (("--near", near), ("--far", far)) if value is not None]
    if spec.output != "disparity" and scaling and depth_file is None:
        _fail(
            f"{' and '.join(scaling)} do{'es' if len(scaling) == 1 else ''} not apply to the "
            f"metric model {spec.name}, whose depth is in metres already: leave --near and "
            "--far out (they scale relative models' disparity)"
        )
        raise typer.Exit(2)
    options = ConvertOptions(
        near=DEFAULT_NEAR if near is None else near,
        far=DEFAULT_FAR if far is None else far,
        depth_at=pins,
        grid=grid,
        edge_threshold=edge_threshold,
        edges=edges,
        edge_radius=edge_radius,
        edge_step=edge_step,
        edge_strong=edge_strong,
        mesh=mesh,
        drop_far=drop_far,
        poisson_depth=poisson_depth,
        density_quantile=density_quantile,
        face_budget=face_budget,
        texture_format=texture_format,
        glb_compression=glb_compression,
        texture_size=texture_size,
        jpeg_quality=jpeg_quality,
        depth_size=depth_size,
        camera=CameraOptions(fx, fy, cx, cy, focal_px, focal_35mm, fov),
        depth_kind=depth_kind,
        depth_png_scale=depth_png_scale,
        formats=tuple(f.lower() for f in formats or ()),
        max_pixels=max_pixels,
        overwrite=overwrite,
    )
    try:
        options.check()
        _check_camera_options(options)
    except ValueError as error:
        _fail(_message(error))
        raise typer.Exit(2) from None
    if jobs < 1:
        _fail(f"--jobs must be at least 1, got {jobs}")
        raise typer.Exit(2)
    if skip_existing and overwrite:
        _fail("--skip-existing and --overwrite contradict each other: choose one")
        raise typer.Exit(2)
    if ray_address is not None and (depth_file is not None or jobs != 1):
        _fail("--ray converts on the cluster's workers: --depth and --jobs are for local runs")
        raise typer.Exit(2)
    items = find_photos(photos, recursive=recursive)
    for given, flag in ((depth_file is not None, "--depth"), (bool(pins), "--depth-at")):
        if given and len(items) != 1:
            _fail(f"{flag} goes with exactly one photo, got {len(items)}")
            raise typer.Exit(2)
    _prepare_out_dir(out_dir)
    local = ray_address is None and depth_file is None
    model = _load_model_or_exit(weights, device, backend, spec.name, input_size) if local else None

    def run(batch: list[WorkItem], **callbacks: Any) -> list[Outcome]:
        if ray_address is not None:
            from depth2mesh.pipeline.cluster import convert_on_ray

            callbacks.pop("step")  # workers do not report their stages
            outcomes = convert_on_ray(
                batch,
                out_dir,
                ray_address=ray_address,
                options=options,
                weights=weights,
                device="cpu" if device == "auto" else device,  # GPUs only when asked for
                skip_existing=skip_existing,
                model_options={"backend": backend, "model": spec.name, "input_size": input_size},
                **callbacks,
            )
        else:
            outcomes = convert_many(
                batch,
                out_dir,
                model=model,
                options=options,
                skip_existing=skip_existing,
                depth_file=depth_file,
                jobs=jobs,
                **callbacks,
            )
        if preview:
            _preview_last(outcomes, out_dir)
        return outcomes

    try:
        _run_batch(items, out_dir, run, "convert")
    except Depth2MeshError as error:  # the Ray path: no cluster, or workers that cannot start
        _report(error)
        raise typer.Exit(1) from None


def _preview_last(outcomes: list[Outcome], out_dir: Path) -> None:
    """Open the preview window on the point cloud of the last photo converted, if any."""
    from depth2mesh.pipeline.convert import output_paths

    done = [o for o in outcomes if o.status == "converted"]
    if not done:
        return
    item = done[-1].item
    cloud = output_paths(out_dir / item.out_subdir, item.photo.stem)["points"]
    if cloud in done[-1].files:
        _preview_or_exit(cloud, screenshot=None, point_size=None)


def _check_camera_options(options: ConvertOptions) -> None:
    """Validate the camera options once, before any work (a 100x100 stand-in image)."""
    from depth2mesh.geometry.camera import resolve_intrinsics

    camera = options.camera
    resolve_intrinsics(
        100,
        100,
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx,
        cy=camera.cy,
        focal_px=camera.focal_px,
        focal_35mm=camera.focal_35mm,
        fov_deg=camera.fov_deg,
    )


@app.command()
def evaluate(
    prediction_file: Annotated[
        Path,
        typer.Argument(
            help="Predicted disparity (.npy or .pfm, e.g. from depth --save-raw); with --metric "
            "predicted depth in metres (.npy, .pfm or a 16-bit PNG).",
        ),
    ],
    truth_file: Annotated[
        Path, typer.Argument(help="Ground-truth depth: .npy in metres or a 16-bit PNG.")
    ],
    metric: Annotated[
        bool,
        typer.Option(
            "--metric",
            help="The prediction is depth in metres: score it as it is, without alignment.",
        ),
    ] = False,
    truth_png_scale: Annotated[
        float,
        typer.Option(
            "--truth-png-scale", help="Metres per PNG unit: 0.001 for NYU (mm), 1/256 for KITTI."
        ),
    ] = 0.001,
    depth_png_scale: Annotated[
        float,
        typer.Option(
            "--depth-png-scale", help="Metres per unit of a 16-bit prediction PNG (--metric)."
        ),
    ] = 0.001,
    min_depth: Annotated[
        float, typer.Option("--min-depth", help="Evaluate ground truth above this, metres.")
    ] = 0.1,
    max_depth: Annotated[
        float, typer.Option("--max-depth", help="... and below this; predictions are capped.")
    ] = 10.0,
) -> None:
    """Score predicted disparity (aligned) or metric depth (--metric, as is) against ground truth.

    Disparity (relative inverse depth, as MiDaS gives it) is first aligned: s * disparity + t
    is fitted to 1 / depth by least squares over the valid pixels, the standard protocol for
    affine-invariant models. With --metric the prediction is metres and is not aligned: a
    wrong scale counts. Both report AbsRel (mean |pred - gt| / gt), delta<1.25 (fraction
    within 25 %) and RMSE (metres) over the pixels with min-depth < gt < max-depth, the
    prediction capped at max-depth.

    Example: depth2mesh evaluate pred_depth.npy gt.png --metric --truth-png-scale 0.001
    """
    from depth2mesh.depth.evaluate import evaluate_depth, evaluate_disparity
    from depth2mesh.exchange.photo import read_depth_file

    score = evaluate_depth if metric else evaluate_disparity
    try:
        prediction = read_depth_file(prediction_file, png_scale=depth_png_scale if metric else 1.0)
        truth = read_depth_file(truth_file, png_scale=truth_png_scale)
        result = score(prediction, truth, min_depth=min_depth, max_depth=max_depth)
    except (Depth2MeshError, ValueError) as error:
        _fail(_message(error))
        raise typer.Exit(1) from None
    alignment = (
        "metric, not aligned" if metric else f"scale {result.scale:.6g}, shift {result.shift:.6g}"
    )
    out.print(
        f"AbsRel {result.abs_rel:.4f}  delta<1.25 {result.delta1:.4f}  RMSE {result.rmse:.4f} m  "
        f"({result.valid_pixels:,} valid pixels, {alignment})"
    )


@app.command()
def view(
    path: Annotated[
        Path,
        typer.Argument(
            help="A result: STEM_points.ply (point cloud), STEM.glb or STEM_poisson.glb/.ply.",
            show_default=False,
        ),
    ],
    screenshot: Annotated[
        Path | None,
        typer.Option(
            "--screenshot",
            help="Render the first view to this PNG and exit (works under xvfb-run).",
            show_default=False,
        ),
    ] = None,
    point_size: Annotated[
        float | None,
        typer.Option(
            "--point-size",
            help="Point size in screen pixels. Default: just large enough to leave no gaps.",
            show_default=False,
        ),
    ] = None,
    orbit: Annotated[
        tuple[float, float],
        typer.Option(
            "--orbit",
            help="Start YAW PITCH degrees away from the photo's camera (right, up).",
        ),
    ] = (0.0, 0.0),
) -> None:
    """Look at a result in an Open3D window, through the photo's own camera.

    The first view is the camera that took the photo (from STEM.json beside the file, else
    the GLB's camera): the window shows the photo; drag to orbit away from it, scroll to zoom,
    press Q to close. Without a desktop, run it under a virtual screen:
    xvfb-run -a depth2mesh view out/photo_points.ply --screenshot view.png
    """
    _preview_or_exit(path, screenshot=screenshot, point_size=point_size, orbit=orbit)
    if screenshot is not None:
        out.print(f"screenshot written to {screenshot}")


def _preview_or_exit(
    path: Path,
    *,
    screenshot: Path | None,
    point_size: float | None,
    orbit: tuple[float, float] = (0.0, 0.0),
) -> None:
    from depth2mesh.apps.preview import show

    try:
        show(path, screenshot=screenshot, point_size=point_size, orbit_deg=orbit)
    except Exception as error:  # one line for the user; --debug shows more
        _report(error)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. 127.0.0.1 serves this computer only; 0.0.0.0 serves "
            "the whole network (anyone who can reach it can use the page).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port of the page.")] = 7860,
    model_name: ModelOption = DEFAULT_MODEL,
    input_size: InputSizeOption = None,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest upload, MB (of 2**20 bytes).")
    ] = 40.0,
    max_megapixels: Annotated[
        float, typer.Option("--max-megapixels", help="Largest photo, megapixels.")
    ] = 50.0,
    keep_results: Annotated[
        int, typer.Option("--keep-results", help="Results kept on disk; older ones are deleted.")
    ] = 8,
    queue_size: Annotated[
        int,
        typer.Option("--queue-size", help="Requests that may wait while one conversion runs."),
    ] = 16,
) -> None:
    """Run the web page: upload a photo, see its depth and 3D result, download the files.

    Needs the web extra: pip install 'depth2mesh[web]'. One conversion runs at a time (others
    queue); uploads and results live in a temporary folder that is deleted when the page
    stops (Ctrl+C). The page offers every model: --model is the one it starts with (loaded
    now; --weights is its checkpoint), the others load when first chosen (their weights from
    their own variable, e.g. DEPTH2MESH_WEIGHTS_DAV2_SMALL, or the torch.hub cache), one in
    memory at a time. --input-size applies to the Depth Anything models.
    """
    try:
        from depth2mesh.apps import web
    except ImportError as error:
        _fail(f"the web page needs gradio: pip install 'depth2mesh[web]' ({error})")
        raise typer.Exit(1) from None
    try:
        web.WebLimits(
            max_upload_bytes=int(max_upload_mb * web.MIB),
            max_pixels=int(max_megapixels * 1_000_000),
            keep_results=keep_results,
            queue_size=queue_size,
        ).check()
    except ValueError as error:
        _fail(_message(error, _SERVE_FLAGS))
        raise typer.Exit(2) from None
    model = _load_model_or_exit(weights, device, backend, model_name, input_size)
    models = web.WebModels(
        model.spec.name,
        web.model_loader(
            device=device,
            backend=backend,
            weights={model.spec.name: weights} if weights is not None else None,
            input_size=input_size,
        ),
        model,
    )

    def ready(url: str) -> None:
        out.print(f"depth2mesh web page: {url} (Ctrl+C stops it)")

    try:
        web.serve(
            host=host,
            port=port,
            model=models,
            max_upload_mb=max_upload_mb,
            max_megapixels=max_megapixels,
            keep_results=keep_results,
            queue_size=queue_size,
            ready=ready,
        )
    except Exception as error:  # one line, as for the other commands
        _report(error)
        raise typer.Exit(1) from None
    out.print("stopped; uploads and results deleted")


@app.command()
def cache(
    clear: Annotated[
        bool, typer.Option("--clear", help="Delete depth2mesh's files from the cache folder.")
    ] = False,
) -> None:
    """Show depth2mesh's cache folder and what it holds (network exports, compiled networks).

    The folder is $DEPTH2MESH_CACHE, else $XDG_CACHE_HOME/depth2mesh, else
    ~/.cache/depth2mesh. Everything in it is rebuilt when needed; --clear empties it.
    """
    from depth2mesh.depth.cache import cache_dir, cache_entries, clear_cache

    folder = cache_dir()
    if clear:
        try:
            deleted, freed = clear_cache(folder)
        except OSError as error:
            _fail(f"could not clear the cache {folder}: {error.strerror or error}")
            raise typer.Exit(1) from None
        out.print(f"freed {freed / 1e6:.1f} MB ({deleted} entries) in {folder}")
        return
    entries = cache_entries(folder)
    out.print(f"cache folder: {folder}{'' if folder.is_dir() else ' (not created yet)'}")
    for entry in entries:
        kind = "/" if entry.path.is_dir() else ""
        out.print(f"  {entry.path.name}{kind}  {entry.size_bytes / 1e6:.1f} MB")
    total = sum(entry.size_bytes for entry in entries)
    out.print(f"{len(entries)} entries, {total / 1e6:.1f} MB in total")


def main() -> None:
    """Entry point of the ``depth2mesh`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        _fail("interrupted; files already written are complete, nothing partial was left")
        sys.exit(130)
