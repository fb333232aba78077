"""Photos per minute: a local batch against Ray with 1 and 2 workers, on this machine.

Usage: python benchmarks/ray_throughput.py [--weights PATH] [--count 20] [--size 1024x768]
                                            [--workers 1 2] [--repeat 3] [--nodes 10 100]

The same photos (made from samples/coffee.png, each slightly different) go through
``depth2mesh.pipeline.batch.convert_many`` (one process, the model loaded once) and through
``depth2mesh.pipeline.cluster.convert_on_ray`` on a local Ray bound to 127.0.0.1 (token
authentication, no dashboard), with the machine's CPUs split between the workers
(``threads_per_worker`` = CPUs
/ workers: the CPUs each reserves, torch's and OpenCV's threads; the ONNX Runtime and OpenVINO
backends keep their own thread count until ``load_model`` takes ``threads``). Prints the CPU,
then a markdown table:

- wall: the whole batch, model loading and (for Ray) connecting and starting workers included;
- steady: photos per minute between the first and the last photo finished (the rate a long
  batch approaches; for Ray, the times at which the workers finished them);
- per photo: steady seconds per photo, and the seconds one conversion itself took (inside the
  worker); "added per photo" is a worker's time per photo beyond the conversion (steady time
  x workers - conversion time): what the batch machinery costs (for Ray: sending the photo to
  a worker, its outcome back, the attempt log);
- start: seconds to the first result.

Configurations take turns (local, Ray 1, Ray 2, local, ...) ``--repeat`` times; the table shows
medians, so a slower minute of a shared machine does not favour one of them.

Then the N-node arithmetic: a node like this one (all its workers) times N, the hours for
500,000 photos, and the write bandwidth that the shared storage must sustain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """One configuration's timings."""

    name: str
    wall: float
    first: float  # seconds from the start to the first result
    finishes: list[float]  # seconds from the start to each result
    converting: float  # mean seconds of one conversion, as measured where it ran
    workers: int = 1

    def added_per_photo(self) -> float:
        """Seconds a worker spends per photo beyond the conversion itself."""
        return self.steady_per_photo() * self.workers - self.converting

    def steady_per_photo(self) -> float:
        times = sorted(self.finishes)
        if len(times) < 2:
            return self.wall
        return (times[-1] - times[0]) / (len(times) - 1)


def make_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Write ``count`` different JPEGs of ``width`` x ``height`` into ``folder``."""
    image = cv2.imread(str(REPO / "samples" / "coffee.png"))
    if image is None:
        raise SystemExit("samples/coffee.png is missing")
    rows, cols = image.shape[:2]
    crop = image[:, (cols - rows * 4 // 3) // 2 :][:, : rows * 4 // 3]
    large = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    paths = []
    for index in range(count):
        path = folder / f"photo_{index:03d}.jpg"
        cv2.imwrite(str(path), np.roll(large, index * 37, axis=1))
        paths.append(path)
    return paths


def run_local(photos: list[Path], out: Path, weights: Path | None) -> Run:
    """The local batch: load the model once, convert one photo after another."""
    from depth2mesh.depth.model import load_model
    from depth2mesh.pipeline.batch import convert_many, find_photos
    from depth2mesh.pipeline.convert import ConvertOptions

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(weights=weights, device="cpu")
    finishes: list[float] = []
    outcomes = convert_many(
        find_photos(photos),
        out,
        model=model,
        options=ConvertOptions(),
        on_done=lambda _: finishes.append(time.perf_counter() - started),
    )
    wall = time.perf_counter() - started
    converting = statistics.mean(o.seconds for o in outcomes)
    return Run("local batch (convert_many)", wall, finishes[0], finishes, converting)


def run_ray(photos: list[Path], out: Path, weights: Path | None, workers: int, cpus: int) -> Run:
    """The Ray path on the local Ray: ``workers`` actors of ``cpus // workers`` threads each."""
    import ray

    from depth2mesh.pipeline.batch import find_photos
    from depth2mesh.pipeline.cluster import convert_on_ray
    from depth2mesh.pipeline.convert import ConvertOptions

    started = time.perf_counter()
    ray.init(
        address="local",  # a new instance, never one that `ray start` left on this machine
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=cpus,
        object_store_memory=200 * 2**20,
        log_to_driver=False,
    )
    finishes: list[float] = []  # when each worker finished a photo (results reach the driver
    wall_start = time.time()  # in bursts, so the driver's receipt times would blur the rate)
    received: list[float] = []
    try:
        outcomes = convert_on_ray(
            find_photos(photos),
            out,
            ray_address=None,
            options=ConvertOptions(),
            weights=weights,
            workers=workers,
            threads_per_worker=max(1, cpus // workers),
            on_done=lambda _: received.append(time.perf_counter() - started),
            on_worker=lambda _, info: finishes.append(info.finished_at - wall_start),
        )
    finally:
        ray.shutdown()
    wall = time.perf_counter() - started
    converting = statistics.mean(o.seconds for o in outcomes)
    per = max(1, cpus // workers)
    name = f"Ray, {workers} worker{'s' * (workers > 1)} x {per} CPU{'s' * (per > 1)}"
    return Run(name, wall, min(received), finishes, converting, workers)


def main() -> None:
    """Run the local batch and each Ray configuration, print the table and the arithmetic."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    cpus = os.cpu_count() or 1
    # Ray on 127.0.0.1 only (on Linux it would take the machine's address), token auth, quiet
    os.environ.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    names: list[str] = []
    runs: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="d2m-bench-") as folder:
        work = Path(folder)
        (work / "photos").mkdir()
        photos = make_photos(work / "photos", args.count, width, height)
        for turn in range(args.repeat):
            done = [run_local(photos, work / f"local{turn}", args.weights)]
            for workers in args.workers:
                out = work / f"ray{workers}_{turn}"
                done.append(run_ray(photos, out, args.weights, workers, cpus))
            for run in done:
                names += [] if run.name in names else [run.name]
                runs.setdefault(run.name, []).append(run)
        results = list((work / "local0").iterdir())
        out_bytes = sum(path.stat().st_size for path in results) / args.count

    def median(name: str, value: Callable[[Run], float]) -> float:
        return statistics.median(value(run) for run in runs[name])

    print(f"machine: {cpu_model()}, {cpus} CPUs")
    print(
        f"{args.count} photos of {width}x{height}, default settings (grid mesh), CPU; "
        f"medians of {args.repeat} turns\n"
    )
    print(
        "| | wall | photos/min (wall) | steady photos/min | steady s/photo "
        "| conversion s/photo | added per photo (per worker) | first result |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        wall = median(name, lambda run: run.wall)
        steady = median(name, Run.steady_per_photo)
        converting = median(name, lambda run: run.converting)
        added = median(name, Run.added_per_photo)
        print(
            f"| {name} | {wall:.1f} s | {60 * args.count / wall:.1f} | {60 / steady:.1f} | "
            f"{steady:.2f} s | {converting:.2f} s | {1000 * added:+.0f} ms | "
            f"{median(name, lambda run: run.first):.1f} s |"
        )
    local, ray_names = names[0], names[1:]
    overhead = median(ray_names[0], Run.added_per_photo) - median(local, Run.added_per_photo)
    fixed = median(ray_names[0], lambda run: run.first) - median(local, lambda run: run.first)
    print(
        f"\nRay's overhead per photo (1 worker, against the local batch): {1000 * overhead:+.0f} "
        f"ms; fixed start-up cost: {fixed:+.1f} s (connecting, the check phase, starting the "
        "workers and loading the model in each)"
    )
    best = min(ray_names, key=lambda name: median(name, Run.steady_per_photo))
    node_rate = 60 / median(best, Run.steady_per_photo)
    print(f"\nN nodes like this one ({best} each): {node_rate:.1f} photos/min per node")
    print("| nodes | photos/min | 500,000 photos | storage writes |")
    print("| --- | --- | --- | --- |")
    for nodes in (1, *args.nodes):
        rate = nodes * node_rate
        hours = 500_000 / rate / 60
        bandwidth = rate / 60 * out_bytes / 1e6
        print(f"| {nodes} | {rate:,.0f} | {hours:,.1f} h | {bandwidth:,.1f} MB/s |")
    print(f"\n({out_bytes / 1e6:.1f} MB of results per photo at this size)")


if __name__ == "__main__":
    main()
