"""MoGe-2 small: FLOPs, the depth call against the cores' float32 limit, a 12 MP conversion.

Run from the repository root (the weights are random: the parity fixtures' ViT-S, written as
an official-format ``model.pt``; speed does not depend on the values)::

    PYTHONPATH=$PWD:$PWD/tests:$PWD/benchmarks python benchmarks/moge2.py [--rounds 3]
        [--tokens 1200 1800] [--skip-others]

Prints JSON: the CPU, the load average before and after, the float32 matmul peak sampled
between the rounds (PeakMeter), and per token count the FLOPs of one forward on a 640x480
photo (``torch.utils.flop_counter``, 2 per multiply-add: encoder, neck, heads), the median
seconds of ``predict_points`` (whole call: preprocessing, network on the default backend, the
official infer) and of the network alone, each as a multiple of the FLOP limit (FLOPs / peak);
then a 12 MP JPEG's whole ``depth2mesh convert`` process with ``--model moge2-small`` and, in
the same shuffled rounds, ``midas-small`` and ``dav2-small`` (their random parity weights;
``--skip-others`` leaves them out): median wall seconds, peak RSS, and the medians of the
sidecar's stage timings and of the model block's ``load_timings_s``. One untimed warm-up
round first (exports and compiled caches). The machine is shared: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dav2 import upcast_weights
from helpers.moge2 import FIXTURE_CONFIG, random_state, synthetic_photo
from network import DEFAULT_WEIGHTS, REPO, PeakMeter, cpu_description
from speed import convert_rounds, large_photo, write_jpeg
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


def median_timings(records: list[dict[str, float]]) -> dict[str, float]:
    """The median of each key over the runs that recorded it (seconds, 3 decimals)."""
    keys = sorted({key for record in records for key in record})
    return {key: round(statistics.median(r[key] for r in records if key in r), 3) for key in keys}


def convert_processes(
    photo: Path, variants: dict[str, list[str]], rounds: int, work: Path
) -> dict[str, Any]:
    """Whole ``depth2mesh convert`` processes, one per variant per round, in shuffled order.

    Round 0 warms up (exports, compiled caches) and is not counted. Per variant: the median
    wall seconds, every run's, the largest peak RSS, and the medians of the sidecar's
    ``timings_s`` and of its model block's ``load_timings_s``.
    """
    runs: dict[str, list[tuple[float, int, dict[str, Any]]]] = {name: [] for name in variants}
    for name, index, out, run in convert_rounds(photo, variants, rounds, work):
        sidecar = json.loads((out / f"{photo.stem}.json").read_text())
        if index:
            runs[name].append((run.wall_s, run.peak_rss_bytes, sidecar))
    report: dict[str, Any] = {}
    for name, items in runs.items():
        walls = [wall for wall, _, _ in items]
        report[name] = {
            "wall_s_median": round(statistics.median(walls), 2),
            "wall_s": [round(wall, 2) for wall in walls],
            "peak_rss_gb": round(max(rss for _, rss, _ in items) / 1e9, 2),
            "stages_s_median": median_timings([car["timings_s"] for _, _, car in items]),
            "load_s_median": median_timings(
                [car["model"]["load_timings_s"] for _, _, car in items]
            ),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1200, moge2.DEFAULT_TOKENS])
    parser.add_argument("--skip-others", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="moge2-bench-"))
    weights = write_checkpoint(folder / "model.pt")
    meter = PeakMeter()
    model = load_model(weights, model="moge2-small")
    eager = network_module.build_network(*network_module.read_checkpoint(weights))
    photo = synthetic_photo(480, 640, 1)
    rows = []
    for tokens in sorted(set(args.tokens)):
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
                "peak_gflops": round(peak, 1),
                "network_s": round(network_s, 3),
                "predict_points_s": round(call_s, 3),
                "flop_limit_s": round(limit, 3),
                "network_x_limit": round(network_s / limit, 2),
                "call_x_limit": round(call_s / limit, 2),
            }
        )
    del eager
    jpeg = folder / "photo12mp.jpg"
    write_jpeg(jpeg, large_photo(REPO / "samples" / "coffee.png"))
    variants = {"moge2-small": ["--model", "moge2-small", "--weights", str(weights)]}
    if not args.skip_others:
        variants["midas-small"] = ["--model", "midas-small", "--weights", str(DEFAULT_WEIGHTS)]
        dav2_weights = str(upcast_weights(folder))
        variants["dav2-small"] = ["--model", "dav2-small", "--weights", dav2_weights]
    for name in variants:
        variants[name].append("--overwrite")
    processes = convert_processes(jpeg, variants, args.rounds, folder)
    print(
        json.dumps(
            {
                "cpu": cpu_description(),
                "load_average": {"before": load_before, "after": os.getloadavg()},
                "peak": meter.report(),
                "backend": model.backend,
                "rows": rows,
                "convert_12mp": processes,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
