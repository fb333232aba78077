"""MoGe-2 small: FLOPs, the depth call against the cores' float32 limit, a 12 MP conversion.

Run from the repository root (the weights are random: the parity fixtures' ViT-S, written as
an official-format ``model.pt``; speed does not depend on the values)::

    PYTHONPATH=$PWD:$PWD/tests python benchmarks/moge2.py [--rounds 3]

Prints JSON: the CPU, the float32 matmul peak sampled between the rounds (PeakMeter), and per
token count (1200 and the default) the FLOPs of one forward on a 640x480 photo
(``torch.utils.flop_counter``, 2 per multiply-add: encoder, neck, heads), the median seconds
of ``predict_points`` (whole call: preprocessing, network on the default backend, the
official infer) and of the network alone, each as a multiple of the FLOP limit (FLOPs / peak);
then a 12 MP JPEG's whole ``depth2mesh convert --model moge2-small`` process: wall seconds
and peak RSS. The machine is shared: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from helpers.moge2 import FIXTURE_CONFIG, random_state, synthetic_photo
from network import REPO, PeakMeter, cpu_description
from speed import large_photo, run_process, write_jpeg
from torch.utils.flop_counter import FlopCounterMode

from depth2mesh.depth.model import load_model, predict_points
from depth2mesh.depth.networks import moge2
from depth2mesh.depth.networks import moge2_torch as network_module


def write_checkpoint(path: Path) -> Path:
    shapes = network_module.expected_state_shapes(FIXTURE_CONFIG)
    state = {k: torch.from_numpy(v) for k, v in random_state(shapes).items()}
    state["encoder.image_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    state["encoder.image_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.save({"model_config": FIXTURE_CONFIG, "model": state}, path)
    return path


def flops_by_part(network: network_module.MoGe2, inputs: list[np.ndarray]) -> dict[str, float]:
    tensors = [torch.from_numpy(x) for x in inputs]
    parts: dict[str, float] = {}
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            network.encoder(*tensors[:3])
        parts["encoder"] = counter.get_total_flops() / 1e9
        with FlopCounterMode(display=False) as counter:
            network(*tensors)
        total = counter.get_total_flops() / 1e9
    parts["neck_and_heads"] = total - parts["encoder"]
    parts["total"] = total
    return parts


def median_seconds(function: Any, rounds: int, meter: PeakMeter) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
        meter.sample()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="moge2-bench-"))
    weights = write_checkpoint(folder / "model.pt")
    meter = PeakMeter()
    model = load_model(weights, model="moge2-small")
    eager = network_module.build_network(*network_module.read_checkpoint(weights))
    photo = synthetic_photo(480, 640, 1)
    rows = []
    for tokens in (1200, moge2.DEFAULT_TOKENS):
        inputs = moge2.network_inputs(photo, tokens)
        flops = flops_by_part(eager, inputs)
        predict_points(photo, model, tokens=tokens)  # warm-up
        runner = model.runner
        assert runner is not None
        network_s = median_seconds(lambda i=inputs, r=runner: r.run_all(*i), args.rounds, meter)
        call_s = median_seconds(
            lambda t=tokens: predict_points(photo, model, tokens=t), args.rounds, meter
        )
        peak = meter.report()["gflops"]
        limit = flops["total"] / peak
        rows.append(
            {
                "tokens": tokens,
                "grid": moge2.token_grid(480, 640, tokens),
                "gflop": {k: round(v, 1) for k, v in flops.items()},
                "network_s": round(network_s, 3),
                "predict_points_s": round(call_s, 3),
                "flop_limit_s": round(limit, 3),
                "network_x_limit": round(network_s / limit, 2),
                "call_x_limit": round(call_s / limit, 2),
            }
        )
    jpeg = folder / "photo12mp.jpg"
    write_jpeg(jpeg, large_photo(REPO / "samples" / "coffee.png"))
    command = [
        sys.executable,
        "-m",
        "depth2mesh",
        "convert",
        str(jpeg),
        "-o",
        str(folder / "out"),
        "--model",
        "moge2-small",
        "--weights",
        str(weights),
        "--overwrite",
    ]
    run_process(command)  # warm-up: export and compile caches
    wall, rss = [], []
    for _ in range(args.rounds):
        run = run_process(command)
        wall.append(run.wall_s)
        rss.append(run.peak_rss_bytes)
    print(
        json.dumps(
            {
                "cpu": cpu_description(),
                "peak": meter.report(),
                "backend": model.backend,
                "rows": rows,
                "convert_12mp": {
                    "wall_s_median": round(statistics.median(wall), 2),
                    "wall_s": [round(w, 2) for w in wall],
                    "peak_rss_gb": round(max(rss) / 1e9, 2),
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
