"""What ``--edges on`` (the default) costs a 12 MP conversion, beside ``--edges off``.

Usage: python benchmarks/edges_speed.py [--weights PATH] [--photo PATH] [--repeats 5]
       [--batch-count 5]

Makes the 4032x3024 JPEG of ``benchmarks/speed.py`` (samples/coffee.png cropped, upscaled,
plus luminance noise; or --photo PATH), then times ``python -m depth2mesh convert PHOTO -o OUT
--weights W --device cpu`` as a whole process with default settings (edges on) and with
``--edges off``: one untimed warm-up of each, then ``--repeats`` rounds of both in a shuffled
order (a fresh output folder per run), wall time, the child's own peak RSS (speed.py's
launcher) and the geometry stage's seconds from the sidecar (where the edges work is done).
Then, unless ``--batch-count 0``, one ``depth2mesh convert FOLDER`` of that many shifted copies
per setting, in a shuffled order: seconds per photo and peak RSS.

Prints the CPU model and load, the medians against the README's targets (``convert`` <= 4 s,
batch <= 2 s per photo, peak RSS <= 1.5 GB) and the ratio on / off of the medians. On a
loaded machine quote the ratio: both settings share the load alike.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from network import DEFAULT_WEIGHTS, REPO, cpu_description
from speed import (
    MIB,
    Run,
    convert_command,
    large_photo,
    log,
    run_process,
    write_jpeg,
)

SETTINGS: dict[str, tuple[str, ...]] = {"on (default)": (), "off": ("--edges", "off")}


def time_converts(
    photo: Path, weights: Path, repeats: int, work: Path
) -> tuple[dict[str, list[Run]], dict[str, list[float]]]:
    """Warm-up, then ``repeats`` shuffled rounds of one convert per setting.

    Returns the runs and each run's geometry stage, seconds (the sidecar's ``timings_s``: the
    occlusion cuts and the settling happen there).
    """
    runs: dict[str, list[Run]] = {name: [] for name in SETTINGS}
    geometry: dict[str, list[float]] = {name: [] for name in SETTINGS}
    order = list(SETTINGS)
    shuffle = random.Random(0)
    for index in range(repeats + 1):
        shuffle.shuffle(order)
        for name in order:
            out = work / "out"
            run = run_process(convert_command(photo, out, weights, *SETTINGS[name]))
            sidecar = json.loads((out / photo.with_suffix(".json").name).read_text())
            shutil.rmtree(out)
            label = "warm-up" if index == 0 else f"round {index}/{repeats}"
            log(f"{label} edges {name}: {run.wall_s:.2f} s, {run.peak_rss_bytes / MIB:.0f} MiB")
            if index:
                runs[name].append(run)
                geometry[name].append(sidecar["timings_s"]["geometry"])
    return runs, geometry


def time_batches(photo: Path, weights: Path, count: int, work: Path) -> dict[str, Run]:
    """One ``convert FOLDER`` of ``count`` shifted copies of the photo per setting."""
    folder = work / "batch"
    folder.mkdir()
    base = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    for index in range(count):
        write_jpeg(folder / f"photo_{index:03d}.jpg", np.roll(base, index * 37, axis=1))
    order = list(SETTINGS)
    random.Random(1).shuffle(order)
    runs = {}
    for name in order:
        out = work / "batch_out"
        runs[name] = run_process(convert_command(folder, out, weights, *SETTINGS[name]))
        shutil.rmtree(out)
        log(f"batch of {count}, edges {name}: {runs[name].wall_s:.1f} s")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-count", type=int, default=5)
    args = parser.parse_args()
    cpu = cpu_description()
    print(f"CPU: {cpu['model']}; {cpu['logical_cpus']} logical CPUs; load {cpu['load_average']}")
    with tempfile.TemporaryDirectory(prefix="edges_speed_") as tmp:
        work = Path(tmp)
        photo = args.photo
        if photo is None:
            photo = work / "photo_4032x3024.jpg"
            write_jpeg(photo, large_photo(REPO / "samples" / "coffee.png"))
        runs, geometry = time_converts(photo, args.weights, args.repeats, work)
        batches = (
            time_batches(photo, args.weights, args.batch_count, work) if args.batch_count else {}
        )
    print(f"\nconvert 4032x3024 JPEG, whole process, median of {args.repeats} shuffled rounds\n")
    head = (
        "| --edges | median s | min s | geometry stage s | peak RSS | batch s/photo | batch RSS |"
    )
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|")
    medians = {}
    for name in SETTINGS:
        walls = [run.wall_s for run in runs[name]]
        medians[name] = statistics.median(walls)
        rss = statistics.median(run.peak_rss_bytes for run in runs[name]) / 1e9
        batch = batches.get(name)
        per_photo = f"{batch.wall_s / args.batch_count:.2f}" if batch else "-"
        batch_rss = f"{batch.peak_rss_bytes / 1e9:.2f} GB" if batch else "-"
        print(
            f"| {name} | {medians[name]:.2f} | {min(walls):.2f} "
            f"| {statistics.median(geometry[name]):.3f} | {rss:.2f} GB | {per_photo} "
            f"| {batch_rss} |"
        )
    ratio = medians["on (default)"] / medians["off"]
    print(f"\nratio on / off (medians): {ratio:.3f}; targets: convert <= 4 s, batch <= 2 s/photo, ")
    print(f"peak RSS <= 1.5 GB; load average now {cpu_description()['load_average']}")
    if batches:
        batch_ratio = batches["on (default)"].wall_s / batches["off"].wall_s
        print(f"batch ratio on / off: {batch_ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())
