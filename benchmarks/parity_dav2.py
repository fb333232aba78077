"""Print Depth Anything V2 Small's parity with the official code (shared/depth_anything_v2).

For both fixtures (relative, metric Hypersim), every image and every installed backend: the
largest difference of the network output (where the fixture has it) and of the final output
from the official one, as a fraction of the official output's range; and of the input.

Usage: python benchmarks/parity_dav2.py [SHARED_DIR]   (default ../shared)
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from depth2mesh.depth.backends import available_backends
from depth2mesh.depth.model import load_model, network_input, predict_outputs, run_network

FIXTURES = {
    "relative": ("dav2-small", "dav2_vits_random_init.fp16.pt", "depth_anything_v2_vits.pth"),
    "metric_hypersim": (
        "dav2-metric-indoor",
        "dav2_metric_hypersim_vits_random_init.fp16.pt",
        "depth_anything_v2_metric_hypersim_vits.pth",
    ),
}


def main() -> None:
    """Print one markdown table per fixture."""
    shared = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared"
    )
    root = shared / "depth_anything_v2"
    with tempfile.TemporaryDirectory() as folder:
        for kind, (name, stored, official) in FIXTURES.items():
            state = torch.load(root / stored, map_location="cpu", weights_only=True)
            weights = Path(folder) / official
            torch.save({key: value.float() for key, value in state.items()}, weights)
            index = json.loads((root / "official_outputs" / kind / "index.json").read_text())
            backends = available_backends()
            print(f"\n{kind} ({name}): network / final output, max |difference| / range\n")
            print("| image | input | " + " | ".join(backends) + " |")
            print("| --- | --- |" + " --- |" * len(backends))
            for image_name, info in index.items():
                bgr = cv2.imread(str(root / info["image"]), cv2.IMREAD_COLOR)
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                base = root / "official_outputs" / kind / image_name
                full = np.load(f"{base}.full.npy")
                span = float(np.ptp(full))
                cells = []
                input_cell = ""
                for backend in backends:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = load_model(
                            weights, model=name, backend=backend, input_size=info["input_size"]
                        )
                    x = network_input(rgb, model)
                    inputs = root / "official_outputs" / "relative" / f"{image_name}.input.npy"
                    if inputs.exists():
                        input_cell = f"{np.abs(x - np.load(inputs)).max():.1e}"
                    net_cell = "-"
                    if Path(f"{base}.net.npy").exists():
                        net = run_network(model, x)
                        net_cell = f"{np.abs(net - np.load(f'{base}.net.npy')[0]).max() / span:.1e}"
                    ours = predict_outputs(rgb, model, [full.shape])[0]
                    cells.append(f"{net_cell} / {np.abs(ours - full).max() / span:.1e}")
                print(f"| {image_name} | {input_cell or '-'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
