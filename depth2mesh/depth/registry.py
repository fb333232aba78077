"""The depth models depth2mesh can run: the one place each is described.

Each :class:`ModelSpec` says what a ``--model`` name stands for: its network (a
:class:`~depth2mesh.depth.networks.base.DepthNetwork` of :mod:`depth2mesh.depth.networks`, which
knows its input size rule, preprocessing, output resize and export), where its official
checkpoint is published and its sha256 (None where it is not known: then
the file's keys and shapes are checked strictly and its sha256 is recorded in the sidecar),
its size and licence, what it outputs ("disparity": relative inverse depth, larger is nearer,
unknown scale and shift; "metric": depth in metres), the largest depth a metric model can
give, and its default network input size.

Nothing here imports torch or reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from depth2mesh.depth.networks import dav2_small, midas_small, moge2
from depth2mesh.depth.networks.base import DepthNetwork, OutputKind
from depth2mesh.errors import ParameterError


@dataclass(frozen=True)
class ModelSpec:
    """One depth model.

    Attributes:
        name: The ``--model`` name ("dav2-small").
        title: Its name for people and the sidecar ("Depth Anything V2 Small").
        network: The network that reads the checkpoint and runs it
            (:mod:`depth2mesh.depth.networks`).
        url: The official checkpoint's download URL; its last part is the file's name in the
            torch.hub cache.
        sha256: The official file's sha256, or None when it is not known.
        size_bytes: The official file's size in bytes, or None when not known.
        licence: The weights' licence.
        output: "disparity" (relative inverse depth) or "metric" (metres).
        max_depth: Metric models: the largest depth they give (their Sigmoid times this),
            metres; None for relative ones.
        input_size: Default network input size, pixels: MiDaS's long side (fixed, 256), Depth
            Anything's least side (518; any multiple of 14 may be chosen).
        weights_env: The environment variable that may name this model's checkpoint.
        summary: One line for people choosing a model (the web page, the Blender add-on).
    """

    name: str
    title: str
    network: DepthNetwork
    url: str
    sha256: str | None
    size_bytes: int | None
    licence: str
    output: OutputKind
    max_depth: float | None
    input_size: int
    weights_env: str
    summary: str = ""

    @property
    def checkpoint_name(self) -> str:
        """The release's own file name (``depth_anything_v2_vits.pth``)."""
        return PurePosixPath(self.url).name


_HF = "https://huggingface.co/depth-anything"

MODELS: Final[dict[str, ModelSpec]] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="midas-small",
            title="MiDaS v2.1 small",
            network=midas_small.NETWORK,
            url="https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21_small_256.pt",
            sha256="70d6b9c891758c67f974a6097fb0c608c7ee67fb81ac3e5588847d5596d56fca",
            size_bytes=None,
            licence="MIT",
            output="disparity",
            max_depth=None,
            input_size=256,
            weights_env="DEPTH2MESH_WEIGHTS",
            summary="fastest; relative depth, scaled by Near and Far",
        ),
        ModelSpec(
            name="dav2-small",
            title="Depth Anything V2 Small",
            network=dav2_small.NETWORK,
            url=f"{_HF}/Depth-Anything-V2-Small/resolve/main/depth_anything_v2_vits.pth",
            sha256="715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378",
            size_bytes=99_218_434,
            licence="Apache-2.0",
            output="disparity",
            max_depth=None,
            input_size=518,
            weights_env="DEPTH2MESH_WEIGHTS_DAV2_SMALL",
            summary="sharper, more accurate relative depth; several times slower",
        ),
        ModelSpec(
            name="dav2-metric-indoor",
            title="Depth Anything V2 Metric Indoor Small (Hypersim)",
            network=dav2_small.NETWORK,
            url=(
                f"{_HF}/Depth-Anything-V2-Metric-Hypersim-Small/resolve/main/"
                "depth_anything_v2_metric_hypersim_vits.pth"
            ),
            sha256=None,
            size_bytes=None,
            licence="Apache-2.0",
            output="metric",
            max_depth=20.0,
            input_size=518,
            weights_env="DEPTH2MESH_WEIGHTS_DAV2_METRIC_INDOOR",
            summary="depth in metres for rooms, up to 20 m; no Near/Far",
        ),
        ModelSpec(
            name="dav2-metric-outdoor",
            title="Depth Anything V2 Metric Outdoor Small (Virtual KITTI 2)",
            network=dav2_small.NETWORK,
            url=(
                f"{_HF}/Depth-Anything-V2-Metric-VKITTI-Small/resolve/main/"
                "depth_anything_v2_metric_vkitti_vits.pth"
            ),
            sha256="9203e538d35255c90dda4b7fedb47ff33fe725497bcca3b1e53b3a65ee63f0cb",
            size_bytes=None,
            licence="Apache-2.0",
            output="metric",
            max_depth=80.0,
            input_size=518,
            weights_env="DEPTH2MESH_WEIGHTS_DAV2_METRIC_OUTDOOR",
            summary="depth in metres for streets and landscapes, up to 80 m; no Near/Far",
        ),
        ModelSpec(
            name="moge2-small",
            title="MoGe-2 ViT-S (normal)",
            network=moge2.NETWORK,
            url="https://huggingface.co/Ruicheng/moge-2-vits-normal/resolve/main/model.pt",
            sha256="79a16621928c2bf0ed04659218c55c01075e950507f40bb3332fb4c873d3e1dc",
            size_bytes=140_550_416,
            licence="MIT",
            output="points",
            max_depth=None,
            input_size=moge2.DEFAULT_TOKENS,
            weights_env="DEPTH2MESH_WEIGHTS_MOGE2_SMALL",
            summary="camera (field of view), metric points, sky mask and normals from the "
            "photo alone; Python API only for now",
        ),
    )
}
"""Every model, by ``--model`` name; the first is the default."""

DEFAULT_MODEL: Final = "midas-small"
"""The model used when none is named."""

MODEL_NAMES: Final = tuple(MODELS)


def get_model(name: str) -> ModelSpec:
    """Return the model called ``name`` (any case, surrounding spaces ignored).

    Raises:
        ParameterError: Unknown name (names the ``model`` parameter and lists the models).
    """
    spec = MODELS.get(name.strip().lower())
    if spec is None:
        raise ParameterError(
            f"{{model}} must be one of {', '.join(MODEL_NAMES)}, got {name!r}", "model"
        )
    return spec


def camera_models() -> tuple[str, ...]:
    """The ``--model`` names of the models that estimate a camera (their output is "points")."""
    return tuple(name for name, spec in MODELS.items() if spec.output == "points")


def check_camera_model(name: str) -> str:
    """Return the registry name of a ``camera_model``, or refuse one that cannot be.

    Raises:
        ParameterError: Not a model of the registry, or one that predicts depth only (names
            ``camera_model``; the message lists the models that estimate a camera).
    """
    choices = ", ".join(camera_models())
    spec = MODELS.get(name.strip().lower())
    if spec is None:
        raise ParameterError(
            f"{{camera_model}} must be one of {choices} (a model that estimates the camera), "
            f"got {name!r}",
            "camera_model",
        )
    if spec.output != "points":
        raise ParameterError(
            f"{{camera_model}} must be a model that estimates the camera ({choices}); "
            f"{spec.name} predicts {spec.output} only",
            "camera_model",
        )
    return spec.name


def check_input_size(spec: ModelSpec, input_size: int | None) -> int:
    """Return the network input size to use for ``spec``: ``input_size`` or its default.

    Args:
        spec: The model.
        input_size: None (the default), or pixels, as the model's network allows
            (:meth:`~depth2mesh.depth.networks.base.DepthNetwork.check_input_size`).

    Raises:
        ParameterError: A size the model cannot take (names ``input_size``).
    """
    return spec.network.check_input_size(spec.name, spec.input_size, input_size)


def export_prefixes() -> tuple[str, ...]:
    """The cache file-name prefixes of every model's ONNX exports (each once)."""
    prefixes = (prefix for spec in MODELS.values() for prefix in spec.network.export_prefixes())
    return tuple(dict.fromkeys(prefixes))


def model_help() -> str:
    """One sentence per model for ``--help``: its name, summary, and "(default)" for the default."""
    return ". ".join(
        f"{name}{' (default)' if name == DEFAULT_MODEL else ''}: {spec.summary}"
        for name, spec in MODELS.items()
    )
