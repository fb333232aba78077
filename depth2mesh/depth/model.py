"""The depth stage: load a model of the registry, run it on a photo, on the chosen backend.

The models are those of :mod:`depth2mesh.depth.registry`. Each one's network
(:class:`~depth2mesh.depth.networks.base.DepthNetwork`) preprocesses photos exactly as its
official transform does, resizes its output as its official code does, and builds and exports
its PyTorch module; this module finds the weights, picks the device and the backend, and asks
the network for everything else (it never asks which network it is). It imports torch only when
torch is needed (the eager backend, a first export, a GPU check): with a cached export on the
CPU a conversion never pays torch's start-up.

Output convention: relative models predict **disparity**, relative inverse depth (larger is
nearer, 0 for sky, unknown scale and shift), never called depth here: :func:`predict_disparity`.
Metric models predict **depth in metres**: :func:`predict_depth`. Each refuses the other kind
with :class:`~depth2mesh.errors.OutputKindError`.

Backends: the eager network is the reference ("torch"); :func:`load_model` can also export
it to ONNX once (into depth2mesh's cache folder, :mod:`depth2mesh.depth.cache`, never beside the
weights; :mod:`depth2mesh.depth.backends` makes and checks the export) and run it on ONNX Runtime
or OpenVINO, which are several times faster on CPUs. ``backend="auto"`` picks the fastest
one installed.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from depth2mesh.depth import backends
from depth2mesh.depth.backends import NetworkRunner
from depth2mesh.depth.networks.base import OUTPUT_NAMES
from depth2mesh.depth.registry import (
    DEFAULT_MODEL,
    MODELS,
    ModelSpec,
    check_camera_model,
    check_input_size,
    get_model,
)
from depth2mesh.depth.weights import (
    ProgressCallback,
    file_sha256,
    resolve_model_weights,
)
from depth2mesh.errors import (
    DeviceError,
    DeviceParameterError,
    OutputKindError,
    UnofficialWeightsWarning,
    WeightsError,
)

if TYPE_CHECKING:
    from torch import nn

    Network = nn.Module

MODEL_NAME = MODELS[DEFAULT_MODEL].title
"""The default network's name, as the sidecar JSON gives it."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""Accepted values of ``device``; "auto" picks cuda, then mps, then cpu."""

# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class DepthModel:
    """A loaded depth network: which model, its backend, and where its weights came from.

    Attributes:
        device: The device it runs on: "cpu", "cuda:N" or "mps" (a torch device name).
        weights_path: The checkpoint file.
        weights_sha256: Its sha256 (hex).
        weights_origin: "argument", "environment", "cache" or "download".
        backend: What runs :func:`predict_disparity`: "torch" (:attr:`network` itself),
            "onnxruntime" or "openvino" (``runner``, compiled from ``export_path``).
        runner: The compiled network of an exported backend; None for "torch".
        export_path: The cached ONNX export the runner was compiled from (in the cache
            folder, :func:`depth2mesh.depth.cache.cache_dir`); None for "torch".
    """

    device: str
    weights_path: Path
    weights_sha256: str
    weights_origin: str
    backend: str = "torch"
    runner: NetworkRunner | None = field(default=None, repr=False, compare=False)
    export_path: Path | None = None
    eager_network: Network | None = field(default=None, repr=False, compare=False)
    """The eager network once built (always for "torch"); use :attr:`network`."""
    exported_now: bool = False
    """Whether this load exported the network (False when a cached export was used)."""
    load_timings_s: dict[str, float] = field(default_factory=dict, compare=False)
    """Seconds spent by :func:`load_model`, per step: "weights" (find and hash the file),
    "network" (read the checkpoint, build the eager network; only when built), "export"
    (only when exported in this load), "compile" (the exported backends' runner) and
    "total"."""
    spec: ModelSpec = MODELS[DEFAULT_MODEL]
    """The model's registry entry: name, output kind ("disparity" or "metric"), max depth,
    default input size, licence, release."""
    input_size: int = 0
    """The network input size it runs at, as its network reads it (MiDaS: the long side, 256;
    Depth Anything: the shorter side's least size, a multiple of 14); 0 when made: the
    model's default."""

    def __post_init__(self) -> None:
        if self.input_size == 0:
            object.__setattr__(self, "input_size", self.spec.input_size)

    @property
    def output(self) -> str:
        """What the network outputs: "disparity" (relative inverse depth) or "metric" (metres)."""
        return self.spec.output

    @property
    def max_depth(self) -> float | None:
        """A metric model's largest depth, metres; None for a relative model."""
        return self.spec.max_depth

    def describe(self) -> dict[str, Any]:
        """Return the "model" block of a conversion's sidecar JSON.

        Returns:
            ``{"name" (the model's title), "model" (its ``--model`` name), "output"
            ("disparity" or "metric"), "max_depth_m" (None for relative models),
            "input_size", "weights_sha256", "official_weights" (None when the release's
            sha256 is not known), "device", "backend", "export" (the export's file name, or
            None for "torch"), "exported_now", "load_timings_s" (seconds, rounded to the
            millisecond)}``; JSON-serialisable.
        """
        return {
            "name": self.spec.title,
            "model": self.spec.name,
            "output": self.spec.output,
            "max_depth_m": self.spec.max_depth,
            "input_size": self.input_size,
            "weights_sha256": self.weights_sha256,
            "official_weights": self.official,
            "device": self.device,
            "backend": self.backend,
            "export": self.export_path.name if self.export_path is not None else None,
            "exported_now": self.exported_now,
            "load_timings_s": {key: round(value, 3) for key, value in self.load_timings_s.items()},
        }

    @property
    def official(self) -> bool | None:
        """Whether the weights are the official release (by sha256).

        None when the release's sha256 is not known (``dav2-metric-indoor``).
        """
        if self.spec.sha256 is None:
            return None
        return self.weights_sha256 == self.spec.sha256

    @property
    def network(self) -> Network:
        """The eager PyTorch network, in eval mode, on ``device``.

        Exported backends do not need it once their export is cached, so for them it is read
        from ``weights_path`` on first use (after checking that the file still has
        ``weights_sha256``).

        Raises:
            WeightsError: The weights file changed or vanished since :func:`load_model`.
        """
        network = self.eager_network
        if network is None:
            try:
                digest = file_sha256(self.weights_path)
            except OSError as error:
                raise WeightsError(
                    f"{self.weights_path} cannot be read any more ({error.strerror or error}); "
                    "load the model again"
                ) from error
            if digest != self.weights_sha256:
                raise WeightsError(
                    f"{self.weights_path} changed since the model was loaded (sha256 "
                    f"{digest[:12]}..., loaded {self.weights_sha256[:12]}...); load it again"
                )
            network = build_eager(self.spec, self.weights_path).to(self.device)
            object.__setattr__(self, "eager_network", network)  # a cache, not a new state
        return network


def resolve_device(device: str) -> str:
    """Turn "auto", "cpu", "cuda", "cuda:N" or "mps" into a present device's name.

    "cpu" never imports torch, and neither does "auto" on a Linux machine without GPU device
    files (:func:`gpu_possible`); anything else asks torch.

    Args:
        device: The requested device; "auto" is cuda if present, else mps, else cpu.

    Returns:
        "cpu", "mps" or "cuda:N".

    Raises:
        DeviceError: Unknown name, or the device is not present on this machine.
    """
    name = device.strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES or (":" in name and kind != "cuda"):
        raise DeviceError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not gpu_possible()):
        return "cpu"
    from depth2mesh.depth.networks.torch_common import present_device

    return present_device(name)


def gpu_possible(dev: Path = Path("/dev")) -> bool:
    """Whether torch could find a GPU here; False only where it certainly cannot.

    On Linux, CUDA needs the NVIDIA driver's ``/dev/nvidia*`` files and ROCm (which torch
    also reports as CUDA) needs ``/dev/kfd``; without them, ``torch.cuda.is_available()`` is
    False, and "auto" is "cpu" without importing torch. Other systems (macOS with MPS,
    Windows) always ask torch.

    Args:
        dev: The device-file folder (a parameter for tests).
    """
    if not sys.platform.startswith("linux"):
        return True
    try:
        return (dev / "kfd").exists() or any(dev.glob("nvidia*"))
    except OSError:
        return True


def torch_hub_dir(environ: dict[str, str] | None = None) -> Path:
    """Return ``torch.hub.get_dir()`` without importing torch (unless torch is loaded already).

    torch's rule: ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else
    ``~/.cache/torch/hub`` (a variable set but empty counts as set, as in torch). A folder
    set with ``torch.hub.set_dir`` in this process wins, which only matters when torch is
    already imported.

    Args:
        environ: The environment (default ``os.environ``).
    """
    if environ is None and "torch" in sys.modules:
        hub: Any = sys.modules["torch"].hub
        return Path(hub.get_dir())
    env = os.environ if environ is None else environ
    torch_home = env.get("TORCH_HOME", os.path.join(env.get("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub"


def load_model(
    weights: str | Path | None = None,
    *,
    model: str = DEFAULT_MODEL,
    device: str = "cpu",
    backend: str = "auto",
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    input_size: int | None = None,
    preparing: Callable[[str], None] | None = None,
) -> DepthModel:
    """Load a depth model, finding or downloading its weights, on the chosen backend.

    Weights are found as :func:`depth2mesh.depth.weights.resolve_weights` describes: ``weights``,
    the model's own variable (``DEPTH2MESH_WEIGHTS`` for MiDaS small,
    ``DEPTH2MESH_WEIGHTS_DAV2_SMALL`` etc.), the torch.hub cache under the release's own
    file name, then a verified download. A file whose sha256 is not the official one still
    loads when its keys and shapes match, with one
    :class:`~depth2mesh.errors.UnofficialWeightsWarning` (not for ``dav2-metric-indoor``,
    whose release sha256 is not known: its keys and shapes are checked, its sha256 recorded).

    For "onnxruntime" and "openvino", the network is exported to ONNX the first time these
    weights are used (a few seconds) into depth2mesh's cache folder
    (:func:`depth2mesh.depth.cache.cache_dir`), keyed by the weights' sha256 (see
    :mod:`depth2mesh.depth.backends`); nothing is written beside the weights file. Later loads
    compile the cached file without building the eager network or importing torch
    (``DepthModel.network`` builds it on first use). When the cache folder cannot be
    written, the export goes to a temporary folder for this process, with one warning.

    One export per weights file serves every input size the network takes (exports take
    their size-dependent constants as further graph inputs).

    Args:
        weights: Path of a checkpoint, or None to search.
        model: A name of :data:`depth2mesh.depth.registry.MODELS` (default
            :data:`~depth2mesh.depth.registry.DEFAULT_MODEL`).
        device: "cpu" (default), "cuda", "cuda:N", "mps" or "auto".
        backend: "auto" (default: on the CPU the fastest installed of OpenVINO and ONNX
            Runtime, else torch; on a GPU torch), "torch", "onnxruntime" or "openvino".
        threads: Intra-op threads of the network, >= 1. For the exported backends, the
            runner's own setting (default: one per physical core). For "torch" (chosen, or
            fallen back to), ``torch.set_num_threads`` when given, which is process-wide;
            None leaves torch's setting alone.
        progress: Download progress callback ``(bytes_done, bytes_total | None)``.
        input_size: The network input size, pixels, as the model's network allows (Depth
            Anything: the least side, a multiple of 14, default 518; more is slower and
            sharper; MiDaS small's is fixed at 256); None: the model's default.
        preparing: Called with the backend's name ("openvino", "onnxruntime") when no export
            of these weights is cached, before the export and the compile start (the slow
            first load, seconds): for telling the user what is happening.

    Returns:
        The model, ready for :func:`predict_disparity` (relative models) or
        :func:`predict_depth` (metric ones), with ``exported_now`` and ``load_timings_s``
        recorded.

    Raises:
        WeightsError: No usable weights (the message says how to get them).
        DeviceError: The device or backend is unknown, absent, or they do not go together.
        ParameterError: Unknown ``model``, or an ``input_size`` it cannot take.
        ValueError: ``threads`` is below 1.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    spec = get_model(model)
    size = check_input_size(spec, input_size)
    clock = _Stopwatch()
    target = resolve_device(device)
    chosen = backends.choose_backend(backend, target.split(":", 1)[0])
    found = resolve_model_weights(spec, weights, hub_dir=torch_hub_dir(), progress=progress)
    digest = file_sha256(found.path)
    clock.timings["weights"] = time.perf_counter() - clock.start
    legacy = backends.legacy_export_dirs(found.path)
    export_path: Path | None = None
    if chosen != "torch":
        export_path = backends.find_export(
            digest, backends.export_dirs(), legacy=legacy, kind=backends.export_kind(spec, chosen)
        )
    if chosen != "torch" and export_path is None and preparing is not None:
        preparing(chosen)
    network = None
    if export_path is None:  # the eager network is needed: to run, or to export
        network = _build_eager_network(spec, found.path, target, clock)
    if spec.sha256 is not None and digest != spec.sha256:
        warnings.warn(
            f"{found.path} is not the official {spec.title} release (sha256 "
            f"{digest[:12]}..., official {spec.sha256[:12]}...); its keys and shapes fit, "
            "so it is used as is",
            UnofficialWeightsWarning,
            stacklevel=2,
        )
    loaded = DepthModel(
        target,
        found.path,
        digest,
        found.origin,
        eager_network=network,
        spec=spec,
        input_size=size,
    )
    if chosen == "torch":
        return _eager_model(loaded, threads, clock)
    return _exported_model(
        loaded, chosen, backend, export_path, legacy=legacy, threads=threads, clock=clock
    )


def load_camera_model(
    name: str,
    weights: str | Path | None = None,
    *,
    device: str = "cpu",
    backend: str = "auto",
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    preparing: Callable[[str], None] | None = None,
) -> DepthModel:
    """Load a model that estimates the camera (``camera_model``: moge2-small), for its focal.

    As :func:`load_model`, at the model's least input size (MoGe-2: 1200 tokens, the
    fastest), its weights found as its own ``--model`` would find them.

    Args:
        name: A model whose output is "points" (:func:`~depth2mesh.depth.registry.camera_models`).
        weights: Its checkpoint, or None to search.
        device: As :func:`load_model`.
        backend: As :func:`load_model`.
        threads: As :func:`load_model`.
        progress: As :func:`load_model`.
        preparing: As :func:`load_model`.

    Raises:
        ParameterError: ``name`` is no model that estimates a camera (names ``camera_model``).
        WeightsError: No usable weights.
    """
    spec = get_model(check_camera_model(name))
    return load_model(
        weights,
        model=spec.name,
        device=device,
        backend=backend,
        threads=threads,
        progress=progress,
        input_size=spec.network.least_input_size,
        preparing=preparing,
    )


class _Stopwatch:
    """The start of :func:`load_model` and the seconds its steps took, by step name."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    def total(self) -> dict[str, float]:
        """Record the seconds since the start as "total"; return the timings."""
        self.timings["total"] = time.perf_counter() - self.start
        return self.timings


def build_eager(spec: ModelSpec, path: Path) -> Network:
    """Read a checkpoint (strictly checked) and build its eager network on the CPU.

    Raises:
        WeightsError: The file is not a checkpoint of ``spec``'s network.
    """
    network: Network = spec.network.build(path, spec)
    return network


def _build_eager_network(spec: ModelSpec, path: Path, target: str, clock: _Stopwatch) -> Network:
    """Build the eager torch network from a checkpoint on ``target`` (imports torch).

    Args:
        spec: The model.
        path: The checkpoint.
        target: The torch device, as :func:`resolve_device` gives it.
        clock: Gets the seconds this took as "network".

    Returns:
        The network, on ``target``.
    """
    mark = time.perf_counter()
    network = build_eager(spec, path).to(target)
    clock.timings["network"] = time.perf_counter() - mark
    return network


def _eager_model(loaded: DepthModel, threads: int | None, clock: _Stopwatch) -> DepthModel:
    """The model on eager torch, with ``threads`` set process-wide when given."""
    if threads is not None:
        from depth2mesh.depth.networks.torch_common import set_torch_threads

        set_torch_threads(threads)
    return replace(loaded, load_timings_s=dict(clock.total()))


def _exported_model(
    loaded: DepthModel,
    chosen: str,
    backend: str,
    export_path: Path | None,
    *,
    legacy: Sequence[Path],
    threads: int | None,
    clock: _Stopwatch,
) -> DepthModel:
    """The model on an exported backend, or on eager torch when that fails and may fall back.

    Args:
        loaded: The eager model (its network is built on first use when needed).
        chosen: The backend to run on, "onnxruntime" or "openvino".
        backend: The backend asked for; only "auto" falls back to torch (with a warning).
        export_path: The network's ONNX export found in a cache, or None to export it now.
        legacy: Former export folders, searched too.
        threads: The runner's intra-op threads; None: its default.
        clock: Gets "export" (when exported now), "compile" and "total" seconds.

    Returns:
        The model with its runner, or the eager model after a fallback.

    Raises:
        DeviceError: The export or the runner failed and ``backend`` is not "auto".
    """
    try:
        runner, export_path, exported_now = _export_and_compile(
            loaded, chosen, export_path, legacy=legacy, threads=threads, clock=clock
        )
    except Exception as error:  # the exporter and the runtimes raise many kinds of errors
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
        if backends.check_backend(backend) == "auto":
            warnings.warn(
                f"the {chosen} backend is unusable here ({reason}); the network runs on "
                "eager torch instead (slower)",
                UserWarning,
                stacklevel=3,
            )
            return _eager_model(loaded, threads, clock)
        if isinstance(error, DeviceError):
            raise
        raise DeviceParameterError(
            f"backend {chosen!r} could not export the network ({reason}); use {{backend='torch'}}",
            "backend",
        ) from error
    return replace(
        loaded,
        backend=chosen,
        runner=runner,
        export_path=export_path,
        exported_now=exported_now,
        load_timings_s=clock.total(),
    )


def _export_and_compile(
    loaded: DepthModel,
    chosen: str,
    export_path: Path | None,
    *,
    legacy: Sequence[Path],
    threads: int | None,
    clock: _Stopwatch,
) -> tuple[NetworkRunner, Path, bool]:
    """Export the network to ONNX unless ``export_path`` is given, then create its runner.

    The arguments are :func:`_exported_model`'s.

    Returns:
        The runner, the export's path, and whether it was exported now.

    Raises:
        Exception: Whatever the exporter or the runtime raises.
    """
    spec = loaded.spec

    def export(path: Path) -> None:
        output_name = OUTPUT_NAMES[spec.output]
        spec.network.export(loaded.network, path, backend=chosen, output_name=output_name)

    exported_now = False
    if export_path is None:
        mark = time.perf_counter()
        export_path, exported_now = backends.cached_export(
            loaded.weights_sha256, export, legacy=legacy, kind=backends.export_kind(spec, chosen)
        )
        if exported_now:
            clock.timings["export"] = time.perf_counter() - mark
    target = loaded.device
    mark = time.perf_counter()
    runner = backends.create_runner(
        chosen,
        export_path,
        threads=threads,
        cuda_device=int(target.split(":", 1)[1]) if target.startswith("cuda:") else None,
        compiled_cache=backends.compiled_cache_dir(),
        multiple=spec.network.size_multiple,
    )
    clock.timings["compile"] = time.perf_counter() - mark
    return runner, export_path, exported_now


def run_network(model: DepthModel, network_input: NDArray[np.float32]) -> NDArray[np.float32]:
    """Run the network on a preprocessed input, on the model's backend.

    The compiled export of an exported backend (with the network's further graph inputs for
    this input, :meth:`~depth2mesh.depth.networks.base.DepthNetwork.graph_inputs`), or the
    eager network under ``torch.inference_mode()``.

    Args:
        model: From :func:`load_model`.
        network_input: (1, 3, h, w) float32 from :func:`network_input`.

    Returns:
        (h, w) float32 at the network's resolution: disparity, or metres for metric models.
    """
    if model.runner is not None:
        extra = model.spec.network.graph_inputs(network_input)
        return np.asarray(model.runner(network_input, *extra)[0], dtype=np.float32)
    from depth2mesh.depth.networks.torch_common import run_eager

    return run_eager(model.network, network_input, model.device)


def network_input(image: NDArray[np.uint8], model: DepthModel) -> NDArray[np.float32]:
    """Preprocess a photo for the model's network, exactly as its official transform does.

    Args:
        image: (H, W, 3) uint8 RGB.
        model: From :func:`load_model`; its network's
            :meth:`~depth2mesh.depth.networks.base.DepthNetwork.preprocess` at its input size.

    Returns:
        (1, 3, h, w) float32.
    """
    return model.spec.network.preprocess(image, model.input_size)


def resize_output(
    output: NDArray[np.float32], model: DepthModel, height: int, width: int
) -> NDArray[np.float32]:
    """Resize the network's output as the model's official code does (its network's rule)."""
    return model.spec.network.resize_output(output, height, width)


def predict_outputs(
    image: NDArray[np.uint8], model: DepthModel, sizes: Sequence[tuple[int, int]]
) -> list[NDArray[np.float32]]:
    """Run the network once and resize its output to each of several sizes.

    Whatever the model outputs (disparity or metres); :func:`predict_disparities` and
    :func:`predict_depths` check the kind. Each result is the network's output resized
    straight to that size (:func:`resize_output`), never a resized copy of another result.

    Args:
        image: (H, W, 3) uint8 RGB, already upright (EXIF orientation applied).
        model: From :func:`load_model`.
        sizes: (rows, columns) of each result, each at least (1, 1).

    Returns:
        One (rows, columns) float32 map per size, in the order of ``sizes``.

    Raises:
        ValueError: A size below 1x1 (before the network runs).
    """
    for height, width in sizes:
        if height < 1 or width < 1:
            raise ValueError(f"size must be at least 1x1, got {width}x{height}")
    output = run_network(model, network_input(image, model))
    return [resize_output(output, model, height, width) for height, width in sizes]


def _require(model: DepthModel, output: str, function: str, other: str) -> None:
    if model.spec.output != output:
        what = {
            "metric": "depth in metres",
            "disparity": "relative disparity",
            "points": "a point map",
        }[model.spec.output]
        wanted = {"disparity": "disparity", "metric": "metres", "points": "points"}[output]
        raise OutputKindError(
            f"{model.spec.name} predicts {what}, not {wanted}: use {other} instead of {function}"
        )


def predict_disparity(
    image: NDArray[np.uint8], model: DepthModel, *, size: tuple[int, int] | None = None
) -> NDArray[np.float32]:
    """Predict disparity for a photo, at the photo's resolution or at ``size`` (relative models).

    Preprocess as the official transform does (:func:`network_input`), run the network on the
    model's backend (:func:`run_network`), resize as the official code does
    (:func:`resize_output`). The network sees a few hundred pixels, so a mesh grid needs no
    more than its own size: ``size`` gives the disparity at the grid directly, without a
    12-megapixel intermediate.

    Args:
        image: (H, W, 3) uint8 RGB, already upright (EXIF orientation applied).
        model: From :func:`load_model`, a relative model (output "disparity").
        size: (rows, columns) of the result; default the photo's (H, W).

    Returns:
        (H, W) or ``size`` float32 disparity: relative inverse depth, larger is nearer.

    Raises:
        OutputKindError: ``model`` is a metric model (use :func:`predict_depth`).
    """
    height, width = size if size is not None else image.shape[:2]
    return predict_disparities(image, model, [(height, width)])[0]


def predict_disparities(
    image: NDArray[np.uint8], model: DepthModel, sizes: Sequence[tuple[int, int]]
) -> list[NDArray[np.float32]]:
    """Predict disparity once and resize it to each of several sizes (relative models).

    The network runs once (:func:`run_network`); each result equals
    :func:`predict_disparity` at that size bit for bit (see :func:`predict_outputs`).

    Args:
        image: (H, W, 3) uint8 RGB, already upright (EXIF orientation applied).
        model: From :func:`load_model`, a relative model.
        sizes: (rows, columns) of each result, each at least (1, 1).

    Returns:
        One (rows, columns) float32 disparity per size, in the order of ``sizes``.

    Raises:
        ValueError: A size below 1x1 (before the network runs).
        OutputKindError: ``model`` is a metric model.
    """
    _require(model, "disparity", "predict_disparity", "predict_depth")
    return predict_outputs(image, model, sizes)


def predict_depth(
    image: NDArray[np.uint8], model: DepthModel, *, size: tuple[int, int] | None = None
) -> NDArray[np.float32]:
    """Predict depth in metres for a photo (metric models), at its resolution or at ``size``.

    As :func:`predict_disparity`, for metric models (output "metric", for example
    "dav2-metric-indoor", 0..20 m): the depth along the camera's axis, metres, for the photo as
    taken (the model learnt the scale from photos of ordinary focal lengths).

    Args:
        image: (H, W, 3) uint8 RGB, already upright (EXIF orientation applied).
        model: From :func:`load_model`, a metric model.
        size: (rows, columns) of the result; default the photo's (H, W).

    Returns:
        (H, W) or ``size`` float32 metres, in (0, max_depth).

    Raises:
        OutputKindError: ``model`` is a relative model (use :func:`predict_disparity`).
    """
    height, width = size if size is not None else image.shape[:2]
    return predict_depths(image, model, [(height, width)])[0]


def predict_depths(
    image: NDArray[np.uint8], model: DepthModel, sizes: Sequence[tuple[int, int]]
) -> list[NDArray[np.float32]]:
    """Predict metres once and resize them to each of several sizes (metric models).

    Raises:
        ValueError: A size below 1x1 (before the network runs).
        OutputKindError: ``model`` is a relative model.
    """
    _require(model, "metric", "predict_depth", "predict_disparity")
    return predict_outputs(image, model, sizes)


def predict_points(
    image: NDArray[np.uint8],
    model: DepthModel,
    *,
    tokens: int | None = None,
    fov_x: float | None = None,
    size: tuple[int, int] | None = None,
) -> Any:
    """Predict a point map, its mask, normals and camera for a photo (a "points" model).

    MoGe-2 (``moge2-small``): the network on the model's backend, then the official
    ``infer`` (:func:`depth2mesh.depth.networks.moge2.infer`): the focal length and z shift
    recovered from the point map (only the shift when ``fov_x`` is known), the metric scale,
    the mask (sky, background), unit normals.

    Args:
        image: (H, W, 3) uint8 RGB, upright (EXIF orientation applied).
        model: From :func:`load_model` with ``model="moge2-small"``.
        tokens: Base token count, 1200-3600 (more: slower, finer); None: the model's
            (``load_model``'s ``input_size``, default 1200).
        fov_x: Known horizontal field of view, degrees (EXIF or the user's), or None.
        size: (rows, cols) of the maps; None: the photo's (the official ``infer``'s). A
            smaller size (a mesh grid's) skips the full-resolution maps.

    Returns:
        A :class:`~depth2mesh.depth.networks.moge2.PointsPrediction`: ``points`` (H, W, 3)
        and ``depth`` (H, W) float32 metres (``inf`` where masked), ``mask`` (H, W) bool,
        ``normals`` (H, W, 3) float32 (0 where masked), ``intrinsics`` (3, 3) float32
        normalised (fx, fy in image widths and heights, principal point 0.5, 0.5), ``focal``,
        ``shift``, ``metric_scale``, ``fov_x``.

    Raises:
        OutputKindError: ``model`` does not predict points.
        ParameterError: ``tokens`` outside 1200-3600.
    """
    _require(model, "points", "predict_points", "predict_disparity or predict_depth")
    tokens_used = model.input_size if tokens is None else check_input_size(model.spec, tokens)

    def run(*inputs: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        if model.runner is not None:
            return model.runner.run_all(*inputs)
        from depth2mesh.depth.networks.torch_common import run_eager_all

        return run_eager_all(model.network, inputs, model.device)

    return model.spec.network.predict_points(image, run, tokens_used, fov_x=fov_x, size=size)
