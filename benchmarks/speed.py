"""The speed targets of depth2mesh, proved or disproved in one run on this machine.

Usage: python benchmarks/speed.py [--weights PATH] [--photo PATH | --from PATH] [--repeats 5]
       [--batch-count 20] [--startup-runs 10] [--network-repeats N] [--skip-network]
       [--skip-batch] [--json PATH] [--quick]

Measures, in this order, and prints the machine (CPU model, cores, vector extensions), a
markdown table of the targets with a "met?" column, then the details:

(a) the network alone at 256, 384 and 512 pixels on every installed backend against eager
    fp32 PyTorch: ``benchmarks/network.py`` in a child process, its table and JSON included.
(b) ``python -m depth2mesh convert PHOTO -o OUT --weights W --device cpu`` on a 4032x3024
    JPEG as a whole process, with default settings and with ``--mesh both``, beside
    ``benchmarks/baseline_pipeline.py`` (the straightforward pipeline the issue compares
    against). One untimed warm-up run of each first (the first depth2mesh run also caches the
    network's export), then ``--repeats`` rounds of all three in a shuffled order, so that
    background load falls on all alike; a fresh output folder per run. Wall time and the
    child's own peak RSS (``os.wait4`` on its pid, from a small launcher process: see
    ``LAUNCHER``; RUSAGE_CHILDREN would be the maximum over all the children).
(c) a batch of ``--batch-count`` such photos (each shifted sideways, so no two files are equal)
    in one ``depth2mesh convert FOLDER`` process: wall time, seconds per photo, peak RSS.
(d) start-up of ``python -m depth2mesh --help`` and ``--version`` (and of the console script
    beside ``sys.executable``, when there is one): median over ``--startup-runs`` runs.

Without --photo, the 4032x3024 photo is made from samples/coffee.png (or --from PATH): cropped
to 4:3, upscaled (INTER_CUBIC), plus Gaussian luminance noise (sigma 4 levels, fixed seed) so
that it has the fine detail and the JPEG size (about 3 MB at quality 92) of a real 12 MP phone
photo. The default weights are the parity fixture's (../shared/midas/midas_small_random_init.pt):
same network, same shapes, so the same timings as the official release. Progress goes to
stderr; the whole default run takes several minutes (--quick: about a minute or two).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from network import DEFAULT_WEIGHTS, REPO, cpu_description

PHOTO_WIDTH, PHOTO_HEIGHT = 4032, 3024
JPEG_QUALITY = 92
NOISE_SIGMA = 4.0
GB = 1e9
MIB = 1024**2
RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
VARIANTS = ("baseline", "convert", "convert_both")
LABELS = {
    "baseline": "baseline pipeline (benchmarks/baseline_pipeline.py)",
    "convert": "depth2mesh convert (default settings)",
    "convert_both": "depth2mesh convert --mesh both",
}
TARGETS = {
    "network_ratio": 0.55,
    "convert_s": 4.0,
    "convert_vs_baseline": 1 / 3,
    "convert_rss_bytes": 1.5e9,
    "convert_both_s": 12.0,
    "batch_s_per_photo": 2.0,
    "help_s": 0.5,
}


@dataclass
class Run:
    """One whole child process: wall time and its own peak resident set size."""

    wall_s: float
    peak_rss_bytes: int


@dataclass
class Target:
    """One row of the targets table."""

    part: str
    measure: str
    value: str
    detail: str
    target: str
    met: bool | None


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[speed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def large_photo(source: Path, *, noise_sigma: float = NOISE_SIGMA, seed: int = 0) -> np.ndarray:
    """Return a 4032x3024 BGR image: ``source`` cropped to 4:3, upscaled, plus luminance noise."""
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {source}")
    height, width = image.shape[:2]
    if width * 3 >= height * 4:  # too wide: keep the middle 4:3 columns
        crop_width = height * 4 // 3
        image = image[:, (width - crop_width) // 2 :][:, :crop_width]
    else:  # too tall: keep the middle 4:3 rows
        crop_height = width * 3 // 4
        image = image[(height - crop_height) // 2 :][:crop_height]
    large = cv2.resize(image, (PHOTO_WIDTH, PHOTO_HEIGHT), interpolation=cv2.INTER_CUBIC)
    if noise_sigma <= 0:
        return large
    noise = np.random.default_rng(seed).normal(0.0, noise_sigma, large.shape[:2])
    noisy = large.astype(np.float32) + noise.astype(np.float32)[..., None]
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Write a BGR image as a JPEG of quality ``JPEG_QUALITY``."""
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise SystemExit(f"cannot write {path}")


def photo_size(photo: Path) -> tuple[int, int]:
    """(width, height) of a photo as OpenCV decodes it."""
    image = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"cannot read {photo}")
    return image.shape[1], image.shape[0]


# Started by run_process, this small process starts the measured command and waits for it
# with os.wait4. Why not Popen + os.wait4 from here: on Linux a child's ru_maxrss also counts
# the peak RSS of the memory it was started from (exec keeps the old address space's high-water
# mark, and Popen starts children with vfork, in this process's memory), so every child of a
# large parent would report at least the parent's own peak. The launcher is small (a few MB).
LAUNCHER = """
import json, os, sys, time
command, errors = json.loads(sys.argv[1]), os.open(sys.argv[2], os.O_WRONLY)
quiet = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, quiet, 1), (os.POSIX_SPAWN_DUP2, errors, 2)]
start = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(json.dumps([wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss]))
"""


def run_process(command: Sequence[str]) -> Run:
    """Run ``command`` from the repository root; return its wall time and its own peak RSS.

    ``command[0]`` must be a path (no PATH search). stdout is discarded; on failure the end of
    stderr is raised with the command line. The wall time is measured around the command
    itself, by the launcher (see ``LAUNCHER``), so it leaves out the launcher's own start.
    """
    with tempfile.NamedTemporaryFile(prefix="stderr_") as errors:
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps(list(command))]
        result = subprocess.run(
            [*launcher, errors.name], capture_output=True, text=True, cwd=REPO, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"launcher failed: {result.stderr[-4000:]}")
        wall, status, max_rss = json.loads(result.stdout)
        if status != 0:
            tail = Path(errors.name).read_text(errors="replace")[-4000:]
            raise RuntimeError(f"exit status {status}: {' '.join(command)}\n--- stderr ---\n{tail}")
    return Run(wall, max_rss * RSS_UNIT)


def convert_rounds(
    photo: Path, variants: dict[str, list[str]], rounds: int, work: Path, *, seed: int = 0
) -> Iterator[tuple[str, int, Path, Run]]:
    """Convert ``photo`` once per variant per round, the variants in a shuffled order.

    Round 0 is the warm-up (exports, compiled caches): callers leave it out. Each run writes
    into its own folder ``work/out-<variant>-<round>``.

    Args:
        photo: The photo.
        variants: Name -> the command line's options after ``--device cpu``.
        rounds: Counted rounds (one more is run first).
        work: Where the output folders go.
        seed: Seed of the shuffles.

    Yields:
        (variant, round, output folder, :class:`Run`).
    """
    order = random.Random(seed)
    for index in range(rounds + 1):
        names = list(variants)
        order.shuffle(names)
        for name in names:
            out = work / f"out-{name}-{index}"
            command = [sys.executable, "-m", "depth2mesh", "convert", str(photo), "-o", str(out)]
            yield name, index, out, run_process([*command, "--device", "cpu", *variants[name]])


def convert_command(photos: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    """The ``depth2mesh convert`` command line, as a user would type it."""
    command = [sys.executable, "-m", "depth2mesh", "convert", str(photos), "-o", str(out)]
    return [*command, "--weights", str(weights), "--device", "cpu", *extra]


def variant_command(name: str, photo: Path, out: Path, weights: Path) -> list[str]:
    """The command line of one of ``VARIANTS``."""
    if name == "baseline":
        script = REPO / "benchmarks" / "baseline_pipeline.py"
        return [sys.executable, str(script), str(photo), str(out), "--weights", str(weights)]
    if name == "convert_both":
        return convert_command(photo, out, weights, "--mesh", "both")
    return convert_command(photo, out, weights)


def folder_files(folder: Path) -> dict[str, int]:
    """Names and sizes (bytes) of the files in ``folder``, recursively."""
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def summarise(runs: list[Run]) -> dict[str, Any]:
    """Median and minimum wall time and peak RSS of repeated runs."""
    walls = [run.wall_s for run in runs]
    rss = [run.peak_rss_bytes for run in runs]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "walls_s": walls,
        "median_peak_rss_bytes": statistics.median(rss),
        "max_peak_rss_bytes": max(rss),
        "peak_rss_bytes": rss,
    }


def measure_network(
    weights: Path, repeats: int | None, warmup: int | None, work: Path
) -> dict[str, Any]:
    """Run benchmarks/network.py at 256, 384 and 512; return its JSON plus its printed table."""
    report_path = work / "network.json"
    command = [sys.executable, str(REPO / "benchmarks" / "network.py"), "--weights", str(weights)]
    command += ["--sizes", "256", "384", "512", "--json", str(report_path)]
    if repeats is not None:
        command += ["--repeats", str(repeats)]
    if warmup is not None:
        command += ["--warmup", str(warmup)]
    log(f"(a) network: {' '.join(command[1:])}")
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"network.py failed ({result.returncode}):\n{result.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    report["command"] = command
    report["printed"] = result.stdout
    return report


def measure_pipelines(photo: Path, weights: Path, repeats: int, work: Path) -> dict[str, Any]:
    """Warm up, then time baseline / convert / convert --mesh both in shuffled rounds."""
    runs: dict[str, list[Run]] = {name: [] for name in VARIANTS}
    files: dict[str, dict[str, int]] = {}
    commands: dict[str, list[str]] = {}

    def one(name: str, label: str) -> Run:
        out = work / f"out_{name}_{label}"
        command = variant_command(name, photo, out, weights)
        commands[name] = command
        run = run_process(command)
        files[name] = folder_files(out)
        shutil.rmtree(out)
        log(f"(b) {label} {name}: {run.wall_s:.2f} s, {run.peak_rss_bytes / MIB:.0f} MiB")
        return run

    warmup = {name: one(name, "warmup") for name in ("convert", "convert_both", "baseline")}
    shuffle = random.Random(0)
    orders = []
    for index in range(repeats):
        order = list(VARIANTS)
        shuffle.shuffle(order)
        orders.append(order)
        for name in order:
            runs[name].append(one(name, f"round {index + 1}/{repeats}"))
    result: dict[str, Any] = {
        name: {
            **summarise(runs[name]),
            "command": commands[name],
            "files": files[name],
            "warmup_s": warmup[name].wall_s,
            "warmup_peak_rss_bytes": warmup[name].peak_rss_bytes,
        }
        for name in VARIANTS
    }
    result["orders"] = orders
    return result


def measure_batch(photo: Path, weights: Path, count: int, work: Path) -> dict[str, Any]:
    """Convert ``count`` shifted copies of the photo in one ``depth2mesh convert FOLDER``."""
    folder = work / "batch_photos"
    folder.mkdir()
    base = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    log(f"(c) writing {count} photos")
    for index in range(count):
        write_jpeg(folder / f"photo_{index:03d}.jpg", np.roll(base, index * 37, axis=1))
    out = work / "batch_out"
    command = convert_command(folder, out, weights)
    log(f"(c) batch of {count}: {' '.join(command[1:])}")
    run = run_process(command)
    outputs = folder_files(out)
    shutil.rmtree(out)
    shutil.rmtree(folder)
    log(f"(c) batch: {run.wall_s:.1f} s, {run.peak_rss_bytes / MIB:.0f} MiB")
    return {
        "count": count,
        "wall_s": run.wall_s,
        "s_per_photo": run.wall_s / count,
        "peak_rss_bytes": run.peak_rss_bytes,
        "command": command,
        "output_files": len(outputs),
        "output_bytes": sum(outputs.values()),
    }


def measure_startup(runs: int) -> list[dict[str, Any]]:
    """Median wall time of --help and --version, via ``python -m`` and the console script."""
    commands = {
        "python -m depth2mesh --help": [sys.executable, "-m", "depth2mesh", "--help"],
        "python -m depth2mesh --version": [sys.executable, "-m", "depth2mesh", "--version"],
    }
    script = Path(sys.executable).parent / "depth2mesh"
    if script.is_file():
        commands["depth2mesh --help (console script)"] = [str(script), "--help"]
        commands["depth2mesh --version (console script)"] = [str(script), "--version"]
    times: dict[str, list[Run]] = {label: [] for label in commands}
    for command in commands.values():  # warm-up: the page cache
        run_process(command)
    for _ in range(runs):
        for label, command in commands.items():
            times[label].append(run_process(command))
    rows = []
    for label, command in commands.items():
        summary = summarise(times[label])
        rows.append({"label": label, "command": command, **summary})
        log(f"(d) {label}: median {summary['median_s']:.3f} s")
    return rows


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else "yes" if met else "**no**"


def _gb(value: float) -> str:
    return f"{value / GB:.2f} GB ({value / MIB:.0f} MiB)"


def targets(report: dict[str, Any]) -> list[Target]:
    """Compare the measurements with the targets; one row per target (and context rows)."""
    rows: list[Target] = []
    network = report.get("network")
    if network is not None:
        default = network["default_backend"]
        by_key = {(row["size"], row["backend"]): row for row in network["rows"]}
        row = by_key.get(("256x256", default))
        eager = by_key[("256x256", "torch")]
        ratio = row["ratio_to_eager"] if row else math.nan
        min_ratio = row["min_ratio_to_eager"] if row else math.nan
        # Met only if the medians and the minima both agree: on a loaded machine eager torch's
        # OpenMP threads sometimes stall for seconds, which flatters the ratio of the medians.
        rows.append(
            Target(
                "(a)",
                f"network alone 256x256, default backend ({default}) / eager fp32 torch",
                f"{ratio:.2f}x (minima {min_ratio:.2f}x)",
                f"{row['median_ms'] if row else math.nan:.1f} ms vs {eager['median_ms']:.1f} ms "
                f"(medians of {network['repeats']}); minima "
                f"{row['min_ms'] if row else math.nan:.1f} ms vs {eager['min_ms']:.1f} ms",
                f"<= {TARGETS['network_ratio']}x (medians and minima)",
                max(ratio, min_ratio) <= TARGETS["network_ratio"],
            )
        )
    pipelines = report.get("pipelines")
    if pipelines is not None:
        base, conv, both = (pipelines[name] for name in VARIANTS)
        n = len(conv["walls_s"])
        ratio = conv["median_s"] / base["median_s"]
        rows += [
            Target(
                "(b)",
                "baseline pipeline, wall (context)",
                f"{base['median_s']:.2f} s",
                f"min {base['min_s']:.2f} s, median of {n}; peak RSS "
                f"{_gb(base['median_peak_rss_bytes'])}",
                "-",
                None,
            ),
            Target(
                "(b)",
                "convert (default), wall, whole process",
                f"{conv['median_s']:.2f} s",
                f"min {conv['min_s']:.2f} s, median of {n}",
                f"<= {TARGETS['convert_s']:g} s",
                conv["median_s"] <= TARGETS["convert_s"],
            ),
            Target(
                "(b)",
                "convert (default) / baseline, medians",
                f"{ratio:.2f}",
                f"{conv['median_s']:.2f} s / {base['median_s']:.2f} s",
                "<= 1/3 (0.33)",
                ratio <= TARGETS["convert_vs_baseline"],
            ),
            Target(
                "(b)",
                "convert (default), peak RSS",
                _gb(conv["median_peak_rss_bytes"]),
                f"max {_gb(conv['max_peak_rss_bytes'])}",
                "<= 1.5 GB",
                conv["median_peak_rss_bytes"] <= TARGETS["convert_rss_bytes"],
            ),
            Target(
                "(b)",
                "convert --mesh both, wall, whole process",
                f"{both['median_s']:.2f} s",
                f"min {both['min_s']:.2f} s, median of {n}; peak RSS "
                f"{_gb(both['median_peak_rss_bytes'])}",
                f"<= {TARGETS['convert_both_s']:g} s",
                both["median_s"] <= TARGETS["convert_both_s"],
            ),
        ]
    batch = report.get("batch")
    if batch is not None:
        rows.append(
            Target(
                "(c)",
                f"batch of {batch['count']} in one process, per photo",
                f"{batch['s_per_photo']:.2f} s",
                f"whole {batch['wall_s']:.1f} s; peak RSS {_gb(batch['peak_rss_bytes'])}",
                f"<= {TARGETS['batch_s_per_photo']:g} s",
                batch["s_per_photo"] <= TARGETS["batch_s_per_photo"],
            )
        )
    for row in report.get("startup", []):
        is_help = "--help" in row["label"]
        rows.append(
            Target(
                "(d)",
                row["label"],
                f"{row['median_s']:.3f} s",
                f"min {row['min_s']:.3f} s, median of {len(row['walls_s'])}",
                f"<= {TARGETS['help_s']:g} s" if is_help else "-",
                row["median_s"] <= TARGETS["help_s"] if is_help else None,
            )
        )
    return rows


def print_report(report: dict[str, Any], rows: list[Target]) -> None:
    """Print the machine, the targets table and the detail tables as markdown."""
    cpu = report["machine"]
    photo = report["photo"]
    print("# depth2mesh speed targets\n")
    print(
        f"Machine: {cpu['model']}; {cpu['physical_cores']} physical cores, "
        f"{cpu['logical_cpus']} logical CPUs; vector extensions: "
        f"{', '.join(cpu['vector_extensions']) or 'none'}; {report['memory']}"
    )
    print(
        f"Python {platform.python_version()}, depth2mesh {report['depth2mesh_version']}; "
        f"load average before {cpu['load_average']}, after {report['load_average_after']}; "
        f"total {report['total_s'] / 60:.1f} min"
    )
    print(
        f"Photo: {photo['width']}x{photo['height']} JPEG, {photo['bytes'] / 1e6:.1f} MB "
        f"({photo['origin']}); weights {report['settings']['weights']}\n"
    )
    print("| part | measure | value | detail | target | met? |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row.part} | {row.measure} | {row.value} | {row.detail} | {row.target} "
            f"| {_yes(row.met)} |"
        )
    network = report.get("network")
    if network is not None:
        print("\n## (a) Network alone (benchmarks/network.py)\n")
        print(network["printed"].rstrip())
    pipelines = report.get("pipelines")
    if pipelines is not None:
        base = pipelines["baseline"]["median_s"]
        repeats = len(pipelines["baseline"]["walls_s"])
        size = f"{report['photo']['width']}x{report['photo']['height']}"
        print(f"\n## (b) One {size} photo, whole process, {repeats} shuffled rounds\n")
        print(
            "| run | median wall | min wall | all walls (s) | median peak RSS | vs baseline "
            "| output files |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in VARIANTS:
            entry = pipelines[name]
            walls = ", ".join(f"{wall:.2f}" for wall in entry["walls_s"])
            outputs = sum(entry["files"].values()) / 1e6
            print(
                f"| {LABELS[name]} | {entry['median_s']:.2f} s | {entry['min_s']:.2f} s | "
                f"{walls} | {entry['median_peak_rss_bytes'] / MIB:.0f} MiB | "
                f"{entry['median_s'] / base:.2f} | {len(entry['files'])}, {outputs:.1f} MB |"
            )
        print(
            "\nWarm-up runs (untimed in the medians): "
            + ", ".join(f"{name} {pipelines[name]['warmup_s']:.2f} s" for name in VARIANTS)
        )
    batch = report.get("batch")
    if batch is not None:
        print(f"\n## (c) Batch of {batch['count']} photos in one process\n")
        print("| photos | wall | per photo | peak RSS | output files |")
        print("| --- | --- | --- | --- | --- |")
        print(
            f"| {batch['count']} | {batch['wall_s']:.1f} s | {batch['s_per_photo']:.2f} s | "
            f"{batch['peak_rss_bytes'] / MIB:.0f} MiB | {batch['output_files']}, "
            f"{batch['output_bytes'] / 1e6:.0f} MB |"
        )
    if report.get("startup"):
        print("\n## (d) Start-up\n")
        print("| command | median | min | peak RSS |")
        print("| --- | --- | --- | --- |")
        for row in report["startup"]:
            print(
                f"| {row['label']} | {row['median_s']:.3f} s | {row['min_s']:.3f} s | "
                f"{row['median_peak_rss_bytes'] / MIB:.0f} MiB |"
            )


def memory_description() -> str:
    """Total memory of the machine, from /proc/meminfo where there is one."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) * 1024 / GB:.0f} GB memory"
    except OSError:
        pass
    return "memory unknown"


def parse_args() -> argparse.Namespace:
    """Parse the command line; --quick lowers the repeats for a smoke run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--photo", type=Path, default=None, help="use this photo as it is")
    source.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=REPO / "samples" / "coffee.png",
        help="make the 4032x3024 photo from this image (default samples/coffee.png)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="rounds of (b); default 5")
    parser.add_argument("--batch-count", type=int, default=None, help="photos in (c); default 20")
    parser.add_argument("--startup-runs", type=int, default=None, help="runs of (d); default 10")
    parser.add_argument("--network-repeats", type=int, default=None, help="network.py --repeats")
    parser.add_argument("--skip-network", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: repeats 2, batch 5, fewer network runs"
    )
    args = parser.parse_args()
    quick = args.quick
    defaults = {"repeats": 5, "batch_count": 20, "startup_runs": 10, "network_repeats": None}
    if quick:
        defaults = {"repeats": 2, "batch_count": 5, "startup_runs": 5, "network_repeats": 5}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("repeats", "batch_count", "startup_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.network_warmup = 1 if quick else None
    args.weights = args.weights.resolve()  # the children run in the repository root
    args.source = args.source.resolve()
    if not args.weights.is_file():
        parser.error(f"weights not found: {args.weights}")
    return args


def main() -> None:
    """Measure (a)-(d), print the report, write JSON when asked."""
    args = parse_args()
    started = time.perf_counter()
    from depth2mesh._version import __version__

    report: dict[str, Any] = {
        "machine": cpu_description(),
        "memory": memory_description(),
        "depth2mesh_version": __version__,
        "settings": {
            "weights": str(args.weights),
            "repeats": args.repeats,
            "batch_count": None if args.skip_batch else args.batch_count,
            "startup_runs": args.startup_runs,
            "network_repeats": args.network_repeats,
            "quick": args.quick,
            "targets": TARGETS,
        },
    }
    with tempfile.TemporaryDirectory(prefix="depth2mesh_speed_") as folder:
        work = Path(folder)
        if args.photo is not None:
            photo, origin = args.photo.resolve(), f"given: {args.photo}"
        else:
            photo = work / "photo_4032x3024.jpg"
            log(f"making the 4032x3024 photo from {args.source}")
            write_jpeg(photo, large_photo(args.source))
            origin = (
                f"{args.source.name} cropped to 4:3, INTER_CUBIC upscaled, luminance noise "
                f"sigma {NOISE_SIGMA:g}, quality {JPEG_QUALITY}"
            )
        width, height = photo_size(photo)
        report["photo"] = {
            "path": str(photo),
            "origin": origin,
            "width": width,
            "height": height,
            "bytes": photo.stat().st_size,
        }
        if not args.skip_network:
            report["network"] = measure_network(
                args.weights, args.network_repeats, args.network_warmup, work
            )
        report["pipelines"] = measure_pipelines(photo, args.weights, args.repeats, work)
        if not args.skip_batch:
            report["batch"] = measure_batch(photo, args.weights, args.batch_count, work)
        report["startup"] = measure_startup(args.startup_runs)
    report["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report["total_s"] = time.perf_counter() - started
    rows = targets(report)
    report["targets"] = [asdict(row) for row in rows]
    print_report(report, rows)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
