"""The ``depth2mesh`` command line (typer). The only module that prints or exits.

Every command is a thin layer over documented Python functions; heavy imports (torch, timm)
happen inside the commands, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from depth2mesh._version import __version__
from depth2mesh.errors import Depth2MeshError

if TYPE_CHECKING:
    from depth2mesh.model import DepthModel

PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".gif"}
)

app = typer.Typer(
    name="depth2mesh",
    help=(
        "Turn one ordinary photo into 3D: MiDaS v2.1 small predicts relative depth "
        "(disparity), depth2mesh writes depth maps, point clouds and meshes.\n\n"
        "Weights are found in this order: --weights PATH, $DEPTH2MESH_WEIGHTS, the torch.hub "
        "cache (~/.cache/torch/hub/checkpoints/midas_v21_small_256.pt), else the official "
        "release is downloaded once (81.8 MB, sha256-verified). DEPTH2MESH_OFFLINE=1 forbids "
        "the download."
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
    """Photo to 3D with MiDaS v2.1 small."""
    _state["debug"] = debug


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def _report(error: BaseException, context: str = "") -> None:
    if _state["debug"]:
        err.print("".join(traceback.format_exception(error)), markup=False)
    prefix = f"{context}: " if context else ""
    if isinstance(error, Depth2MeshError):
        _fail(f"{prefix}{error}")
    else:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _fail(
            f"{prefix}unexpected {type(error).__name__}: {first} "
            "(rerun with --debug for the traceback, and please report it)"
        )


def expand_photos(inputs: list[Path]) -> list[Path]:
    """Expand the command line's inputs: files as given, folders to the photos inside them.

    Args:
        inputs: Files and folders.

    Returns:
        Photo paths in order; a folder contributes its image files (by suffix), sorted.
    """
    photos: list[Path] = []
    for item in inputs:
        if item.is_dir():
            photos.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES))
        else:
            photos.append(item)
    return photos


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for item in caught:
                err.print(f"[yellow]warning:[/] {item.message}", markup=True, highlight=False)


def _load_model(weights: Path | None, device: str) -> DepthModel:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from depth2mesh.model import load_model

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
            task = bar.add_task("Downloading MiDaS v2.1 small weights", total=total)
        bar.update(task, completed=done, total=total)

    try:
        with _warnings_as_lines():
            return load_model(weights, device=device, progress=progress)
    finally:
        if task is not None:
            bar.stop()


WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="MiDaS v2.1 small checkpoint (.pt). Default: $DEPTH2MESH_WEIGHTS, the torch.hub "
        "cache, else a verified download of the official release.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the network runs: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.",
    ),
]


@app.command()
def depth(
    photos: Annotated[
        list[Path],
        typer.Argument(
            help="Photos (JPEG, PNG, WebP, TIFF, BMP, ...) or folders of photos.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output folder (created if missing).", show_default=False),
    ],
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    save_raw: Annotated[
        bool,
        typer.Option(
            "--save-raw", help="Also write OUT/STEM_disparity.npy (float32, unnormalised)."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
) -> None:
    """Predict depth for photos and write depth pictures.

    For each PHOTO writes OUT/STEM_depth.png (16-bit, disparity scaled min..max to
    0..65535, near is bright) and OUT/STEM_depth_inferno.png (the same, coloured with the
    inferno colormap). The network outputs disparity (relative inverse depth), not metres.

    Example: depth2mesh depth samples/coffee.png -o out/
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from depth2mesh.export import depth_output_paths, refuse_existing, write_depth_images
    from depth2mesh.model import predict_disparity
    from depth2mesh.photo import read_photo

    paths = expand_photos(photos)
    if not paths:
        _fail("no photos found in the given folders; pass image files or folders holding them")
        raise typer.Exit(2)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _fail(f"cannot create the output folder {out_dir}: {error.strerror}")
        raise typer.Exit(1) from None
    try:
        model = _load_model(weights, device)
    except Exception as error:  # one line for the user; --debug shows more
        _report(error)
        raise typer.Exit(1) from None

    written: list[Path] = []
    failed: list[Path] = []
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("depth", total=len(paths))
        for path in paths:
            bar.update(task, description=f"depth {path.name}")
            try:
                targets = depth_output_paths(out_dir, path.stem, save_raw=save_raw)
                refuse_existing(targets.values(), overwrite=overwrite)  # before the network
                photo = read_photo(path)
                disparity = predict_disparity(photo.rgb, model)
                written += write_depth_images(
                    disparity, out_dir, path.stem, save_raw=save_raw, overwrite=overwrite
                )
            except Exception as error:  # one line per photo; the batch goes on
                failed.append(path)
                _report(error, str(path))
            bar.advance(task)
    done = len(paths) - len(failed)
    out.print(f"{done} of {len(paths)} photos done, {len(written)} files written to {out_dir}")
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``depth2mesh`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        _fail("interrupted; files already written are complete, nothing partial was left")
        sys.exit(130)
