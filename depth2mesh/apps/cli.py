"""The ``depth2mesh`` command line (typer). The only module that prints or exits.

Every command is a thin layer over documented Python functions; heavy imports (torch, timm)
happen inside the commands, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from depth2mesh._version import __version__
from depth2mesh.depth.registry import DEFAULT_MODEL, MODELS, model_help
from depth2mesh.errors import Depth2MeshError, NamesParameters, ParameterError
from depth2mesh.exchange.gltf import (
    DEFAULT_GLB_COMPRESSION,
    DEFAULT_TEXTURE_SIZE,
)
from depth2mesh.exchange.photo import MAX_PIXELS
from depth2mesh.geometry.edges import (
    DEFAULT_EDGE_RADIUS,
    DEFAULT_EDGES,
    DEFAULT_STEP_RATIO,
    DEFAULT_STRONG_RATIO,
)
from depth2mesh.geometry.inpaint import DEFAULT_INPAINT
from depth2mesh.geometry.mesh import DEFAULT_DENSITY_QUANTILE, DEFAULT_GRID
from depth2mesh.geometry.points import DEFAULT_EDGE_THRESHOLD
from depth2mesh.geometry.support import DEFAULT_SUPPORT
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions

if TYPE_CHECKING:
    from rich.progress import Progress
    from typer._click import Context, Parameter

    from depth2mesh.depth.model import DepthModel
    from depth2mesh.pipeline.batch import Outcome, WorkItem

INPUT: Final = "Input"
CAMERA: Final = "Camera"
DEPTH: Final = "Depth and scale"
MESH: Final = "Mesh and edges"
OUTPUT: Final = "Output files"
SPEED: Final = "Speed and batches"
CLUSTER: Final = "Cluster"
PANELS: Final = (INPUT, CAMERA, DEPTH, MESH, OUTPUT, SPEED, CLUSTER)
"""The groups of ``--help``, in order: every option of every command has one of them."""


class _TidyHelp:
    """Help with the options in :data:`PANELS`' order, switches without a value, NAME....

    Typer's own help shows ``--overwrite <bool>`` and a usage line ``{photos}...``.
    """

    options_metavar: str | None

    def get_params(self, ctx: Context) -> list[Parameter]:
        params: list[Parameter] = super().get_params(ctx)  # type: ignore[misc]
        params.sort(key=lambda param: PANELS.index(getattr(param, "rich_help_panel", "") or INPUT))
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""  # no type column: a switch takes no value
            elif isinstance(param, TyperArgument) and param.metavar is not None:
                setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
        return params

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name += "..." if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class _Command(_TidyHelp, TyperCommand):
    """A command with :class:`_TidyHelp`'s help."""


class _Group(_TidyHelp, TyperGroup):
    """The command group, with :class:`_TidyHelp`'s help for its own options."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return TyperGroup.collect_usage_pieces(self, ctx)


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a class's Google-style docstring, by attribute name.

    Args:
        cls: A class whose docstring has an ``Attributes:`` section.

    Returns:
        Each attribute's description on one line (continuation lines joined by spaces).
    """
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    inside = False
    name = ""
    for line in lines:
        if line.strip() == "Attributes:":
            inside = True
        elif inside and line.startswith("        ") and name:
            docs[name] += " " + line.strip()
        elif inside and line.startswith("    ") and ":" in line:
            name, _, text = line.strip().partition(":")
            docs[name] = text.strip()
        elif inside and line.strip():
            break
    return docs


_ROLE: Final = re.compile(r":(?:class|func|data|mod|attr|meth):`(~?)([\w.]+)`")
_LITERAL: Final = re.compile(r"``([^`]+)``")


def option_help(cls: type, name: str) -> str:
    """The ``--help`` text of an option, from its field's description in ``cls``' docstring.

    The description is written for Python and the command line alike: ``near`` (a field)
    becomes ``--near``, "not given (None)" becomes "not given", Sphinx roles their name.
    """
    fields = {**attribute_docs(ConvertOptions), **attribute_docs(CameraOptions)}
    text = attribute_docs(cls)[name].replace("not given (None)", "not given")
    text = _ROLE.sub(lambda match: match[2].rsplit(".", 1)[-1] if match[1] else match[2], text)
    return _LITERAL.sub(lambda match: _flag(match[1]) if match[1] in fields else match[1], text)


def _convert_help(name: str) -> str:
    return option_help(ConvertOptions, name)


def _camera_help(name: str) -> str:
    return option_help(CameraOptions, name)


app = typer.Typer(
    name="depth2mesh",
    cls=_Group,
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


_FLAGS: Final = {"fov_deg": "--fov", "formats": "--format", "camera_model": "--camera"}
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


def _about(path: str, reason: str) -> str:
    """A line about a file: ``PATH: reason``, or the reason alone when it names the file."""
    return reason if path in reason else f"{path}: {reason}"


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


_RUNTIMES: Final = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
"""How the exported backends are named to users."""


def _load_model(
    weights: Path | None,
    device: str,
    backend: str,
    model: str = DEFAULT_MODEL,
    input_size: int | None = None,
    *,
    camera: bool = False,
) -> DepthModel:
    """Load the model with a download bar, and a line (and spinner) while it is prepared.

    The first load of a model's weights exports the network to ONNX and compiles it for
    this computer (seconds): one line says so as it starts, and one says how long it took.
    With ``camera``, the ``--camera`` model (:func:`load_camera_model`, ``input_size``
    unused).
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from depth2mesh.depth.model import load_camera_model, load_model
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
    spinner = Progress(
        SpinnerColumn(),
        "[progress.description]{task.description}",
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = None
    prepared_with = ""

    def progress(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:  # the bar appears only when a download really starts
            bar.start()
            task = bar.add_task(f"Downloading {title} weights", total=total)
        bar.update(task, completed=done, total=total)

    def preparing(chosen: str) -> None:
        nonlocal prepared_with
        prepared_with = _RUNTIMES.get(chosen, chosen)
        err.print(
            f"preparing {title} for this computer: ONNX export and {prepared_with} compile, "
            "once (later runs reuse them)",
            markup=False,
        )
        spinner.start()
        spinner.add_task("exporting and compiling", total=None)

    try:
        with _warnings_as_lines():
            if camera:
                loaded = load_camera_model(
                    model,
                    weights,
                    device=device,
                    backend=backend,
                    progress=progress,
                    preparing=preparing,
                )
            else:
                loaded = load_model(
                    weights,
                    model=model,
                    device=device,
                    backend=backend,
                    progress=progress,
                    input_size=input_size,
                    preparing=preparing,
                )
    finally:
        if task is not None:
            bar.stop()
        spinner.stop()
    if prepared_with:
        timings = loaded.load_timings_s
        steps = [
            f"{label} {timings[key]:.1f} s"
            for key, label in (
                ("network", "torch network"),
                ("export", "ONNX export"),
                ("compile", f"{prepared_with} compile"),
            )
            if key in timings
        ]
        out.print(
            f"{title} prepared in {timings.get('total', 0.0):.1f} s ({', '.join(steps)}); "
            "the photos' times below do not include it",
            markup=False,
        )
    return loaded


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
        _fail(_about(name, _reason(outcome)))
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
            table.add_row("", "", _about(str(outcome.item.photo), _reason(outcome)))
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
    *,
    camera: bool = False,
) -> DepthModel:
    try:
        return _load_model(weights, device, backend, model, input_size, camera=camera)
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
        rich_help_panel=DEPTH,
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
        rich_help_panel=DEPTH,
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
        rich_help_panel=DEPTH,
    ),
]
TokensOption = Annotated[
    int | None,
    typer.Option(
        "--tokens",
        help="moge2-small only: the network's base token count, 1200-3600 (default 1200): more "
        "is finer and slower. The camera comes from --fx/--fy/--cx/--cy, --focal-px, "
        "--focal-35mm or --fov, else EXIF, else moge2-small's own estimate (the sidecar says "
        "'estimated by moge2-small'; with another model, --camera moge2-small), else 60 "
        "degrees.",
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
        rich_help_panel=SPEED,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the network runs: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.",
        rich_help_panel=SPEED,
    ),
]


OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="Output folder (created if missing).",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option("--overwrite", help=_convert_help("overwrite"), rich_help_panel=OUTPUT),
]
RecursiveOption = Annotated[
    bool,
    typer.Option(
        "--recursive", "-r", help="Also take photos from subfolders.", rich_help_panel=INPUT
    ),
]
SkipOption = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="Skip photos whose results are complete (resume an interrupted batch).",
        rich_help_panel=SPEED,
    ),
]
MaxPixelsOption = Annotated[
    int,
    typer.Option("--max-pixels", help=_convert_help("max_pixels"), rich_help_panel=INPUT),
]
PhotosArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="PHOTO",
        help="Photos, folders of photos and glob patterns (quote them: 'shots/*.jpg').",
        show_default=False,
    ),
]

EXIT_CODES: Final = (
    "**Exit codes**: 0 every photo converted (or skipped as complete); 1 a photo failed, or "
    "the model could not be loaded; 2 a usage error (an option's value, options that "
    "contradict each other); 130 interrupted (Ctrl+C: every file written is complete)."
)
"""The end of ``convert --help`` and ``depth --help``."""


@app.command(cls=_Command, epilog=EXIT_CODES)
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
            rich_help_panel=OUTPUT,
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


@app.command(cls=_Command, epilog=EXIT_CODES)
def convert(
    photos: PhotosArgument,
    out_dir: OutOption,
    model_name: ModelOption = DEFAULT_MODEL,
    input_size: InputSizeOption = None,
    tokens: TokensOption = None,
    near: Annotated[
        float | None,
        typer.Option(
            "--near", help=_convert_help("near"), show_default=False, rich_help_panel=DEPTH
        ),
    ] = None,
    far: Annotated[
        float | None,
        typer.Option("--far", help=_convert_help("far"), show_default=False, rich_help_panel=DEPTH),
    ] = None,
    depth_at: Annotated[
        list[str] | None,
        typer.Option(
            "--depth-at",
            metavar="U,V=METRES",
            help=_convert_help("depth_at"),
            show_default=False,
            rich_help_panel=DEPTH,
        ),
    ] = None,
    fov: Annotated[
        float | None,
        typer.Option("--fov", help=_camera_help("fov_deg"), rich_help_panel=CAMERA),
    ] = None,
    focal_35mm: Annotated[
        float | None,
        typer.Option("--focal-35mm", help=_camera_help("focal_35mm"), rich_help_panel=CAMERA),
    ] = None,
    focal_px: Annotated[
        float | None,
        typer.Option("--focal-px", help=_camera_help("focal_px"), rich_help_panel=CAMERA),
    ] = None,
    camera_model: Annotated[
        str | None,
        typer.Option(
            "--camera",
            metavar="MODEL",
            help=_convert_help("camera_model"),
            show_default=False,
            rich_help_panel=CAMERA,
        ),
    ] = None,
    fx: Annotated[
        float | None, typer.Option("--fx", help=_camera_help("fx"), rich_help_panel=CAMERA)
    ] = None,
    fy: Annotated[
        float | None, typer.Option("--fy", help=_camera_help("fy"), rich_help_panel=CAMERA)
    ] = None,
    cx: Annotated[
        float | None, typer.Option("--cx", help=_camera_help("cx"), rich_help_panel=CAMERA)
    ] = None,
    cy: Annotated[
        float | None, typer.Option("--cy", help=_camera_help("cy"), rich_help_panel=CAMERA)
    ] = None,
    grid: Annotated[
        int, typer.Option("--grid", help=_convert_help("grid"), rich_help_panel=MESH)
    ] = DEFAULT_GRID,
    edge_threshold: Annotated[
        float,
        typer.Option(
            "--edge-threshold", help=_convert_help("edge_threshold"), rich_help_panel=MESH
        ),
    ] = DEFAULT_EDGE_THRESHOLD,
    edges: Annotated[
        Literal["on", "off"],
        typer.Option("--edges", help=_convert_help("edges"), rich_help_panel=MESH),
    ] = DEFAULT_EDGES,
    edge_radius: Annotated[
        float,
        typer.Option("--edge-radius", help=_convert_help("edge_radius"), rich_help_panel=MESH),
    ] = DEFAULT_EDGE_RADIUS,
    edge_step: Annotated[
        float, typer.Option("--edge-step", help=_convert_help("edge_step"), rich_help_panel=MESH)
    ] = DEFAULT_STEP_RATIO,
    edge_strong: Annotated[
        float,
        typer.Option("--edge-strong", help=_convert_help("edge_strong"), rich_help_panel=MESH),
    ] = DEFAULT_STRONG_RATIO,
    inpaint: Annotated[
        Literal["on", "off"],
        typer.Option("--inpaint", help=_convert_help("inpaint"), rich_help_panel=MESH),
    ] = DEFAULT_INPAINT,
    mesh: Annotated[
        MeshChoice, typer.Option("--mesh", help=_convert_help("mesh"), rich_help_panel=MESH)
    ] = "grid",
    drop_far: Annotated[
        bool, typer.Option("--drop-far", help=_convert_help("drop_far"), rich_help_panel=DEPTH)
    ] = False,
    poisson_depth: Annotated[
        int | None,
        typer.Option("--poisson-depth", help=_convert_help("poisson_depth"), rich_help_panel=MESH),
    ] = None,
    poisson_support: Annotated[
        float,
        typer.Option(
            "--poisson-support", help=_convert_help("poisson_support"), rich_help_panel=MESH
        ),
    ] = DEFAULT_SUPPORT,
    density_quantile: Annotated[
        float,
        typer.Option(
            "--density-quantile", help=_convert_help("density_quantile"), rich_help_panel=MESH
        ),
    ] = DEFAULT_DENSITY_QUANTILE,
    face_budget: Annotated[
        int | None,
        typer.Option("--face-budget", help=_convert_help("face_budget"), rich_help_panel=MESH),
    ] = None,
    texture_format: Annotated[
        Literal["jpeg", "png"],
        typer.Option(
            "--texture-format", help=_convert_help("texture_format"), rich_help_panel=OUTPUT
        ),
    ] = "jpeg",
    glb_compression: Annotated[
        Literal["none", "quantized", "draco"],
        typer.Option(
            "--glb-compression", help=_convert_help("glb_compression"), rich_help_panel=OUTPUT
        ),
    ] = DEFAULT_GLB_COMPRESSION,
    texture_size: Annotated[
        int,
        typer.Option("--texture-size", help=_convert_help("texture_size"), rich_help_panel=OUTPUT),
    ] = DEFAULT_TEXTURE_SIZE,
    jpeg_quality: Annotated[
        int | None,
        typer.Option(
            "--jpeg-quality",
            help=_convert_help("jpeg_quality"),
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    depth_size: Annotated[
        Literal["grid", "photo"],
        typer.Option("--depth-size", help=_convert_help("depth_size"), rich_help_panel=OUTPUT),
    ] = "grid",
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            metavar="obj",
            help=_convert_help("formats"),
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    depth_file: Annotated[
        Path | None,
        typer.Option(
            "--depth",
            help="Use this depth map instead of the network (.npy, .pfm, 16-bit .png).",
            show_default=False,
            rich_help_panel=INPUT,
        ),
    ] = None,
    depth_kind: Annotated[
        Literal["metric", "disparity"],
        typer.Option("--depth-kind", help=_convert_help("depth_kind"), rich_help_panel=INPUT),
    ] = "metric",
    depth_png_scale: Annotated[
        float,
        typer.Option(
            "--depth-png-scale", help=_convert_help("depth_png_scale"), rich_help_panel=INPUT
        ),
    ] = 0.001,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    overwrite: OverwriteOption = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Open the point cloud in an Open3D window when done.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    recursive: RecursiveOption = False,
    skip_existing: SkipOption = False,
    max_pixels: MaxPixelsOption = MAX_PIXELS,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            help="Photos converted at once (threads); docs/benchmarks.md, Batches, has the "
            "speed-ups measured.",
            rich_help_panel=SPEED,
        ),
    ] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Convert on the Ray cluster at this address (auto, HOST:PORT, "
            "ray://HOST:10001); photos, OUTDIR and --weights on storage that every node sees. "
            "Needs pip install 'depth2mesh[ray]'. How to set up a cluster: docs/ray.md.",
            show_default=False,
            rich_help_panel=CLUSTER,
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
    from depth2mesh.pipeline.convert import camera_model_name, pins_with_near_far

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
        near=near,
        far=far,
        depth_at=pins,
        grid=grid,
        edge_threshold=edge_threshold,
        edges=edges,
        edge_radius=edge_radius,
        edge_step=edge_step,
        edge_strong=edge_strong,
        inpaint=inpaint,
        mesh=mesh,
        drop_far=drop_far,
        poisson_depth=poisson_depth,
        poisson_support=poisson_support,
        density_quantile=density_quantile,
        face_budget=face_budget,
        texture_format=texture_format,
        glb_compression=glb_compression,
        texture_size=texture_size,
        jpeg_quality=jpeg_quality,
        depth_size=depth_size,
        camera=CameraOptions(fx, fy, cx, cy, focal_px, focal_35mm, fov),
        camera_model=camera_model,
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
    if ray_address is None and options.mesh in ("poisson", "both"):
        from depth2mesh.geometry.mesh import preload_open3d

        preload_open3d()  # its 1.2 s import overlaps the model's load and the first stages
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
    camera = None  # the --camera model, once for the batch; not when it gives the depth too
    camera_name = camera_model_name(options, spec.name, depth_file)
    if ray_address is None and camera_name is not None:
        camera = _load_model_or_exit(None, device, backend, camera_name, camera=True)

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
                camera_model=camera,
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


@app.command(cls=_Command)
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


@app.command(cls=_Command)
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


@app.command(cls=_Command)
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


@app.command(cls=_Command)
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
