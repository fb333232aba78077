"""Batches: find the photos, convert each, keep going past bad ones, report every outcome.

``find_photos`` turns files, folders (``recursive``) and glob patterns into work items;
``run_batch`` runs one function per item and records an outcome for each, whatever happens;
``convert_many`` is the batch form of :func:`depth2mesh.pipeline.convert.convert_photo`. Nothing
here
prints: the caller gets callbacks and the outcomes.
"""

from __future__ import annotations

import glob
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from depth2mesh.errors import Depth2MeshError, ParameterError
from depth2mesh.exchange.photo import PHOTO_SUFFIXES

if TYPE_CHECKING:
    from depth2mesh.depth.model import DepthModel
    from depth2mesh.pipeline.convert import ConvertOptions, ConvertResult

Status = Literal["converted", "skipped", "failed"]


@dataclass(frozen=True)
class WorkItem:
    """One photo to process and where its results go.

    Attributes:
        photo: The photo file (or a path that turned out not to be one: it fails with a reason).
        out_subdir: Folder below the output folder, mirroring the photo's place under the
            folder argument it was found in ("." for files given directly).
        problem: A reason known before processing (missing file, pattern without match, ...).
    """

    photo: Path
    out_subdir: Path = Path()
    problem: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one work item.

    Attributes:
        item: The work item.
        status: "converted", "skipped" (results already complete) or "failed".
        reason: One line: why it failed or was skipped; empty when converted.
        files: Files written.
        seconds: Wall time spent on it.
        notes: Things the user should know (e.g. an animated image's first frame was used).
        traceback: The formatted traceback of an unexpected error (for ``--debug``), or "".
        error: The exception a failure came from, when it was raised in this process (not
            for known problems, nor for outcomes that Ray workers sent as text); front ends
            render it their own way (the CLI names ``overwrite`` as ``--overwrite``).
            ``reason`` is its ``str()`` wording.
    """

    item: WorkItem
    status: Status
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    traceback: str = ""
    error: BaseException | None = field(default=None, compare=False, repr=False)


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def find_photos(inputs: Iterable[str | Path], *, recursive: bool = False) -> list[WorkItem]:
    """Turn command-line inputs into work items, in order, without duplicates.

    Args:
        inputs: Photo files, folders (their photos by suffix; with ``recursive`` also those
            of their subfolders, whose structure the outputs mirror) and glob patterns (``*``,
            ``?``, ``[...]``; ``**`` with ``recursive``).
        recursive: Descend into subfolders.

    Returns:
        Work items. A missing file, a pattern matching nothing or a folder without photos
        gives an item with a ``problem``, so that the batch reports it and goes on.
    """
    items: list[WorkItem] = []
    for entry in inputs:
        text = str(entry)
        path = Path(entry)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if _looks_like_photo(p))
            if not found:
                hint = "" if recursive else " (--recursive to include subfolders)"
                items.append(WorkItem(path, problem=f"{path} is a folder with no photos{hint}"))
            items += [WorkItem(p, p.parent.relative_to(path)) for p in found]
        elif not path.exists() and _is_pattern(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=recursive))
            photos = [p for p in matches if _looks_like_photo(p)]
            if not photos:
                items.append(WorkItem(path, problem=f"no photo matches the pattern {text!r}"))
            items += [WorkItem(p) for p in photos]
        else:
            items.append(WorkItem(path))
    return _without_duplicates(items)


def _looks_like_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES


def _without_duplicates(items: list[WorkItem]) -> list[WorkItem]:
    """Drop repeats of the same file; mark photos whose results would share names."""
    seen_files: set[Path] = set()
    owners: dict[tuple[Path, str], Path] = {}
    unique: list[WorkItem] = []
    for item in items:
        if item.problem is None:
            resolved = item.photo.resolve()
            if resolved in seen_files:
                continue
            seen_files.add(resolved)
            key = (item.out_subdir, item.photo.stem)
            owner = owners.setdefault(key, item.photo)
            if owner != item.photo:
                item = WorkItem(
                    item.photo,
                    item.out_subdir,
                    f"{item.photo} has the same name as {owner}: its results would overwrite "
                    "those; rename one or convert them into different folders",
                )
        unique.append(item)
    return unique


def run_batch(
    items: Sequence[WorkItem],
    process: Callable[[WorkItem], tuple[list[Path], tuple[str, ...]] | None],
    *,
    jobs: int = 1,
    on_start: Callable[[WorkItem], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run ``process`` on every item; an error fails that item only.

    Args:
        items: The work.
        process: Does one item; returns (files written, notes), or None when it skipped the
            item because its results are complete. Raises to fail it.
        jobs: Items processed at once (threads; numpy, OpenCV, Open3D and the network release
            the interpreter lock in their heavy parts).
        on_start: Called before each item (e.g. to show the current file).
        on_done: Called with each outcome as soon as it is known.

    Returns:
        One outcome per item, in the items' order. KeyboardInterrupt is not caught: the items
        done so far are complete, and an interrupted one has left no partial file.
    """
    if jobs < 1:
        raise ParameterError(f"{{jobs}} must be at least 1, got {jobs}", "jobs")

    def one(item: WorkItem) -> Outcome:
        if on_start is not None:
            on_start(item)
        outcome = _attempt(item, process)
        if on_done is not None:
            on_done(outcome)
        return outcome

    if jobs == 1 or len(items) < 2:
        return [one(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="depth2mesh")
    try:
        return list(pool.map(one, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _attempt(
    item: WorkItem, process: Callable[[WorkItem], tuple[list[Path], tuple[str, ...]] | None]
) -> Outcome:
    started = time.perf_counter()
    if item.problem is not None:
        return Outcome(item, "failed", item.problem)
    try:
        done = process(item)
    except Exception as error:  # one item fails; the batch goes on
        return Outcome(
            item,
            "failed",
            describe_error(error),
            seconds=time.perf_counter() - started,
            traceback="".join(traceback.format_exception(error)),
            error=error,
        )
    elapsed = time.perf_counter() - started
    if done is None:
        return Outcome(item, "skipped", "results complete already", seconds=elapsed)
    return Outcome(item, "converted", "", done[0], elapsed, done[1])


def describe_error(error: BaseException) -> str:
    """One line for an error: our own messages as they are, others with their type."""
    text = " ".join(str(error).split())
    if isinstance(error, Depth2MeshError | ValueError) and text:
        return text
    return f"unexpected {type(error).__name__}: {text} (rerun with --debug for the traceback)"


def convert_many(
    items: Sequence[WorkItem],
    out_dir: str | Path,
    *,
    model: DepthModel | None,
    options: ConvertOptions,
    skip_existing: bool = False,
    depth_file: str | Path | None = None,
    jobs: int = 1,
    step: Callable[[WorkItem, str], None] | None = None,
    on_start: Callable[[WorkItem], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    camera_model: DepthModel | None = None,
) -> list[Outcome]:
    """Convert many photos with one model, reporting an outcome for each.

    Args:
        items: From :func:`find_photos`.
        out_dir: Output folder; each item's results go to ``out_dir / item.out_subdir``.
        model: The depth network (loaded once for the whole batch); None with ``depth_file``.
        options: Conversion options, the same for every photo.
        skip_existing: Skip photos whose results are complete (their sidecar and every file
            exist); redo the others, replacing what an interrupted run left of them.
        depth_file: A depth map for a single photo (see :func:`convert_photo`).
        jobs: Photos converted at once (see :func:`run_batch`).
        step: Called with (item, stage name) as each stage starts.
        on_start: Called before each item.
        on_done: Called with each outcome.
        camera_model: The model of ``options.camera_model``, loaded once for the whole batch
            (:func:`~depth2mesh.depth.model.load_camera_model`); None: none, or the depth
            model when it is that model.

    Returns:
        One outcome per item, in order.
    """
    from dataclasses import replace

    from depth2mesh.pipeline.convert import camera_model_for, convert_photo, is_converted

    # loaded once here, not once per photo (a usage error stops the batch before it starts)
    camera_model = camera_model_for(options, model, depth_file, camera_model)

    def process(item: WorkItem) -> tuple[list[Path], tuple[str, ...]] | None:
        target = Path(out_dir) / item.out_subdir
        item_options = options
        if skip_existing:
            if is_converted(item.photo, target, options):
                return None
            item_options = replace(options, overwrite=True)  # redo an interrupted conversion
        result: ConvertResult = convert_photo(
            item.photo,
            target,
            model=model,
            options=item_options,
            depth_file=depth_file,
            step=None if step is None else lambda name: step(item, name),
            camera_model=camera_model,
        )
        return result.files, result.notes

    return run_batch(items, process, jobs=jobs, on_start=on_start, on_done=on_done)


def summarize(outcomes: Sequence[Outcome]) -> dict[Status, int]:
    """Count outcomes by status."""
    counts: dict[Status, int] = {"converted": 0, "skipped": 0, "failed": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


@dataclass
class BatchProgress:
    """Photos done, failures, rate and ETA of a running batch (for progress displays).

    Attributes:
        total: Photos in the batch.
        done: Outcomes so far (converted, skipped or failed).
        failed: Failed outcomes so far.
        converted: Converted outcomes so far (the rate counts these).
        started: ``time.perf_counter()`` when the batch started.
    """

    total: int
    done: int = 0
    failed: int = 0
    converted: int = 0
    started: float = field(default_factory=time.perf_counter)

    def update(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.done += 1
        self.failed += int(outcome.status == "failed")
        self.converted += int(outcome.status == "converted")

    def per_minute(self, now: float | None = None) -> float:
        """Photos converted per minute since the start."""
        elapsed = (time.perf_counter() if now is None else now) - self.started
        return 60.0 * self.converted / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left at the current rate, or None before the first conversion."""
        rate = self.per_minute(now)
        return 60.0 * (self.total - self.done) / rate if rate > 0 else None

    def describe(self, now: float | None = None) -> str:
        """One line: "12/100 photos, 1 failed, 31.5 photos/min, ETA 2 min 48 s"."""
        eta = self.eta_seconds(now)
        left = "ETA --" if eta is None else f"ETA {_duration(eta)}"
        return (
            f"{self.done}/{self.total} photos, {self.failed} failed, "
            f"{self.per_minute(now):.1f} photos/min, {left}"
        )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
