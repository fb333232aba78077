"""The torch helpers every depth network shares: checkpoints, ONNX export, devices, eager runs.

Imported only when torch is needed (an eager run, a first export, a GPU check): each network's
description (:class:`depth2mesh.depth.networks.base.DepthNetwork`) imports its PyTorch module,
and that module imports this one, inside the methods that need them.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from depth2mesh.depth.networks.base import INPUT_NAME
from depth2mesh.errors import DeviceError, WeightsError

StateShapes = Mapping[str, tuple[tuple[int, ...], torch.dtype]]
"""``{key: (shape, dtype)}`` of a network's state dict, in the official file's order."""


def state_shapes(network: nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return ``{key: (shape, dtype)}`` of a network's state dict (build it on the meta device)."""
    return {key: (tuple(value.shape), value.dtype) for key, value in network.state_dict().items()}


def load_tensor_file(
    path: Path, *, release: str, kind: str = "", unwrap_training: bool = False
) -> dict[str, torch.Tensor]:
    """Load a ``{name: tensor}`` checkpoint without running code from it (keys not checked).

    Args:
        path: A ``.pt``/``.pth`` file (a pickle: loaded with ``weights_only=True``).
        release: What to pass instead, for messages ("midas_v21_small_256.pt").
        kind: The state dict's kind for messages, with a trailing space ("MiDaS "), or "".
        unwrap_training: Take ``["model"]`` of a ``{"model": ..., "optimizer": ...}`` file.

    Returns:
        The state dict, keys as str.

    Raises:
        WeightsError: A pickle that would run code, an unreadable or truncated file, or
            something other than a mapping of tensors (one line each).
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe pickle"
        raise WeightsError(
            f"{path} was refused: it is not a plain tensor checkpoint and loading it would run "
            f"code ({first[:160]}); use the official {release}"
        ) from error
    except Exception as error:  # torch.load on arbitrary bytes raises many kinds of errors
        if isinstance(error, PermissionError):
            raise WeightsError(f"{path} cannot be read: permission denied") from error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint (truncated or another kind of file: "
            f"{reason[:160]}); download it again or pass another --weights"
        ) from error
    training = isinstance(loaded, Mapping) and "model" in loaded and "optimizer" in loaded
    if unwrap_training and training:
        loaded = loaded["model"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, not a {kind}state dict of tensors; "
            f"pass the official {release}"
        )
    return {str(key): value for key, value in loaded.items()}


def check_state(
    path: Path, state: Mapping[str, torch.Tensor], expected: StateShapes, title: str, release: str
) -> None:
    """Raise one :class:`WeightsError` unless ``state`` has exactly the expected keys and shapes.

    Args:
        path: The checkpoint, for messages.
        state: Its tensors.
        expected: The network's ``{key: (shape, dtype)}`` (:func:`state_shapes`).
        title: The network's name for messages ("MiDaS v2.1 small").
        release: What to pass instead, for messages ("midas_v21_small_256.pt").

    Raises:
        WeightsError: Missing or unexpected keys, or tensors whose shape or dtype differ (one
            line naming the first difference and the count of the others).
    """
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise WeightsError(
            f"{path} is not a {title} checkpoint: {len(missing)} keys missing, "
            f"{len(unexpected)} unexpected (e.g. {example!r}); pass {release}"
        )
    wrong = [
        key
        for key, (shape, dtype) in expected.items()
        if tuple(state[key].shape) != shape or state[key].dtype != dtype
    ]
    if wrong:
        key = wrong[0]
        shape, dtype = expected[key]
        raise WeightsError(
            f"{path} does not fit {title}: {key} is {tuple(state[key].shape)} "
            f"{state[key].dtype}, expected {shape} {dtype} ({len(wrong)} tensors differ); "
            f"pass {release}"
        )


def onnx_export(
    network: nn.Module,
    inputs: dict[str, torch.Tensor],
    destination: str | Path,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    *,
    output_name: str,
) -> None:
    """Export ``network`` to ONNX (opset 17, TorchScript exporter) with a dynamic height and width.

    Args:
        network: An exportable CPU copy of the network.
        inputs: Sample inputs by name, in the order ``forward`` takes them; the first is the
            image ``INPUT_NAME`` (1, 3, h, w), whose axes 2 and 3 are dynamic.
        destination: The ``.onnx`` file to write (one file, weights included).
        dynamic_axes: The other inputs' dynamic axes, by input name.
        output_name: The graph's one output's name, (1, h, w) float32
            (:data:`depth2mesh.depth.networks.base.OUTPUT_NAMES`).
    """
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    axes = {
        INPUT_NAME: {2: "height", 3: "width"},
        **(dynamic_axes or {}),
        output_name: {1: "height", 2: "width"},
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices, not actionable here
        torch.onnx.export(
            network,
            tuple(inputs.values()),
            str(destination),
            input_names=list(inputs),
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            **options,
        )


def present_device(name: str) -> str:
    """Return the torch device ``name`` stands for, checking that it is present.

    Args:
        name: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps", lower case.

    Returns:
        The device's name: "cpu", "mps" or "cuda:N" (the current CUDA device for "cuda").

    Raises:
        DeviceError: The device is not present on this machine, or the name is invalid.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.current_device()}"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = name.split(":", 1)[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was requested but no CUDA GPU is usable here "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            "device 'mps' was requested but Apple's Metal backend is not available here; "
            "use --device cpu or --device auto"
        )
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"invalid device {name!r}: {error}") from error
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s); use cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
        return f"cuda:{index}"
    return str(device)


def set_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count (process-wide) for the eager network.

    Args:
        threads: Threads, >= 1.
    """
    torch.set_num_threads(threads)


def run_eager(
    network: nn.Module, network_input: NDArray[np.float32], device: str
) -> NDArray[np.float32]:
    """Run an eager depth network on one input under ``torch.inference_mode()``.

    Args:
        network: A depth network, already on ``device``.
        network_input: (1, 3, h, w) float32 normalised RGB, h and w multiples of the
            network's size multiple.
        device: The network's device name.

    Returns:
        (h, w) float32 on the CPU: disparity (relative models) or metres (metric ones).
    """
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(network_input, dtype=np.float32))
        out = network(tensor.to(device))
        return np.asarray(out[0].float().cpu().numpy(), dtype=np.float32)


def run_eager_all(
    network: nn.Module, inputs: Sequence[NDArray[np.float32]], device: str
) -> tuple[NDArray[np.float32], ...]:
    """Run an eager network on several inputs; return all its outputs as float32 numpy.

    Args:
        network: The network, on ``device``, whose ``forward`` takes ``inputs`` in order and
            returns a tensor or a tuple of tensors.
        inputs: Its inputs (the image first), float32.
        device: The network's device name.
    """
    with torch.inference_mode():
        tensors = [torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device) for x in inputs]
        out = network(*tensors)
        outputs = out if isinstance(out, tuple | list) else (out,)
        return tuple(np.asarray(o.float().cpu().numpy(), np.float32) for o in outputs)
