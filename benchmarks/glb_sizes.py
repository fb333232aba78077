"""GLB sizes per part for --glb-compression none / quantized / draco, and what quantising costs.

Usage: python benchmarks/glb_sizes.py [--weights PATH] [--photo PATH] [--rounds 5]
       [--mesh grid|both] [--edges on|off] [--skip-timing] [--json PATH]

Converts each sample photo (``samples/``) and one 4032x3024 JPEG (made from
samples/coffee.png as ``benchmarks/speed.py`` makes it, or ``--photo``) with the real pipeline
(:func:`depth2mesh.convert_photo`, default settings, the model loaded once) once per
variant: each compression, and ``none`` and ``quantized`` once more with the grid's triangles
as lists ("lists": what the grid GLB held before triangle strips; the grid stage's call of
``encode_glb`` is wrapped to pass ``strips=False``). It prints (markdown, CPU first):

1. the bytes of each part of the grid GLB (positions, texture coordinates, indices, the
   texture, Draco's compressed geometry, the rest: JSON and padding), in MB (10^6 bytes),
   and the file against ``none``'s (with ``--mesh both`` the Poisson GLB's too);
2. for the 12 MP photo: the largest distance, per axis, between a dequantised (or Draco)
   vertex and the float32 point cloud's (PLY) point it stands for, as a fraction of the depth
   range; and whether the GLB draws the same triangles as the float32 GLB with triangle lists
   (each vertex is the grid pixel its texture coordinate names; triangles compared as sets,
   winding kept; a strip's joins, which repeat an index, are not triangles);
3. conversion time of the 12 MP photo, every variant against ``none``, in ``--rounds``
   shuffled rounds after one untimed warm-up each, in this process: median and minimum of the
   whole ``convert_photo`` call and of its ``grid_mesh`` stage (strips against lists there).

``--edges off`` converts without occlusion edges (fewer cut triangles: longer strips).
The default weights are the parity fixture's (../shared/midas/midas_small_random_init.pt):
the same network and shapes as the official release, so the same meshes' sizes and timings
(their depth differs, which changes which triangles the depth-ratio cut removes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import cpu_model  # noqa: E402
from network import DEFAULT_WEIGHTS  # noqa: E402
from speed import large_photo, write_jpeg  # noqa: E402

import depth2mesh.pipeline.convert  # noqa: E402
from depth2mesh.exchange.draco import draco_installed  # noqa: E402
from depth2mesh.exchange.gltf_read import glb_part_sizes, read_glb_mesh  # noqa: E402
from depth2mesh.pipeline.convert import ConvertOptions, convert_photo  # noqa: E402

MB = 1e6
LISTS = " (lists)"
"""Suffix of a variant whose grid GLB holds triangle lists instead of strips."""
PARTS = ("positions", "uvs", "normals", "colors", "indices", "texture", "draco", "other")


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[glb_sizes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def canonical(faces: NDArray[np.int64]) -> NDArray[np.int64]:
    """Triangles rotated to start at their smallest index (winding kept), rows sorted."""
    start = faces.argmin(axis=1)
    rotated = faces[np.arange(len(faces))[:, None], (start[:, None] + np.arange(3)) % 3]
    return rotated[np.lexsort(rotated.T[::-1])]


def pixel_ids(uvs: NDArray[np.float32], rows: int, cols: int) -> NDArray[np.int64]:
    """The grid pixel of each vertex, from its texture coordinate (pixel centres)."""
    col = np.rint(uvs[:, 0].astype(np.float64) * cols - 0.5).astype(np.int64)
    row = np.rint(uvs[:, 1].astype(np.float64) * rows - 0.5).astype(np.int64)
    return row * cols + col


def fidelity(out: Path, reference: Path, stem: str) -> dict[str, Any]:
    """Position error against the PLY, and whether the triangles equal the float32 GLB's.

    A grid vertex is the pixel its texture coordinate names, in any file: so vertices are
    matched exactly, whatever order, splitting or sharing the file uses.
    """
    sidecar = json.loads((out / f"{stem}.json").read_text())
    rows, cols = sidecar["counts"]["grid_rows"], sidecar["counts"]["grid_cols"]
    mesh = read_glb_mesh((out / f"{stem}.glb").read_bytes())
    plain = read_glb_mesh((reference / f"{stem}.glb").read_bytes())
    assert mesh.uvs is not None
    assert plain.uvs is not None
    cloud = np.asarray(o3d.io.read_point_cloud(str(out / f"{stem}_points.ply")).points)
    assert len(cloud) == rows * cols, "the cloud must hold every pixel (no --drop-far)"
    ids, plain_ids = pixel_ids(mesh.uvs, rows, cols), pixel_ids(plain.uvs, rows, cols)
    used = np.unique(mesh.faces)
    error = float(np.abs(cloud[ids[used]] - mesh.positions[used].astype(np.float64)).max())
    depth_range = float(np.ptp(cloud[:, 2]))
    ours, theirs = canonical(ids[mesh.faces]), canonical(plain_ids[plain.faces])
    same = ours.shape == theirs.shape and bool(np.array_equal(ours, theirs))
    return {
        "max_error_m": error,
        "depth_range_m": depth_range,
        "relative_error": error / depth_range,
        "same_triangles": same,
        "triangles": len(mesh.faces),
    }


@contextlib.contextmanager
def triangle_lists() -> Iterator[None]:
    """Within the block the grid stage writes triangle lists (``encode_glb(strips=False)``)."""
    encode = depth2mesh.pipeline.convert.encode_glb

    def lists(*args: Any, **kwargs: Any) -> bytes:
        return encode(*args, **{**kwargs, "strips": False})

    depth2mesh.pipeline.convert.encode_glb = lists  # type: ignore[assignment]
    try:
        yield
    finally:
        depth2mesh.pipeline.convert.encode_glb = encode


def convert(
    photo: Path, out: Path, model: Any, variant: str, mesh: str, edges: str
) -> tuple[float, float]:
    """One conversion of a variant ("quantized", "none (lists)", ...); total, grid_mesh s."""
    compression = variant.removesuffix(LISTS)
    options = ConvertOptions(
        glb_compression=compression,  # type: ignore[arg-type]
        mesh=mesh,  # type: ignore[arg-type]
        edges=edges,  # type: ignore[arg-type]
        overwrite=True,
    )
    with triangle_lists() if variant.endswith(LISTS) else contextlib.nullcontext():
        started = time.perf_counter()
        result = convert_photo(photo, out, model=model, options=options)
        total = time.perf_counter() - started
    return total, result.timings_s["grid_mesh"]


def sizes_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| photo | GLB | compression | file MB | vs none (lists) | " + " | ".join(PARTS) + " |",
        "| --- | --- | --- | ---: | ---: | " + " | ".join("---:" for _ in PARTS) + " |",
    ]
    for row in rows:
        parts = " | ".join(f"{row['parts'][p] / MB:.2f}" for p in PARTS)
        lines.append(
            f"| {row['photo']} | {row['glb']} | {row['compression']} | {row['bytes'] / MB:.2f} "
            f"| {row['ratio']:.2f} | {parts} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--photo", type=Path, help="the 12 MP photo (default: made)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mesh", choices=("grid", "both"), default="grid")
    parser.add_argument("--edges", choices=("on", "off"), default="on")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from depth2mesh.depth.model import load_model
    from depth2mesh.errors import UnofficialWeightsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        model = load_model(args.weights, device="cpu")
    compressions = ["none" + LISTS, "none", "quantized" + LISTS, "quantized"]
    compressions += ["draco"] if draco_installed() else []
    if "draco" not in compressions:
        log("DracoPy is not installed: no draco rows (pip install -e '.[draco]')")
    report: dict[str, Any] = {"cpu": cpu_model(), "sizes": [], "fidelity": {}, "timing": {}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        large = args.photo
        if large is None:
            large = work / "photo_4032x3024.jpg"
            write_jpeg(large, large_photo(REPO / "samples" / "coffee.png"))
        photos = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".png", ".jpg"))
        for photo in [*photos, large]:
            for compression in compressions:
                log(f"{photo.name}: {compression}")
                out = work / photo.stem / compression
                convert(photo, out, model, compression, args.mesh, args.edges)
                for kind, suffix in (("grid", ".glb"), ("poisson", "_poisson.glb")):
                    path = out / f"{photo.stem}{suffix}"
                    if not path.is_file():
                        continue
                    data = path.read_bytes()
                    plain = (work / photo.stem / ("none" + LISTS) / path.name).stat().st_size
                    report["sizes"].append(
                        {
                            "photo": photo.name,
                            "glb": kind,
                            "compression": compression,
                            "bytes": len(data),
                            "ratio": len(data) / plain,
                            "parts": glb_part_sizes(data),
                        }
                    )
        for compression in compressions[1:]:
            log(f"fidelity of the 12 MP photo's {compression} GLB")
            report["fidelity"][compression] = fidelity(
                work / large.stem / compression, work / large.stem / ("none" + LISTS), large.stem
            )
        if not args.skip_timing:
            order = [c for c in compressions for _ in range(args.rounds)]
            for compression in compressions:  # warm-up: caches, page cache, allocations
                convert(
                    large, work / "timing" / compression, model, compression, args.mesh, args.edges
                )
            random.Random(0).shuffle(order)
            times: dict[str, list[tuple[float, float]]] = {c: [] for c in compressions}
            for index, compression in enumerate(order):
                log(f"timing round {index + 1}/{len(order)}: {compression}")
                times[compression].append(
                    convert(
                        large,
                        work / "timing" / compression,
                        model,
                        compression,
                        args.mesh,
                        args.edges,
                    )
                )
            for compression, runs in times.items():
                totals, grids = [t for t, _ in runs], [g for _, g in runs]
                report["timing"][compression] = {
                    "median_s": statistics.median(totals),
                    "min_s": min(totals),
                    "grid_mesh_median_s": statistics.median(grids),
                    "grid_mesh_min_s": min(grids),
                }
    print(f"CPU: {report['cpu']}\n")
    print("\n".join(sizes_table(report["sizes"])))
    print("\n| 12 MP GLB | largest vertex error vs the PLY | of the depth range | same triangles |")
    print("| --- | ---: | ---: | --- |")
    for compression, row in report["fidelity"].items():
        print(
            f"| {compression} | {row['max_error_m'] * 1e3:.3f} mm | {row['relative_error']:.2e} "
            f"| {'yes' if row['same_triangles'] else 'NO'} ({row['triangles']:,}) |"
        )
    if report["timing"]:
        base = report["timing"]["none" + LISTS]
        print(
            f"\n| 12 MP conversion ({args.rounds} shuffled rounds) | median s | min s | "
            "vs none (lists, median) | grid_mesh median s |"
        )
        print("| --- | ---: | ---: | ---: | ---: |")
        for compression, row in report["timing"].items():
            print(
                f"| {compression} | {row['median_s']:.3f} | {row['min_s']:.3f} | "
                f"{row['median_s'] - base['median_s']:+.3f} s | {row['grid_mesh_median_s']:.3f} |"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
