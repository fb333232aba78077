"""Fast runtimes for the depth network: ONNX Runtime and OpenVINO, fed by a cached ONNX export.

Backends:

- ``"torch"``: the eager PyTorch network (each network's own module in
  :mod:`depth2mesh.depth.networks`), the parity reference; the only one on Apple's MPS, and the
  one ``"auto"`` picks on a CUDA device.
- ``"openvino"``: OpenVINO's CPU plugin on the ONNX export, latency hint, float32 only.
- ``"onnxruntime"``: ONNX Runtime on the ONNX export, all graph optimisations (NCHWc
  layouts, Conv+BN+activation fusion); its CUDA provider on a CUDA device when installed.
- ``"auto"``: on the CPU, the first installed of :data:`AUTO_ORDER` (fastest first, as
  ``benchmarks/network.py`` measured), else ``"torch"``; on any GPU, ``"torch"``. When the
  export or the runtime fails, "auto" warns once and runs eager torch instead; a backend
  named explicitly raises :class:`~depth2mesh.errors.DeviceError`.

All of them compute in float32 (OpenVINO would pick bfloat16 on CPUs with AVX512_BF16 or
AMX unless told not to) and agree with the eager network within 1e-4 of its output range.
Threads: one intra-op thread per physical core (:func:`physical_cores`) unless the caller
gives ``threads``.

The export cache. The network is exported once per weights file into depth2mesh's cache
folder (:func:`depth2mesh.depth.cache.cache_dir`: ``$DEPTH2MESH_CACHE``, else
``$XDG_CACHE_HOME/depth2mesh``, else ``~/.cache/depth2mesh``); nothing is ever written
beside the weights. File name: ``<network's prefix>-<weights sha256>-<network's export tag>-<first
16 hex of the file's own sha256>.onnx`` (:class:`ExportKind`; MiDaS small's is
``midas_v21_small-...-opset17-v1-...``, about 66 MB). Keyed by the weights' sha256, changed
weights get a new export; the file's own hash is checked at every load, so a truncated or
damaged file is deleted and exported again instead of being run. Files are written under a
temporary name and renamed into place, so concurrent processes never see half a file.
Exports of other weights are never deleted. OpenVINO keeps its compiled network in
``openvino-cache/`` inside the cache folder. When the cache folder cannot be written, the
export goes into a temporary folder for this process only (deleted at exit), with one
warning. Exports that earlier versions wrote beside a weights file are still used when
found there (:func:`legacy_export_dirs`), read only.

This module never imports torch: each network exports itself
(:meth:`depth2mesh.depth.networks.base.DepthNetwork.export`), and :mod:`depth2mesh.depth.model`
passes the export function in. The runtimes are imported only when a backend is created.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from depth2mesh.atomic import process_umask, publish, temporary_file
from depth2mesh.depth.cache import CACHE_ENV, OPENVINO_CACHE, cache_dir, writable_folder
from depth2mesh.depth.networks.base import INPUT_NAME
from depth2mesh.depth.registry import DEFAULT_MODEL, MODELS, ModelSpec
from depth2mesh.depth.weights import file_sha256
from depth2mesh.errors import DeviceError, DeviceParameterError, InputError

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
"""Accepted values of ``backend``."""

AUTO_ORDER = ("openvino", "onnxruntime")
"""Exported backends in the order ``"auto"`` tries them on the CPU: fastest first."""

PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
"""The Python packages each exported backend needs (``onnx``: torch's ONNX exporter)."""


@dataclass(frozen=True)
class ExportKind:
    """Which export a cache file holds: the network's prefix and export tag for a backend.

    Attributes:
        prefix: First part of the file name (the network's
            :meth:`~depth2mesh.depth.networks.base.DepthNetwork.export_prefix` for the backend).
        tag: The network's export tag, bumped whenever its export changes.
    """

    prefix: str
    tag: str


def export_kind(spec: ModelSpec, backend: str) -> ExportKind:
    """The export of ``spec``'s network that ``backend`` runs."""
    return ExportKind(spec.network.export_prefix(backend), spec.network.export_tag)


DEFAULT_KIND = export_kind(MODELS[DEFAULT_MODEL], "openvino")
"""The default model's export (what the cache functions use when given no kind)."""

MULTIPLE = MODELS[DEFAULT_MODEL].network.size_multiple
"""What a network input's sides are multiples of unless a runner is told otherwise."""

Exporter = Callable[[Path], None]
"""Writes the network as ONNX to the given path (see
:meth:`depth2mesh.depth.networks.base.DepthNetwork.export`)."""


class NetworkRunner(Protocol):
    """A compiled network: (1, 3, h, w) float32 in, its first output (1, h, w) float32 out."""

    backend: str
    """Which backend runs it."""

    def __call__(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """Run the network on one C-contiguous (1, 3, h, w) float32 input.

        ``extra``: the graph's further inputs, in order
        (:meth:`~depth2mesh.depth.networks.base.DepthNetwork.graph_inputs`).
        """
        ...

    def run_all(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], ...]:
        """As ``__call__``, but every output of the graph, in its order."""
        ...


# --------------------------------------------------------------------------- choice


def check_backend(backend: str) -> str:
    """Normalise a backend name.

    Args:
        backend: One of :data:`BACKENDS`, any case.

    Returns:
        The lower-case name.

    Raises:
        DeviceError: Unknown name.
    """
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise DeviceError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return name


def backend_installed(backend: str) -> bool:
    """Whether the packages an exported backend needs are installed ("torch": always)."""
    return all(importlib.util.find_spec(package) for package in PACKAGES.get(backend, ()))


def available_backends() -> tuple[str, ...]:
    """Return the backends usable here: "torch", then the installed exported ones."""
    return ("torch", *(name for name in AUTO_ORDER if backend_installed(name)))


def choose_backend(backend: str, device_type: str) -> str:
    """Resolve ``backend`` for a torch device type, checking that it can run there.

    Args:
        backend: One of :data:`BACKENDS`.
        device_type: ``torch.device.type``: "cpu", "cuda" or "mps".

    Returns:
        "torch", "onnxruntime" or "openvino".

    Raises:
        DeviceError: Unknown backend, its package is missing, or it cannot use the device.
    """
    name = check_backend(backend)
    if name == "auto":
        if device_type != "cpu":
            return "torch"
        return next((item for item in AUTO_ORDER if backend_installed(item)), "torch")
    if name == "torch":
        return name
    if not backend_installed(name):
        raise DeviceParameterError(
            f"backend {name!r} needs the packages {' and '.join(PACKAGES[name])}, which are "
            f"not all installed: pip install 'depth2mesh[{name}]', or use {{backend='torch'}}",
            "backend",
        )
    if device_type == "cpu":
        return name
    if name == "onnxruntime" and device_type == "cuda" and _ort_has_cuda():
        return name
    raise DeviceParameterError(
        f"backend {name!r} cannot run on device {device_type!r} here: use {{backend='torch'}} "
        "for GPUs, or {device='cpu'}",
        "backend",
        "device",
    )


def _ort_has_cuda() -> bool:
    ort: Any = importlib.import_module("onnxruntime")
    return "CUDAExecutionProvider" in ort.get_available_providers()


def physical_cores() -> int:
    """Return the number of physical cores this process may run on (at least 1).

    On Linux, the CPUs in the affinity mask grouped by their hyper-thread siblings; elsewhere
    ``os.cpu_count()``. One thread per physical core is what compute-bound convolutions want:
    a second hyper-thread shares the same vector units.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
    cores: set[str] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(topology.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


# --------------------------------------------------------------------------- export cache

_scratch: list[Path] = []
"""This process's temporary export folder, once the cache folder turned out unwritable."""

_scratch_lock = threading.Lock()

_warned_unwritable: list[Path] = []
"""The unwritable cache folder already warned about in this process (one note only)."""


def scratch_dir() -> Path:
    """Return this process's temporary export folder, creating it on first use.

    Used only when the cache folder cannot be written; deleted when the process exits.
    """
    with _scratch_lock:
        if not _scratch:
            folder = Path(tempfile.mkdtemp(prefix="depth2mesh-export-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _scratch.append(folder)
        return _scratch[0]


def export_dirs(folder: Path | None = None) -> list[Path]:
    """Return the folders that may hold this process's exports, in order.

    Args:
        folder: The cache folder (default :func:`depth2mesh.depth.cache.cache_dir`).

    Returns:
        ``[<cache folder>]``, plus this process's temporary folder once it exists.
    """
    return [cache_dir() if folder is None else folder, *_scratch]


def legacy_export_dirs(weights_path: str | Path) -> list[Path]:
    """Return where earlier versions wrote exports: beside the (symlink-resolved) weights.

    Exports found there are used (read only); nothing is ever written or deleted there.
    """
    return [Path(weights_path).resolve().parent]


def export_stem(weights_sha256: str, kind: ExportKind = DEFAULT_KIND) -> str:
    """Return the cache file name up to its own hash: ``<prefix>-<weights sha>-<tag>``.

    Args:
        weights_sha256: The weights' sha256 (hex).
        kind: The network's export (:func:`export_kind`).
    """
    return f"{kind.prefix}-{weights_sha256}-{kind.tag}"


def find_export(
    weights_sha256: str,
    dirs: Sequence[Path],
    *,
    legacy: Sequence[Path] = (),
    kind: ExportKind = DEFAULT_KIND,
) -> Path | None:
    """Return a cached export for these weights whose bytes match its name, or None.

    In ``dirs`` (depth2mesh's own folders), files whose sha256 does not match the one in
    their name (truncated, damaged) are deleted where possible, with a warning. In
    ``legacy`` (folders of the user's, searched last) such files are skipped, untouched.

    Args:
        weights_sha256: The weights' sha256 (hex).
        dirs: depth2mesh's folders to search, in order.
        legacy: Other folders to search, read only.
        kind: The network's export (see :func:`export_stem`).

    Returns:
        The first intact export, or None.
    """
    stem = export_stem(weights_sha256, kind)
    for folder, own in [*((item, True) for item in dirs), *((item, False) for item in legacy)]:
        try:
            candidates = sorted(folder.glob(f"{stem}-*.onnx"))
        except OSError:
            continue
        for candidate in candidates:
            expected = candidate.name[len(stem) + 1 : -len(".onnx")]
            try:
                actual = file_sha256(candidate)
            except OSError:
                continue
            if len(expected) == 16 and actual.startswith(expected):
                return candidate
            if not own:
                continue
            warnings.warn(
                f"the cached network export {candidate} is damaged (sha256 {actual[:16]}, "
                f"expected {expected}); it is replaced by a new export",
                UserWarning,
                stacklevel=2,
            )
            with contextlib.suppress(OSError):
                candidate.unlink()
    return None


def write_export(
    weights_sha256: str, export: Exporter, folder: Path, *, kind: ExportKind = DEFAULT_KIND
) -> Path:
    """Export into ``folder`` under a temporary name, hash it, rename it into place.

    Args:
        weights_sha256: The weights' sha256 (hex), the cache key.
        export: Writes the ONNX file to a path.
        folder: Where to put it (created if missing).
        kind: The network's export (see :func:`export_stem`).

    Returns:
        The cache file.

    Raises:
        OSError: The folder cannot be created or written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = export_stem(weights_sha256, kind)
    with temporary_file(folder, stem, suffix=".part") as temporary:
        export(temporary)
        digest = file_sha256(temporary)
        os.chmod(temporary, 0o666 & ~process_umask())  # the exporter may have replaced it
        return publish(temporary, folder / f"{stem}-{digest[:16]}.onnx", overwrite=True)


def cached_export(
    weights_sha256: str,
    export: Exporter,
    folder: Path | None = None,
    *,
    legacy: Sequence[Path] = (),
    kind: ExportKind = DEFAULT_KIND,
) -> tuple[Path, bool]:
    """Return an intact ONNX export of the weights, exporting only when none is cached.

    Args:
        weights_sha256: The weights' sha256 (hex), the cache key.
        export: Writes the ONNX file to a path.
        folder: The cache folder (default :func:`depth2mesh.depth.cache.cache_dir`).
        legacy: Folders searched read only, after the cache (:func:`legacy_export_dirs`).
        kind: The network's export (see :func:`export_stem`).

    Returns:
        (path, exported now). When the cache folder cannot be written, the export goes
        into :func:`scratch_dir`, with one warning per process.
    """
    target = cache_dir() if folder is None else folder
    found = find_export(weights_sha256, export_dirs(target), legacy=legacy, kind=kind)
    if found is not None:
        return found, False
    if writable_folder(target):
        try:
            return write_export(weights_sha256, export, target, kind=kind), True
        except OSError:
            pass
    scratch = scratch_dir()
    if not _warned_unwritable:
        _warned_unwritable.append(target)
        warnings.warn(
            f"the cache folder {target} is not writable: the network is exported into a "
            "temporary folder for this process only, so each run exports it again (a few "
            f"seconds); set {CACHE_ENV} to a writable folder",
            UserWarning,
            stacklevel=2,
        )
    return write_export(weights_sha256, export, scratch, kind=kind), True


def compiled_cache_dir(folder: Path | None = None) -> Path | None:
    """Return where OpenVINO may keep compiled networks, or None when it cannot be written.

    Args:
        folder: The cache folder (default :func:`depth2mesh.depth.cache.cache_dir`).

    Returns:
        ``<cache folder>/openvino-cache``, or None.
    """
    target = (cache_dir() if folder is None else folder) / OPENVINO_CACHE
    return target if writable_folder(target) else None


# --------------------------------------------------------------------------- runners


def check_network_input(
    network_input: NDArray[np.float32], multiple: int = MULTIPLE
) -> NDArray[np.float32]:
    """Check a network input's shape and return it as C-contiguous float32.

    Args:
        network_input: (1, 3, h, w).
        multiple: What h and w must be multiples of (the network's size multiple).

    Raises:
        InputError: Not (1, 3, h, w) with h and w positive multiples of ``multiple``.
    """
    shape = network_input.shape
    if (
        len(shape) != 4
        or shape[:2] != (1, 3)
        or shape[2] < multiple
        or shape[3] < multiple
        or shape[2] % multiple
        or shape[3] % multiple
    ):
        raise InputError(
            f"expected a network input (1, 3, h, w) with h and w multiples of {multiple}, "
            f"got shape {tuple(shape)}"
        )
    return np.ascontiguousarray(network_input, dtype=np.float32)


class _ExportRunner:
    """What the runners of an ONNX export share.

    ``__call__`` is the first output of ``run_all``, which each runner implements.
    """

    def __call__(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """Run (1, 3, h, w) float32 [and the graph's further inputs] -> (1, h, w) float32."""
        return self.run_all(network_input, *extra)[0]

    def run_all(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], ...]:
        """Run the graph; return every output, in the graph's order, as float32."""
        raise NotImplementedError


class OnnxRuntimeRunner(_ExportRunner):
    """The ONNX export on ONNX Runtime (CPU, or CUDA when asked for and installed).

    All graph optimisations (level ``ORT_ENABLE_ALL``: constant folding, Conv+BatchNorm+Clip
    fusion, NCHWc blocked layouts for AVX2/AVX-512), one intra-op thread per physical core,
    sequential execution, and no spin-waiting once a run is over (the rest of the pipeline
    gets the cores back at once). Session.run is thread-safe.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        onnx_path: Path,
        *,
        threads: int,
        cuda_device: int | None = None,
        multiple: int = MULTIPLE,
    ) -> None:
        self.multiple = multiple
        ort: Any = importlib.import_module("onnxruntime")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings on stderr
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list[Any] = ["CPUExecutionProvider"]
        if cuda_device is not None:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": cuda_device}))
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self.input_names = [item.name for item in self.session.get_inputs()]

    def run_all(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], ...]:
        """Run the graph; return every output, in the graph's order, as float32."""
        feed = {INPUT_NAME: check_network_input(network_input, self.multiple)}
        for name, value in zip(self.input_names[1:], extra, strict=True):
            feed[name] = np.ascontiguousarray(value, dtype=np.float32)
        outputs = self.session.run(None, feed)
        return tuple(np.asarray(output, dtype=np.float32) for output in outputs)


class OpenVinoRunner(_ExportRunner):
    """The ONNX export on OpenVINO's CPU plugin.

    Hints: ``PERFORMANCE_HINT=LATENCY`` (one stream, one request at a time),
    ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO would otherwise pick bf16 on CPUs with
    AVX512_BF16 or AMX, which breaks parity), ``INFERENCE_NUM_THREADS`` = ``threads``,
    ``ENABLE_CPU_PINNING=False`` (a thread pinned to a core that another process is busy on
    cannot move; unpinned had the shorter tail on a shared machine).
    The graph keeps dynamic h and w; one infer request, guarded by a lock (an infer request
    must not run twice at the same time). With ``cache_dir``, OpenVINO keeps the compiled
    network there (keyed by the model, the settings and the CPU) and later processes load it
    instead of compiling again: 0.1 s instead of 0.35 s per process here.
    """

    backend = "openvino"

    def __init__(
        self,
        onnx_path: Path,
        *,
        threads: int,
        cache_dir: Path | None = None,
        multiple: int = MULTIPLE,
    ) -> None:
        self.multiple = multiple
        ov: Any = importlib.import_module("openvino")
        core = ov.Core()
        if cache_dir is not None:
            core.set_property({"CACHE_DIR": str(cache_dir)})
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads,
            "ENABLE_CPU_PINNING": False,
        }
        self.compiled = core.compile_model(str(onnx_path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()

    def run_all(
        self, network_input: NDArray[np.float32], *extra: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], ...]:
        """Run the graph; return every output, in the graph's order, as float32."""
        feed = {0: check_network_input(network_input, self.multiple)}
        for index, value in enumerate(extra, start=1):
            feed[index] = np.ascontiguousarray(value, dtype=np.float32)
        with self.lock:
            result = self.request.infer(feed, share_inputs=True, share_outputs=False)
            count = len(self.compiled.outputs)
            return tuple(np.asarray(result[i], dtype=np.float32) for i in range(count))


def create_runner(
    backend: str,
    onnx_path: Path,
    *,
    threads: int | None = None,
    cuda_device: int | None = None,
    compiled_cache: Path | None = None,
    multiple: int = MULTIPLE,
) -> NetworkRunner:
    """Compile the ONNX export for an exported backend.

    Args:
        backend: "onnxruntime" or "openvino".
        onnx_path: The export, from :func:`cached_export`.
        threads: Intra-op threads (>= 1); default :func:`physical_cores`.
        cuda_device: CUDA device index for ONNX Runtime's CUDA provider, or None for the CPU.
        compiled_cache: Folder where OpenVINO keeps compiled networks
            (:func:`compiled_cache_dir`); None: none kept. ONNX Runtime ignores it.
        multiple: What the input's sides must be multiples of (the network's size multiple).

    Returns:
        The runner.

    Raises:
        ValueError: ``threads`` is below 1.
        DeviceError: Not an exported backend, or the runtime refused the export.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    count = threads if threads is not None else physical_cores()
    try:
        if backend == "onnxruntime":
            return OnnxRuntimeRunner(
                onnx_path, threads=count, cuda_device=cuda_device, multiple=multiple
            )
        if backend == "openvino":
            return OpenVinoRunner(
                onnx_path, threads=count, cache_dir=compiled_cache, multiple=multiple
            )
    except Exception as error:  # the runtimes raise their own exception types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DeviceParameterError(
            f"backend {backend!r} could not load the network export {onnx_path} "
            f"({reason[:200]}); use {{backend='torch'}}",
            "backend",
        ) from error
    raise DeviceError(
        f"backend {backend!r} does not run an ONNX export: use onnxruntime or openvino"
    )
