"""The Depth Anything V2 fixtures of ``shared/depth_anything_v2`` (see its README)."""

from __future__ import annotations

DAV2_FILES = {
    "relative": ("dav2_vits_random_init.fp16.pt", "depth_anything_v2_vits.pth"),
    "metric_hypersim": (
        "dav2_metric_hypersim_vits_random_init.fp16.pt",
        "depth_anything_v2_metric_hypersim_vits.pth",
    ),
}
"""Fixture folder -> (the stored float16 file, the official file name of its upcast)."""
