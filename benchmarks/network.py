"""Network latency of every depth backend against plain eager fp32 PyTorch, in one run.

Prints the CPU model and its vector extensions, the cores' measured float32 peak (a large
matmul on all cores), then markdown tables:

1. for each input size and backend, the median and minimum latency of the network alone (no
   preprocessing, no upsampling) over repeated runs after warm-up, the ratio to eager
   PyTorch measured in the same run, the achieved GFLOP/s (convolution FLOPs counted with
   ``torch.utils.flop_counter``, which counts a multiply-add as 2 FLOPs), and the largest
   difference to the eager output as a fraction of its range;
2. the whole ``predict_disparity`` call on a uint8 photo of that size (preprocessing,
   network, resize back), timed in the same rounds, and its ratio to the FLOP limit (the
   network's FLOPs at the measured peak: the time no implementation could beat);
3. the two exact preprocessing resizes (whole ``cv2.resize`` in float64, gathered taps) and
   :func:`~depth2mesh.depth.preprocess.preprocess` on photos around the size where
   :data:`~depth2mesh.depth.preprocess.WHOLE_RESIZE_MAX_PIXELS` switches between them.

The backends take turns, one run each per round in a shuffled order, so that other load on
the machine falls on all of them alike.

Usage: python benchmarks/network.py [--weights PATH] [--sizes 256 384 512 192x256] [--repeats 30]
       [--warmup 3] [--backends onnxruntime openvino] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from depth2mesh.depth.backends import AUTO_ORDER, available_backends, choose_backend, physical_cores
from depth2mesh.depth.model import DepthModel, load_model, predict_disparity
from depth2mesh.depth.networks.midas_small import network_input_size, preprocess
from depth2mesh.depth.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WHOLE_RESIZE_MAX_PIXELS,
    resize_gathered,
    resize_whole,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO.parent / "shared" / "midas" / "midas_small_random_init.pt"
VECTOR_FLAGS = {
    "avx2": "AVX2",
    "fma": "FMA3",
    "avx512f": "AVX-512F",
    "avx512bw": "AVX-512BW",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_tile": "AMX",
}


def cpu_description() -> dict[str, Any]:
    """Return the CPU model, its vector extensions and its core counts."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {
        "model": model,
        "vector_extensions": [name for flag, name in VECTOR_FLAGS.items() if flag in flags],
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


class PeakMeter:
    """Float32 matmul GFLOP/s on all cores, sampled between the network runs.

    One torch (MKL / oneDNN) and one numpy (OpenBLAS) n x n matmul per round, so that the
    peak sees the same load from other processes as the networks do; the best sample is
    the peak.
    """

    def __init__(self, size: int = 1536) -> None:
        rng = np.random.default_rng(0)
        self.size = size
        self.a = rng.standard_normal((size, size), dtype=np.float32)
        self.b = rng.standard_normal((size, size), dtype=np.float32)
        self.ta, self.tb = torch.from_numpy(self.a), torch.from_numpy(self.b)
        self.best: dict[str, float] = {"torch": 0.0, "numpy": 0.0}
        self.sample()

    def sample(self) -> None:
        """Time one matmul of each library; keep the best GFLOP/s."""
        flops = 2.0 * self.size**3
        for name, multiply in (
            ("torch", lambda: self.ta @ self.tb),
            ("numpy", lambda: self.a @ self.b),
        ):
            self.best[name] = max(self.best[name], flops / _seconds(multiply) / 1e9)

    def report(self) -> dict[str, Any]:
        """Return the peak, which library reached it, and both libraries' best."""
        library = max(self.best, key=lambda key: self.best[key])
        return {
            "gflops": self.best[library],
            "library": library,
            "all": dict(self.best),
            "matmul": f"{self.size}x{self.size} float32",
            "threads": {"torch": torch.get_num_threads(), "numpy": "default (all cores)"},
        }


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def parse_size(text: str) -> tuple[int, int]:
    """Parse "256" (square) or "192x256" (height x width) into (h, w)."""
    height, _, width = text.lower().partition("x")
    return int(height), int(width or height)


def network_flops(model: DepthModel, size: tuple[int, int]) -> int:
    """Count the network's FLOPs at an (h, w) input (2 per multiply-add)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.network(torch.zeros(1, 3, *size))
    return int(counter.get_total_flops())


def photo_of_size(size: tuple[int, int]) -> np.ndarray:
    """A real photo (samples/coffee.png) resized to (h, w): uint8 RGB, as a user passes it."""
    bgr = cv2.imread(str(REPO / "samples" / "coffee.png"), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def preprocess_rows(sizes: list[tuple[int, int]], repeats: int) -> list[dict[str, Any]]:
    """Median ms of resize_whole, resize_gathered and preprocess on photos of these sizes."""
    rows = []
    for size in sizes:
        photo = photo_of_size(size)
        target = network_input_size(*size)
        calls: dict[str, Callable[[], object]] = {
            "whole": partial(resize_whole, photo, *target),
            "gathered": partial(resize_gathered, photo, *target),
            "preprocess": partial(preprocess, photo),
        }
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                times[name].append(_seconds(call))
        row: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "megapixels": photo.size / 3e6}
        row.update({name: statistics.median(values) * 1e3 for name, values in times.items()})
        rows.append(row)
    return rows


def network_input(size: tuple[int, int]) -> np.ndarray:
    """A real photo (samples/coffee.png) resized to (h, w) and normalised as MiDaS does."""
    bgr = cv2.imread(str(REPO / "samples" / "coffee.png"), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
    resized = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


def runner_of(model: DepthModel, x: np.ndarray) -> Callable[[], np.ndarray]:
    """Return a call that runs the model's backend once on x, as predict_disparity does."""
    if model.runner is None:
        tensor = torch.from_numpy(x)

        def eager() -> np.ndarray:
            with torch.inference_mode():
                return model.network(tensor).numpy()

        return eager
    runner = model.runner
    return lambda: runner(x)


def benchmark(
    models: dict[str, DepthModel],
    sizes: list[tuple[int, int]],
    repeats: int,
    warmup: int,
    peak: PeakMeter,
) -> list[dict[str, Any]]:
    """Time every backend at every size, interleaved; return one row per (size, backend)."""
    rows = []
    shuffle = random.Random(0)
    for size in sizes:
        x = network_input(size)
        photo = photo_of_size(size)
        calls = {name: runner_of(model, x) for name, model in models.items()}
        outputs = {name: np.asarray(call()).reshape(size) for name, call in calls.items()}
        wholes = {name: partial(predict_disparity, photo, model) for name, model in models.items()}
        for name, call in calls.items():
            for _ in range(warmup):
                call()
                wholes[name]()
        times: dict[str, list[float]] = {name: [] for name in calls}
        whole_times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):
            order = list(calls)
            shuffle.shuffle(order)
            for name in order:
                times[name].append(_seconds(calls[name]))
                whole_times[name].append(_seconds(wholes[name]))
            peak.sample()
        flops = network_flops(models["torch"], size)
        photo_net = network_input_size(*photo.shape[:2])
        photo_flops = network_flops(models["torch"], photo_net)
        eager = statistics.median(times["torch"])
        reference = outputs["torch"]
        value_range = float(reference.max() - reference.min())
        for name in calls:
            median = statistics.median(times[name])
            rows.append(
                {
                    "size": f"{size[0]}x{size[1]}",
                    "backend": name,
                    "median_ms": median * 1e3,
                    "min_ms": min(times[name]) * 1e3,
                    "whole_median_ms": statistics.median(whole_times[name]) * 1e3,
                    "whole_min_ms": min(whole_times[name]) * 1e3,
                    "photo": f"{photo.shape[0]}x{photo.shape[1]}",
                    "photo_network_input": f"{photo_net[0]}x{photo_net[1]}",
                    "photo_gflop": photo_flops / 1e9,
                    "ratio_to_eager": median / eager,
                    "min_ratio_to_eager": min(times[name]) / min(times["torch"]),
                    "gflop": flops / 1e9,
                    "gflops": flops / median / 1e9,
                    "best_gflops": flops / min(times[name]) / 1e9,
                    "max_diff_over_range": float(
                        np.abs(outputs[name] - reference).max() / value_range
                    ),
                    "times_ms": [value * 1e3 for value in times[name]],
                }
            )
    return rows


def main() -> None:
    """Run the benchmark and print the markdown report (and write JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (.pt)")
    parser.add_argument(
        "--sizes", type=parse_size, nargs="+", default=[(256, 256), (384, 384), (512, 512)]
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=None, help="default: all installed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--preprocess-sizes",
        type=parse_size,
        nargs="*",
        default=[(256, 256), (480, 640), (1000, 1000), (1200, 1600), (1500, 2000), (3024, 4032)],
        help="photo sizes of the preprocessing table (none: no table)",
    )
    args = parser.parse_args()
    weights = args.weights
    if weights is None and DEFAULT_WEIGHTS.is_file():
        weights = DEFAULT_WEIGHTS
    wanted = args.backends or [name for name in available_backends() if name != "torch"]

    cpu = cpu_description()
    models: dict[str, DepthModel] = {}
    load_seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ["torch", *wanted]:
            start = time.perf_counter()
            models[name] = load_model(weights, device="cpu", backend=name)
            load_seconds[name] = time.perf_counter() - start
    auto = choose_backend("auto", "cpu")
    meter = PeakMeter()
    rows = benchmark(models, args.sizes, args.repeats, args.warmup, meter)
    preprocessing = preprocess_rows(args.preprocess_sizes, args.repeats)
    peak = meter.report()
    cpu["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for package in AUTO_ORDER:
        if find_spec(package) is not None:
            versions[package] = importlib.import_module(package).__version__
    print(
        f"CPU: {cpu['model']} ({cpu['physical_cores']} physical cores, {cpu['logical_cpus']} "
        f"logical CPUs); vector extensions: {', '.join(cpu['vector_extensions']) or 'none'}"
    )
    print("Versions: " + ", ".join(f"{key} {value}" for key, value in versions.items()))
    print(
        f"Threads: eager torch {torch.get_num_threads()}, exported backends "
        f"{physical_cores()}; load average before {cpu['load_average']}, after "
        f"{cpu['load_average_after']}"
    )
    print(
        f"Peak: {peak['gflops']:.0f} GFLOP/s float32 (best {peak['matmul']} matmul on all "
        f"cores, sampled between the rounds, {peak['library']}; torch "
        f"{peak['all']['torch']:.0f}, numpy {peak['all']['numpy']:.0f})"
    )
    print(
        "FLOPs: convolutions counted by torch.utils.flop_counter, 2 per multiply-add "
        "(resize/add/activations not counted)"
    )
    print(f"Default backend (auto): {auto}; {args.repeats} runs after {args.warmup} warm-up")
    print(
        f"Load time (cached export): {', '.join(f'{k} {v:.1f} s' for k, v in load_seconds.items())}"
    )
    print()
    _print_table(
        [
            "input",
            "backend",
            "GFLOP",
            "median ms",
            "min ms",
            "vs eager (median)",
            "vs eager (min)",
            "GFLOP/s (median)",
            "% of peak",
            "max diff / range",
        ],
        [
            [
                row["size"],
                _backend_label(row["backend"]),
                f"{row['gflop']:.2f}",
                f"{row['median_ms']:.1f}",
                f"{row['min_ms']:.1f}",
                f"{row['ratio_to_eager']:.2f}",
                f"{row['min_ratio_to_eager']:.2f}",
                f"{row['gflops']:.0f}",
                f"{100 * row['gflops'] / peak['gflops']:.0f}",
                f"{row['max_diff_over_range']:.1e}",
            ]
            for row in rows
        ],
    )
    print()
    print(
        "Whole predict_disparity(photo, model) on a uint8 photo of the input size (preprocess, "
        "network at the photo's network input, resize back), in the same rounds; FLOP limit = "
        "that input's GFLOP / peak"
    )
    print()
    for row in rows:
        row["flop_limit_ms"] = row["photo_gflop"] / peak["gflops"] * 1e3
    _print_table(
        [
            "photo",
            "network input",
            "backend",
            "predict_disparity ms (median)",
            "min ms",
            "FLOP limit ms",
            "predict_disparity / limit",
        ],
        [
            [
                row["photo"],
                row["photo_network_input"],
                _backend_label(row["backend"]),
                f"{row['whole_median_ms']:.1f}",
                f"{row['whole_min_ms']:.1f}",
                f"{row['flop_limit_ms']:.1f}",
                f"{row['whole_median_ms'] / row['flop_limit_ms']:.2f}",
            ]
            for row in rows
        ],
    )
    if preprocessing:
        print()
        print(
            "Preprocessing alone (median ms): whole = cv2.resize of the float64 photo, "
            "gathered = only the taps read; preprocess picks whole up to "
            f"{WHOLE_RESIZE_MAX_PIXELS / 1e6:.1f} MP, none at the network size"
        )
        print()
        _print_table(
            ["photo", "MP", "whole ms", "gathered ms", "preprocess ms"],
            [
                [
                    item["size"],
                    f"{item['megapixels']:.2f}",
                    f"{item['whole']:.2f}",
                    f"{item['gathered']:.2f}",
                    f"{item['preprocess']:.2f}",
                ]
                for item in preprocessing
            ],
        )
    if args.json is not None:
        report = {
            "preprocessing": preprocessing,
            "cpu": cpu,
            "versions": versions,
            "peak": peak,
            "default_backend": auto,
            "load_seconds": load_seconds,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)


def _backend_label(backend: str) -> str:
    return "eager torch fp32" if backend == "torch" else backend


def _print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print a markdown table."""
    print("| " + " | ".join(headers) + " |")
    print("|" + " --- |" * len(headers))
    for cells in rows:
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


if __name__ == "__main__":
    main()
