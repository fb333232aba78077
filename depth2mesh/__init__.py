"""depth2mesh: one photo in, a scaled 3D point cloud and textured meshes out.

The public API is imported lazily, so that ``import depth2mesh`` (and ``depth2mesh --help``)
does not pay for importing torch::

    import depth2mesh
    model = depth2mesh.load_model()                      # finds or downloads the weights
    photo = depth2mesh.read_photo("samples/coffee.png")  # upright RGB uint8 (H, W, 3)
    disparity = depth2mesh.predict_disparity(photo.rgb, model)  # float32 (H, W)
    depth2mesh.convert_photo("samples/coffee.png", "out", model=model)  # GLB, PLY, ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from depth2mesh._version import __version__

if TYPE_CHECKING:
    from depth2mesh.depth.model import (
        DepthModel,
        load_camera_model,
        load_model,
        predict_depth,
        predict_disparity,
        predict_points,
    )
    from depth2mesh.depth.networks.moge2 import PointsPrediction, recover_focal_shift
    from depth2mesh.errors import (
        Depth2MeshError,
        DeviceError,
        InputError,
        OutputError,
        OutputKindError,
        UnofficialWeightsWarning,
        WeightsError,
    )
    from depth2mesh.exchange.photo import Photo, read_photo
    from depth2mesh.exchange.pictures import colorize_disparity
    from depth2mesh.geometry.camera import Intrinsics
    from depth2mesh.pipeline.convert import (
        CameraOptions,
        ConvertOptions,
        ConvertResult,
        convert_photo,
        write_depth_images,
    )

_LAZY = {
    "convert_photo": "depth2mesh.pipeline.convert",
    "ConvertOptions": "depth2mesh.pipeline.convert",
    "ConvertResult": "depth2mesh.pipeline.convert",
    "CameraOptions": "depth2mesh.pipeline.convert",
    "Intrinsics": "depth2mesh.geometry.camera",
    "load_model": "depth2mesh.depth.model",
    "load_camera_model": "depth2mesh.depth.model",
    "predict_disparity": "depth2mesh.depth.model",
    "predict_depth": "depth2mesh.depth.model",
    "predict_points": "depth2mesh.depth.model",
    "recover_focal_shift": "depth2mesh.depth.networks.moge2",
    "PointsPrediction": "depth2mesh.depth.networks.moge2",
    "DepthModel": "depth2mesh.depth.model",
    "read_photo": "depth2mesh.exchange.photo",
    "Photo": "depth2mesh.exchange.photo",
    "write_depth_images": "depth2mesh.pipeline.convert",
    "colorize_disparity": "depth2mesh.exchange.pictures",
    "Depth2MeshError": "depth2mesh.errors",
    "WeightsError": "depth2mesh.errors",
    "InputError": "depth2mesh.errors",
    "OutputError": "depth2mesh.errors",
    "DeviceError": "depth2mesh.errors",
    "OutputKindError": "depth2mesh.errors",
    "UnofficialWeightsWarning": "depth2mesh.errors",
}

__all__ = [
    "CameraOptions",
    "ConvertOptions",
    "ConvertResult",
    "Depth2MeshError",
    "DepthModel",
    "DeviceError",
    "InputError",
    "Intrinsics",
    "OutputError",
    "OutputKindError",
    "Photo",
    "PointsPrediction",
    "UnofficialWeightsWarning",
    "WeightsError",
    "__version__",
    "colorize_disparity",
    "convert_photo",
    "load_camera_model",
    "load_model",
    "predict_depth",
    "predict_disparity",
    "predict_points",
    "read_photo",
    "recover_focal_shift",
    "write_depth_images",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'depth2mesh' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
