"""Print the depth stage's parity with the official MiDaS v2.1 small (shared/midas fixtures).

Usage: python benchmarks/parity.py [SHARED_DIR]   (default ../shared)
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from depth2mesh.depth.model import load_model, predict_disparity
from depth2mesh.depth.networks.midas_small import preprocess
from depth2mesh.exchange.photo import read_photo


def main() -> None:
    """Print a markdown table of max abs differences per fixture image."""
    shared = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared"
    )
    midas = shared / "midas"
    outputs = midas / "official_outputs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(midas / "midas_small_random_init.pt")
    index = json.loads((outputs / "index.json").read_text())
    print("| image | size | input max abs diff | net max diff / range | full max diff / range |")
    print("| --- | --- | --- | --- | --- |")
    for name, info in index.items():
        rgb_cv2 = cv2.cvtColor(cv2.imread(str(midas / "images" / info["image"])), cv2.COLOR_BGR2RGB)
        official_input = np.load(outputs / f"{name}.input.npy")
        official_net = np.load(outputs / f"{name}.net.npy")
        official_full = np.load(outputs / f"{name}.full.npy")
        input_diff = np.abs(preprocess(rgb_cv2) - official_input).max()
        with torch.inference_mode():
            net = model.network(torch.from_numpy(official_input)).numpy()
        net_diff = np.abs(net - official_net).max() / np.ptp(official_net)
        full = predict_disparity(read_photo(midas / "images" / info["image"]).rgb, model)
        full_diff = np.abs(full - official_full).max() / np.ptp(official_full)
        h, w = info["image_hw"]
        print(f"| {name} | {w}x{h} | {input_diff:.1e} | {net_diff:.1e} | {full_diff:.1e} |")


if __name__ == "__main__":
    main()
