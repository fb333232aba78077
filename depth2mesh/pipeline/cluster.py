"""Batches on a Ray cluster: the local batch's files, outcomes and messages, on many machines.

:func:`convert_on_ray` is :func:`depth2mesh.pipeline.batch.convert_many` on Ray Data. The work items
become a dataset; an actor pool of :class:`PhotoConverter` workers (one model per worker, loaded
once) runs :func:`depth2mesh.pipeline.convert.convert_photo` on each photo and writes its files,
atomically, into an output folder that every node sees (a shared file system path: NFS, CephFS,
Lustre, a
mounted bucket). Outcomes stream back to the driver in order of completion, as the same
:class:`~depth2mesh.pipeline.batch.Outcome` objects the local batch gives, so callers print the same
lines, summary and exit codes.

Phases, all on the cluster (the driver needs neither the model nor the files):

1. Check (unless ``options.overwrite``): which photos have results already. Those fail with
   the local batch's "exists already" message, or are skipped with ``skip_existing``; nothing
   else may exist when the conversions start, so that any file found later is this run's.
2. Convert: every other photo, on the actor pool. A worker killed, or a node lost, costs a
   retry of its photos on a restarted worker (Ray restarts the actor where there is room and
   retries its tasks there); a photo whose result an earlier attempt completed is reported as
   converted without redoing it, and one an attempt left half done is converted again, over its
   leftovers. A photo whose worker died ``attempts_per_photo`` times while converting it (one
   that crashes or exhausts its worker every time) fails with a reason, and the rest go on; a
   block that fails all the same is sent again in a new round (``max_rounds``).
3. Sweep: temporary files that killed attempts left (``.NAME.XXXXXXXX.tmp``) are removed.

Paths (photos, the output folder, the weights) must mean the same on every node. Relative ones
are taken from the driver's working directory, which workers enter when their node has it.

Ray is imported only here, inside the functions: the local path (``depth2mesh.pipeline.batch``, the
CLI without ``--ray``) never imports it. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from depth2mesh.atomic import TEMPORARY_NAME, refuse_existing
from depth2mesh.errors import Depth2MeshError, ParameterError
from depth2mesh.pipeline.batch import Outcome, WorkItem, describe_error, run_batch
from depth2mesh.pipeline.convert import ConvertOptions, convert_photo, is_converted, output_paths

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from depth2mesh.depth.model import DepthModel

    Batch = dict[str, NDArray[Any]]

Mode = Literal["fresh", "overwrite"]
"""How a worker treats results it finds: "fresh" (none existed when the run started, so a
complete one is an earlier attempt's), "overwrite" (replace whatever is there)."""

MAX_BLOCKS: Final = 20_000
"""Most dataset blocks (a block is the unit of scheduling, progress and retry): one photo per
block up to this many photos, then more photos per block."""

CHECK_ROWS_PER_BLOCK: Final = 512
"""Photos per block of the check phase (file-existence tests only)."""


class ClusterError(Depth2MeshError):
    """The Ray path cannot run: Ray missing, no cluster at the address, workers cannot start."""


@dataclass(frozen=True)
class WorkerInfo:
    """Where and when a worker produced an outcome.

    Attributes:
        node_ip: The Ray node's IP address (its ``--node-ip-address``).
        hostname: The node's host name.
        pid: The worker process.
        finished_at: Wall-clock time (``time.time()`` on the node) when the outcome was made.
        attempt: How many times a worker started converting this photo in this run (1 unless
            an earlier worker died on it); 0 when its result was complete at the first look;
            -1 when the run's attempt log could not be reached.
    """

    node_ip: str
    hostname: str
    pid: int
    finished_at: float
    attempt: int = 1


def convert_on_ray(
    items: Sequence[WorkItem],
    out_dir: str | Path,
    *,
    ray_address: str | None,
    options: ConvertOptions,
    weights: str | Path | None = None,
    device: str = "cpu",
    skip_existing: bool = False,
    workers: int | None = None,
    threads_per_worker: int = 1,
    model_options: Mapping[str, Any] | None = None,
    ray_init_options: Mapping[str, Any] | None = None,
    attempts_per_photo: int = 3,
    max_rounds: int = 3,
    on_start: Callable[[WorkItem], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    on_worker: Callable[[Outcome, WorkerInfo], None] | None = None,
) -> list[Outcome]:
    """Convert many photos on a Ray cluster, with the local batch's files and outcomes.

    Args:
        items: From :func:`depth2mesh.pipeline.batch.find_photos`.
        out_dir: Output folder, on storage that every node sees under this same path; each
            item's results go to ``out_dir / item.out_subdir``. Object-store URLs are refused
            (mount the bucket instead).
        ray_address: As ``ray.init`` takes it: "auto", "HOST:PORT", "ray://HOST:10001", or None
            (``RAY_ADDRESS``, else a new local Ray). Unused when Ray is initialised already
            (then that connection is used, and left open).
        options: Conversion options, the same for every photo (checked here).
        weights: Checkpoint path that every node can read; None: each worker resolves it as
            :func:`depth2mesh.load_model` does (``DEPTH2MESH_WEIGHTS``, the torch.hub cache,
            a verified download).
        device: The workers' device: "cpu" or "cuda" (a GPU per worker), as ``load_model``.
        skip_existing: Skip photos whose results are complete; redo the others, replacing what
            an interrupted run left of them (resume a stopped run).
        workers: Size of the actor pool. None: one worker per ``threads_per_worker`` CPUs of
            the cluster at the start (per GPU with ``device="cuda"``), growing with the cluster
            up to one per photo.
        threads_per_worker: CPUs each worker reserves and the threads its model and OpenCV use,
            so that workers do not oversubscribe a node.
        model_options: More keyword arguments for ``load_model`` (e.g. ``{"backend": ...}``).
        ray_init_options: More keyword arguments for ``ray.init`` (e.g.
            ``{"_node_ip_address": "10.0.0.5"}`` when the driver's host has several).
        attempts_per_photo: Workers that may die converting one photo before it fails.
        max_rounds: Dataset runs at most: photos whose blocks failed in one are sent again in
            the next.
        on_start: Called with each item just before its outcome is reported (workers do not
            report starts: the driver learns of a photo when it is done).
        on_done: Called with each outcome as soon as it is known (order of completion).
        on_worker: Called with each outcome that a worker produced and where it ran.

    Returns:
        One outcome per item, in the items' order.

    Raises:
        ValueError: Bad options or arguments.
        ClusterError: Ray is not installed, the cluster cannot be reached, or the workers
            cannot start (e.g. the weights are missing on the nodes).
    """
    out_text = _check_arguments(
        options,
        out_dir,
        skip_existing=skip_existing,
        counts={
            "workers": 1 if workers is None else workers,
            "threads_per_worker": threads_per_worker,
            "max_rounds": max_rounds,
            "attempts_per_photo": attempts_per_photo,
        },
    )
    report = _Reporter(len(items), on_start, on_done, on_worker)
    for index, item in enumerate(items):  # known problems need no cluster
        if item.problem is not None:
            report(index, run_batch([item], _never)[0])
    todo = [index for index, item in enumerate(items) if item.problem is None]
    if todo:
        settings = _Settings(
            out_dir=out_text,
            options=options,
            cwd=os.getcwd(),
            weights=None if weights is None else os.fspath(weights),
            device=device,
            threads=threads_per_worker,
            model_options=dict(model_options or {}),
            attempts_per_photo=attempts_per_photo,
        )
        with _ray_session(ray_address, ray_init_options or {}) as ray:
            _run_on_ray(
                ray,
                items,
                todo,
                settings,
                skip_existing=skip_existing,
                workers=workers,
                max_rounds=max_rounds,
                report=report,
            )
    return report.finish(items, max_rounds)


def _check_arguments(
    options: ConvertOptions, out_dir: str | Path, *, skip_existing: bool, counts: Mapping[str, int]
) -> str:
    """Check :func:`convert_on_ray`'s arguments before anything starts.

    Args:
        options: The conversion options (their own checks run too).
        out_dir: The output folder.
        skip_existing: ``convert_on_ray``'s ``skip_existing``.
        counts: Parameters that must be at least 1, by name.

    Returns:
        ``out_dir`` as a string.

    Raises:
        ValueError: Bad options, ``skip_existing`` with ``overwrite``, a count below 1, or
            an object-store URL as the output folder.
    """
    options.check()
    if skip_existing and options.overwrite:
        raise ParameterError(
            "{skip_existing} and {overwrite} contradict each other: choose one",
            "skip_existing",
            "overwrite",
        )
    for name, count in counts.items():
        if count < 1:
            raise ParameterError(f"{{{name}}} must be at least 1, got {count}", name)
    out_text = os.fspath(out_dir)
    if "://" in out_text:
        raise ValueError(
            f"the output folder must be a file system path that every node sees, got {out_text}: "
            "object-store URLs are not supported (mount the bucket, e.g. with s3fs or gcsfuse)"
        )
    return out_text


class _Reporter:
    """Keeps the first outcome of each item and passes it on to :func:`convert_on_ray`'s callbacks.

    Args:
        count: The number of items.
        on_start: ``convert_on_ray``'s ``on_start``.
        on_done: ``convert_on_ray``'s ``on_done``.
        on_worker: ``convert_on_ray``'s ``on_worker``.
    """

    def __init__(
        self,
        count: int,
        on_start: Callable[[WorkItem], None] | None,
        on_done: Callable[[Outcome], None] | None,
        on_worker: Callable[[Outcome, WorkerInfo], None] | None,
    ) -> None:
        self.outcomes: list[Outcome | None] = [None] * count
        self.on_start = on_start
        self.on_done = on_done
        self.on_worker = on_worker

    def __call__(self, index: int, outcome: Outcome, info: WorkerInfo | None = None) -> None:
        """Record item ``index``'s outcome and call the callbacks, unless it has one already."""
        if self.outcomes[index] is not None:  # a block that ran twice: the first outcome counts
            return
        self.outcomes[index] = outcome
        if self.on_start is not None:
            self.on_start(outcome.item)
        if self.on_done is not None:
            self.on_done(outcome)
        if self.on_worker is not None and info is not None:
            self.on_worker(outcome, info)

    def is_done(self, index: int) -> bool:
        """Whether item ``index`` has its outcome."""
        return self.outcomes[index] is not None

    def finish(self, items: Sequence[WorkItem], max_rounds: int) -> list[Outcome]:
        """Fail the items that have no outcome yet; return every outcome, in the items' order."""
        for index, item in enumerate(items):
            if self.outcomes[index] is None:
                self(
                    index,
                    Outcome(
                        item,
                        "failed",
                        f"no worker could finish it in {max_rounds} rounds: each one died "
                        "(killed, out of memory, or its node left the cluster)",
                    ),
                )
        return [outcome for outcome in self.outcomes if outcome is not None]


def _run_on_ray(
    ray: Any,
    items: Sequence[WorkItem],
    todo: Sequence[int],
    settings: _Settings,
    *,
    skip_existing: bool,
    workers: int | None,
    max_rounds: int,
    report: _Reporter,
) -> None:
    """Check, convert (in up to ``max_rounds`` rounds) and sweep the photos ``todo``.

    Args:
        ray: The connected ``ray`` module.
        items: All the items.
        todo: Indices of the items to convert (those without a known problem).
        settings: What the workers need.
        skip_existing: Report photos with complete results as skipped.
        workers: ``convert_on_ray``'s ``workers``.
        max_rounds: Rounds at most.
        report: Receives each outcome.
    """
    if settings.options.overwrite:
        modes: dict[int, Mode] = dict.fromkeys(todo, "overwrite")
    else:
        modes = dict.fromkeys(_check(ray, items, todo, settings, skip_existing, report), "fresh")
    attempts = _attempt_log(ray)
    for _ in range(max_rounds):
        pending = {index: mode for index, mode in modes.items() if not report.is_done(index)}
        if not pending:
            break
        _convert(ray, items, pending, settings, workers, attempts, report)
    _sweep(ray, items, list(modes), settings)


def _never(item: WorkItem) -> None:
    raise AssertionError(f"{item.photo} has a problem and is never processed")


@dataclass(frozen=True)
class _Settings:
    """What every worker needs to know about the run (pickled into the tasks)."""

    out_dir: str
    options: ConvertOptions
    cwd: str
    weights: str | None
    device: str
    threads: int
    model_options: dict[str, Any]
    attempts_per_photo: int


# --------------------------------------------------------------------------- the driver


@contextlib.contextmanager
def _ray_session(address: str | None, init_options: Mapping[str, Any]) -> Iterator[Any]:
    """Connect to Ray (unless connected), quiet Ray Data's console output; undo both after."""
    try:
        import ray
        from ray.data import DataContext
    except ImportError as error:
        raise ClusterError(
            f"the Ray path needs Ray Data: pip install 'depth2mesh[ray]' ({error})"
        ) from None
    started = False
    if not ray.is_initialized():
        arguments: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        arguments.update(init_options)
        try:
            ray.init(address=address, **arguments)
        except Exception as error:  # ConnectionError, AuthenticationError, ...
            where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
            raise ClusterError(
                f"cannot start or reach Ray at {where}: {_innermost(error)}"
            ) from None
        started = True
    context = DataContext.get_current()
    saved = {name: getattr(context, name) for name in _QUIET if hasattr(context, name)}
    for name in saved:
        setattr(context, name, _QUIET[name])
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.CRITICAL)  # errored blocks are retried here, not reported
    try:
        yield ray
    finally:
        data_logger.setLevel(level)
        for name, value in saved.items():
            setattr(context, name, value)
        if started:
            ray.shutdown()


_QUIET: Final[dict[str, Any]] = {
    "enable_progress_bars": False,
    "print_on_execution_start": False,
    "enable_auto_log_stats": False,
    "max_errored_blocks": -1,  # a block that fails for good is sent again in the next round
}


def _innermost(error: BaseException) -> str:
    """One line for an error that Ray wrapped, often several times.

    The first of our own errors inside it, else the deepest one with a message (without the
    traceback that Ray embeds in some messages).
    """
    seen: list[BaseException] = []
    queue = [error]
    while queue:
        current = queue.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        if isinstance(current, Depth2MeshError):
            return describe_error(current)
        inner = [current.__cause__, getattr(current, "cause", None), *current.args]
        queue += [item for item in inner if isinstance(item, BaseException)]
    for candidate in reversed(seen):
        text = str(candidate).strip()
        if text:
            if "Traceback (most recent call last)" in text:  # keep the exception's own line
                text = text.rstrip().splitlines()[-1]
            return " ".join(text.split())
    return describe_error(error)


def _rows(
    items: Sequence[WorkItem], indices: Sequence[int], modes: Mapping[int, Mode]
) -> list[Any]:
    return [
        {
            "index": index,
            "photo": os.fspath(items[index].photo),
            "out_subdir": os.fspath(items[index].out_subdir),
            "mode": modes.get(index, "fresh"),
        }
        for index in indices
    ]


def _check(
    ray: Any,
    items: Sequence[WorkItem],
    todo: Sequence[int],
    settings: _Settings,
    skip_existing: bool,
    report: Callable[[int, Outcome], None],
) -> list[int]:
    """Phase 1: report photos with results already; return those to convert."""
    blocks = max(1, min(MAX_BLOCKS, -(-len(todo) // CHECK_ROWS_PER_BLOCK)))
    dataset = ray.data.from_items(_rows(items, todo, {}), override_num_blocks=blocks)
    dataset = dataset.map_batches(
        _check_batch,
        fn_kwargs={"settings": settings, "skip_existing": skip_existing},
        batch_size=None,
        batch_format="numpy",
        num_cpus=0.25,
    )
    to_convert: list[int] = []
    try:
        for row in dataset.iter_rows():
            index = int(row["index"])
            if row["result"]:
                report(index, _outcome(items[index], json.loads(str(row["result"]))))
            else:
                to_convert.append(index)
    except Exception as error:  # the file checks cannot fail per photo: the cluster failed
        raise ClusterError(f"the Ray workers failed: {_innermost(error)}") from None
    return to_convert


def _convert(
    ray: Any,
    items: Sequence[WorkItem],
    pending: Mapping[int, Mode],
    settings: _Settings,
    workers: int | None,
    attempts: Any,
    report: Callable[[int, Outcome, WorkerInfo | None], None],
) -> None:
    """Phase 2, one round: convert the pending photos on an actor pool, report each outcome."""
    indices = sorted(pending)
    gpus = 1 if settings.device.startswith("cuda") else 0
    if workers is None:
        resources = ray.cluster_resources()
        capacity = resources.get("GPU", 0) if gpus else resources.get("CPU", 0) // settings.threads
        initial = max(1, min(int(capacity), len(indices)))
        pool = ray.data.ActorPoolStrategy(
            min_size=1, max_size=len(indices), initial_size=initial, max_tasks_in_flight_per_actor=2
        )
    else:
        pool = ray.data.ActorPoolStrategy(
            size=min(workers, len(indices)), max_tasks_in_flight_per_actor=2
        )
    dataset = ray.data.from_items(
        _rows(items, indices, pending), override_num_blocks=min(len(indices), MAX_BLOCKS)
    )
    dataset = dataset.map_batches(
        PhotoConverter,
        fn_constructor_kwargs={"settings": settings, "attempts": attempts},
        batch_size=None,
        batch_format="numpy",
        compute=pool,
        num_cpus=settings.threads,
        num_gpus=gpus,  # Ray Data's actors restart, and retry their tasks, without limit
    )
    received = 0
    try:
        for row in dataset.iter_rows():
            index = int(row["index"])
            payload = json.loads(str(row["result"]))
            report(index, _outcome(items[index], payload), _worker_info(payload))
            received += 1
    except Exception as error:  # nothing done at all: the workers cannot run
        if received == 0:
            raise ClusterError(f"the Ray workers failed: {_innermost(error)}") from None


class AttemptLog:
    """Counts, per photo, the workers that started converting it (an actor on the driver's node).

    Ray retries a dead worker's tasks without limit; this count is what stops a photo that
    kills every worker that takes it.
    """

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}

    def start(self, index: int) -> int:
        """Count one more start of photo ``index``; return the count."""
        self.starts[index] = self.starts.get(index, 0) + 1
        return self.starts[index]

    def counts(self) -> dict[int, int]:
        """Starts per photo index."""
        return dict(self.starts)


def _attempt_log(ray: Any) -> Any:
    """Start the run's :class:`AttemptLog` actor, on the driver's node when it can be."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor = ray.remote(num_cpus=0, max_restarts=0)(AttemptLog)
    with contextlib.suppress(Exception):  # e.g. through Ray Client: anywhere will do
        here = ray.get_runtime_context().get_node_id()
        # hard affinity (a soft one may land on any node): the run ends with the driver's node
        actor = actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
    return actor.remote()


def _sweep(
    ray: Any, items: Sequence[WorkItem], indices: Sequence[int], settings: _Settings
) -> None:
    """Phase 3: remove the temporary files that killed attempts left (on a cluster node)."""
    names: dict[str, list[str]] = {}
    for index in indices:
        item = items[index]
        folder = os.path.join(settings.out_dir, os.fspath(item.out_subdir))
        paths = _paths(item, folder, settings.options)
        names.setdefault(folder, []).extend(path.name for path in paths.values())
    if names:
        task = ray.remote(num_cpus=0, max_retries=3)(_sweep_folders)
        with contextlib.suppress(Exception):  # leftovers are hidden files: never fail for them
            ray.get(task.remote(names, settings.cwd))


def _outcome(item: WorkItem, payload: Mapping[str, Any]) -> Outcome:
    return Outcome(
        item,
        payload["status"],
        payload["reason"],
        [Path(name) for name in payload["files"]],
        float(payload["seconds"]),
        tuple(payload["notes"]),
        payload["traceback"],
    )


def _worker_info(payload: Mapping[str, Any]) -> WorkerInfo | None:
    if "node_ip" not in payload:
        return None
    return WorkerInfo(
        payload["node_ip"],
        payload["hostname"],
        int(payload["pid"]),
        payload["finished_at"],
        int(payload["attempt"]),
    )


def _payload(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "reason": outcome.reason,
        "files": [os.fspath(path) for path in outcome.files],
        "seconds": outcome.seconds,
        "notes": list(outcome.notes),
        "traceback": outcome.traceback,
    }


# --------------------------------------------------------------------------- the workers


def _enter(cwd: str) -> bool:
    """Work in the driver's folder when this node has it (relative paths then agree)."""
    if os.path.isdir(cwd):
        if os.getcwd() != cwd:
            os.chdir(cwd)
        return True
    return False


def _item(row: Mapping[str, Any]) -> tuple[int, WorkItem, Mode]:
    mode: Mode = "overwrite" if str(row["mode"]) == "overwrite" else "fresh"
    return int(row["index"]), WorkItem(Path(str(row["photo"])), Path(str(row["out_subdir"]))), mode


def _relative_without_cwd(item: WorkItem, settings: _Settings) -> str | None:
    paths = (item.photo, Path(settings.out_dir))
    if any(not path.is_absolute() for path in paths):
        return (
            f"{item.photo}: relative paths need the driver's working directory {settings.cwd}, "
            f"which node {socket.gethostname()} does not have: give absolute paths on storage "
            "that every node sees"
        )
    return None


def _paths(item: WorkItem, folder: str | Path, options: ConvertOptions) -> dict[str, Path]:
    return output_paths(
        folder,
        item.photo.stem,
        options.mesh,
        formats=options.formats,
        texture_format=options.texture_format,
    )


def _check_batch(batch: Batch, *, settings: _Settings, skip_existing: bool) -> Batch:
    """Ray Data task of phase 1: an outcome for photos with results, "" for the others."""
    import numpy as np

    has_cwd = _enter(settings.cwd)
    results: list[str] = []
    for row in _batch_rows(batch):
        _, item, _ = _item(row)
        target = Path(settings.out_dir) / item.out_subdir
        problem = None if has_cwd else _relative_without_cwd(item, settings)

        def check(item: WorkItem, target: Path = target, problem: str | None = problem) -> Any:
            if problem is not None:
                raise Depth2MeshError(problem)
            if skip_existing:
                return None if is_converted(item.photo, target, settings.options) else ([], ())
            refuse_existing(_paths(item, target, settings.options).values(), overwrite=False)
            return [], ()

        outcome = run_batch([item], check)[0]
        results.append("" if outcome.status == "converted" else json.dumps(_payload(outcome)))
    return {"index": batch["index"], "result": np.array(results, dtype=object)}


def _batch_rows(batch: Batch) -> Iterator[dict[str, Any]]:
    names = list(batch)
    for values in zip(*(batch[name] for name in names), strict=True):
        yield dict(zip(names, values, strict=True))


class PhotoConverter:
    """A Ray Data worker (one per actor): loads the model once, converts photos with it.

    Each call gets a block of rows (index, photo, out_subdir, mode) and returns, per row, the
    outcome and where it ran as JSON. A photo's failure is its outcome; only the death of the
    process (killed, out of memory, node lost) makes Ray retry the block on a restarted worker.

    Args:
        settings: The run's output folder, options, weights, device and threads.
        attempts: The run's :class:`AttemptLog` actor.
    """

    def __init__(self, *, settings: _Settings, attempts: Any) -> None:
        os.environ["OMP_NUM_THREADS"] = str(settings.threads)
        import cv2
        import torch

        torch.set_num_threads(settings.threads)
        cv2.setNumThreads(settings.threads)
        from depth2mesh.depth.model import load_model

        self.settings = settings
        self.attempts = attempts
        self.has_cwd = _enter(settings.cwd)
        self.model: DepthModel = load_model(
            weights=settings.weights,
            device=settings.device,
            threads=settings.threads,  # the exported backends' own thread pools too
            **settings.model_options,
        )
        self.camera_model = self._camera_model()
        self.node_ip = _node_ip()
        self.hostname = socket.gethostname()

    def _camera_model(self) -> DepthModel | None:
        """The model of ``options.camera_model`` (its own weights' search), loaded once."""
        from depth2mesh.pipeline.convert import camera_model_for

        return camera_model_for(
            self.settings.options, self.model, None, threads=self.settings.threads
        )

    def __call__(self, batch: Batch) -> Batch:
        """Convert the photos of one block; return their outcomes."""
        import numpy as np

        self.has_cwd = _enter(self.settings.cwd)
        results = [json.dumps(self._one(row)) for row in _batch_rows(batch)]
        return {"index": batch["index"], "result": np.array(results, dtype=object)}

    def _one(self, row: Mapping[str, Any]) -> dict[str, Any]:
        index, item, mode = _item(row)
        settings = self.settings
        problem = None if self.has_cwd else _relative_without_cwd(item, settings)
        attempt = 0

        def process(item: WorkItem) -> tuple[list[Path], tuple[str, ...]]:
            nonlocal attempt
            if problem is not None:
                raise Depth2MeshError(problem)
            target = Path(settings.out_dir) / item.out_subdir
            if mode == "fresh" and is_converted(item.photo, target, settings.options):
                return _finished(item, target, settings.options)  # an earlier attempt's
            attempt = self._start(index)
            if attempt > settings.attempts_per_photo:
                raise Depth2MeshError(
                    f"{settings.attempts_per_photo} workers died converting it (crashed, killed, "
                    "out of memory, or their node left the cluster); it was not tried again"
                )
            result = convert_photo(
                item.photo,
                target,
                model=self.model,
                options=replace(settings.options, overwrite=True),  # over any leftovers
                camera_model=self.camera_model,
            )
            return result.files, result.notes

        outcome = run_batch([item], process)[0]
        return {
            **_payload(outcome),
            "node_ip": self.node_ip,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "finished_at": time.time(),
            "attempt": attempt,
        }

    def _start(self, index: int) -> int:
        """Count this start of photo ``index``; -1 when the count cannot be had."""
        import ray

        try:
            return int(ray.get(self.attempts.start.remote(index), timeout=60))
        except Exception:  # the log is a guard against poison photos: never fail a photo for it
            return -1


def _node_ip() -> str:
    import ray

    address: Callable[[], object] = ray.util.get_node_ip_address  # untyped in Ray
    return str(address())


def _finished(
    item: WorkItem, target: Path, options: ConvertOptions
) -> tuple[list[Path], tuple[str, ...]]:
    """The files and notes of a result that an earlier attempt of this run completed."""
    from depth2mesh.exchange.photo import read_photo

    files = list(_paths(item, target, options).values())  # in the order they are written
    try:
        notes = read_photo(item.photo, max_pixels=options.max_pixels).notes
    except Exception:  # it converted once: its notes are a nicety
        notes = ()
    return files, notes


def _sweep_folders(names: Mapping[str, Sequence[str]], cwd: str) -> int:
    """Remove temporary files of these outputs, folder by folder; return how many."""
    _enter(cwd)
    removed = 0
    for folder, outputs in names.items():
        wanted = set(outputs)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = TEMPORARY_NAME.match(entry.name)
            if match is not None and match["name"] in wanted:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
