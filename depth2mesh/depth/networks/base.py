"""The seam between depth2mesh and a depth network: what every network module declares.

A depth network is one module in :mod:`depth2mesh.depth.networks` that defines one subclass of
:class:`DepthNetwork` (torch-free: its input size rule, preprocessing, extra graph inputs,
output resize, export tag and cache prefixes) and, beside it, a PyTorch module that it imports
only inside :meth:`DepthNetwork.build` and :meth:`DepthNetwork.export`. The registry
(:mod:`depth2mesh.depth.registry`) lists the models as entries of those networks; the model,
the runtimes, the cache, the web page and the command line ask the network, never its name.

Adding a network: write its module (this class, its preprocessing, its torch code) and add its
models to the registry. Nothing else changes.

Nothing here imports torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError

if TYPE_CHECKING:
    from depth2mesh.depth.registry import ModelSpec

OutputKind = Literal["disparity", "metric", "points"]
"""What a model outputs: "disparity" (relative inverse depth, larger is nearer, unknown scale
and shift), "metric" (depth in metres along the camera's axis) or "points" (a point map with
its mask, normals and camera, through the network's own :meth:`DepthNetwork.predict_points`)."""

OUTPUT_NAMES: Mapping[str, str] = {"disparity": "disparity", "metric": "depth", "points": "maps"}
"""The ONNX graph's (first) output name for each output kind; (1, h, w) float32 for
"disparity" and "metric"."""

INPUT_NAME = "input"
"""Name of every ONNX graph's image input: (1, 3, h, w) float32, normalised RGB."""


class DepthNetwork(ABC):
    """One depth network architecture, as depth2mesh runs it.

    Subclasses set the class attributes and implement the methods; one instance of each is
    shared by the registry's entries (see :data:`depth2mesh.depth.registry.MODELS`).

    Attributes:
        name: The architecture's identifier ("midas_small"), for messages and the cache.
        size_multiple: The network input's height and width are multiples of this, pixels.
        export_tag: Part of the ONNX export's cache file name; bump it whenever the export
            itself changes, so that older cached exports are not used.
        fixed_input_size: Whether the network runs at one input size only (its default).
    """

    name: ClassVar[str]
    size_multiple: ClassVar[int]
    export_tag: ClassVar[str]
    fixed_input_size: ClassVar[bool] = False
    least_input_size: ClassVar[int] = 0
    """The smallest ``input_size`` accepted when it is not fixed, pixels."""
    largest_input_size: ClassVar[int] = 0
    """The largest ``input_size`` accepted when it is not fixed, pixels."""

    # ----------------------------------------------------------------- input size

    def check_input_size(self, model: str, default: int, input_size: int | None) -> int:
        """Return the input size to run at: ``input_size``, or the model's ``default``.

        Args:
            model: The model's ``--model`` name, for messages.
            default: The model's default input size, pixels.
            input_size: None (the default), or pixels.

        Raises:
            ParameterError: A size the network cannot take (names ``input_size``).
        """
        if input_size is None:
            return default
        if self.fixed_input_size:
            if input_size != default:
                raise ParameterError(
                    f"{{input_size}} of {model} is fixed at {default} pixels, got "
                    f"{input_size}; choose a model whose input size can change",
                    "input_size",
                )
            return input_size
        least, largest, step = self.least_input_size, self.largest_input_size, self.size_multiple
        if input_size % step or not least <= input_size <= largest:
            raise ParameterError(
                f"{{input_size}} of {model} must be a multiple of {step} from {least} to "
                f"{largest} pixels (default {default}), got {input_size}",
                "input_size",
            )
        return input_size

    # ----------------------------------------------------------------- numbers in and out

    @abstractmethod
    def preprocess(self, image: NDArray[np.uint8], input_size: int) -> NDArray[np.float32]:
        """Turn a photo into the network's input, exactly as the official transform does.

        Args:
            image: (H, W, 3) uint8 RGB, upright.
            input_size: The checked input size (:meth:`check_input_size`), pixels.

        Returns:
            (1, 3, h, w) float32, C-contiguous, h and w multiples of :attr:`size_multiple`.
        """

    def graph_inputs(self, network_input: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        """The exported graph's inputs after the image, for this image (none by default).

        Args:
            network_input: (1, 3, h, w) float32 from :meth:`preprocess`.
        """
        del network_input
        return ()

    @abstractmethod
    def resize_output(
        self, output: NDArray[np.float32], height: int, width: int
    ) -> NDArray[np.float32]:
        """Resize the network's (h, w) output to (height, width) as the official code does."""

    # ----------------------------------------------------------------- export cache

    def export_prefix(self, backend: str) -> str:
        """The cache file-name prefix of this network's export for ``backend``.

        One export serves both exported backends unless a network overrides this.
        """
        del backend
        return self.name

    def export_prefixes(self) -> tuple[str, ...]:
        """Every prefix :meth:`export_prefix` gives (for listing and clearing the cache)."""
        return tuple(dict.fromkeys(self.export_prefix(b) for b in ("openvino", "onnxruntime")))

    # ----------------------------------------------------------------- torch (lazy)

    @abstractmethod
    def build(self, path: Path, spec: ModelSpec) -> Any:
        """Read a checkpoint (strictly checked) and build the eager network on the CPU.

        Imports torch and the network's PyTorch module.

        Args:
            path: The checkpoint file.
            spec: The model the checkpoint is for (title for messages, its output, ...).

        Returns:
            A ``torch.nn.Module`` in eval mode taking (1, 3, h, w) float32 and giving
            (1, h, w) float32.

        Raises:
            WeightsError: The file is not a checkpoint of this network.
        """

    def predict_points(
        self,
        image: NDArray[np.uint8],
        run: Callable[..., tuple[NDArray[np.float32], ...]],
        input_size: int,
        *,
        fov_x: float | None,
        size: tuple[int, int] | None = None,
    ) -> Any:
        """A "points" network's whole prediction for a photo (others do not give points).

        Args:
            image: (H, W, 3) uint8 RGB, upright.
            run: Runs the network (eager or exported) on its graph inputs and returns all of
                its outputs, batch axis kept.
            input_size: The checked input size (a points network's own unit).
            fov_x: A known horizontal field of view, degrees, or None.
            size: (rows, cols) of the result; None: the photo's.
        """
        raise NotImplementedError(f"the {self.name} network does not predict points")

    @abstractmethod
    def export(self, network: Any, path: Path, *, backend: str, output_name: str) -> None:
        """Write the eager network as one ONNX graph for ``backend`` (imports torch).

        Args:
            network: From :meth:`build` (any device).
            path: The ``.onnx`` file to write.
            backend: "openvino" or "onnxruntime": the runtime the export is for.
            output_name: The graph's output name (:data:`OUTPUT_NAMES` of the model's kind).
        """
