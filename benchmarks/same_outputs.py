"""Check that two revisions write byte-identical files for the sample photos.

Usage: ``python benchmarks/same_outputs.py BASE [HEAD] [--weights PT] [--backend B]``

Checks out BASE (and HEAD, default: the working tree) into temporary git worktrees, runs the
real ``depth2mesh convert`` of each on every photo in ``samples/`` with several option sets,
and compares every file byte for byte. Sidecars (``STEM.json``) are compared as JSON with
their timings (keys ending in ``timings_s``) left out; any other key that differs is listed.
The base revision runs twice: what differs between its own two runs (Open3D's multithreaded
Poisson surface) is reported as such, and sidecar keys that only the head writes as added.
Prints a table and exits 1 when anything else differs.

The weights default to the parity checkpoint in ``$DEPTH2MESH_SHARED`` (``../shared``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEPTH2MESH_SHARED", REPO.parent / "shared")).resolve()

OPTION_SETS: dict[str, list[str]] = {
    "defaults": [],
    "both+obj": ["--mesh", "both", "--format", "obj"],
    "photo-size png": ["--depth-size", "photo", "--texture-format", "png", "--fov", "75"],
    "drop-far grid300 q80": ["--drop-far", "--grid", "300", "--jpeg-quality", "80"],
}


def _checkout(revision: str, root: Path) -> Path:
    target = root / revision.replace("/", "_")
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(target), revision],
        check=True,
    )
    return target


def _convert(tree: Path, out: Path, options: list[str], weights: Path, backend: str) -> None:
    photos = sorted(str(p.relative_to(tree)) for p in (tree / "samples").iterdir())
    photos = [p for p in photos if p.endswith((".png", ".jpg"))]
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, "-m", "depth2mesh", "convert", *photos, "-o", str(out)]
    command += ["--weights", str(weights), "--backend", backend, *options]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"convert failed in {tree}:\n{done.stdout}\n{done.stderr}")


def _without_timings(document: Any) -> Any:
    if isinstance(document, dict):
        kept = {k: v for k, v in document.items() if not k.endswith("timings_s")}
        return {k: _without_timings(v) for k, v in kept.items()}
    if isinstance(document, list):
        return [_without_timings(v) for v in document]
    return document


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        found: list[str] = []
        for key in keys:
            if key not in a or key not in b:
                found.append(f"{prefix}{key} (only in {'head' if key in b else 'base'})")
            else:
                found += _differences(a[key], b[key], f"{prefix}{key}.")
        return found
    return [] if a == b else [prefix.rstrip(".")]


def compare(base_out: Path, head_out: Path) -> tuple[int, list[str]]:
    """Return (files compared, differences), one line per file or sidecar key."""
    problems: list[str] = []
    names = sorted({p.name for p in base_out.iterdir()} | {p.name for p in head_out.iterdir()})
    for name in names:
        a, b = base_out / name, head_out / name
        if not a.exists() or not b.exists():
            problems.append(f"{name}: only in {'head' if b.exists() else 'base'}")
        elif name.endswith(".json"):
            diff = _differences(
                _without_timings(json.loads(a.read_text())),
                _without_timings(json.loads(b.read_text())),
            )
            problems += [f"{name}: sidecar key {key}" for key in diff]
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: bytes differ")
    return len(names), problems


def classify(problems: list[str], unstable: set[str]) -> tuple[list[str], list[str], list[str]]:
    """Split differences into (real, unstable in base itself, sidecar keys head added).

    A difference is "unstable" when two runs of the base revision differ there too (Open3D's
    multithreaded Poisson reconstruction is not deterministic); a sidecar key only in head
    is new information, not a changed result.
    """
    poisson_stems = {u.split("_poisson.")[0] for u in unstable if "_poisson." in u}
    real, noisy, added = [], [], []
    for problem in problems:
        stem = problem.split("_poisson.")[0].split(".json:")[0]
        poisson = "_poisson." in problem or "counts.poisson_" in problem
        if problem in unstable or (poisson and stem in poisson_stems):
            noisy.append(problem)
        elif problem.endswith("(only in head)"):
            added.append(problem)
        else:
            real.append(problem)
    return real, noisy, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("head", nargs="?", default=None, help="default: the working tree")
    parser.add_argument(
        "--weights", type=Path, default=SHARED / "midas" / "midas_small_random_init.pt"
    )
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="same-outputs-") as scratch:
        root = Path(scratch)
        trees = {"base": _checkout(args.base, root)}
        trees["head"] = _checkout(args.head, root) if args.head else REPO
        failed = False
        print(f"{'options':<24} {'files':>5}  result")
        try:
            for label, options in OPTION_SETS.items():
                outs = {}
                for side, tree in (*trees.items(), ("base again", trees["base"])):
                    outs[side] = root / "out" / side.replace(" ", "_") / label.replace(" ", "_")
                    _convert(tree, outs[side], options, args.weights, args.backend)
                count, problems = compare(outs["base"], outs["head"])
                unstable = set(compare(outs["base"], outs["base again"])[1])
                real, noisy, added = classify(problems, unstable)
                failed |= bool(real)
                verdict = "DIFFERENT" if real else "identical"
                if noisy:
                    verdict += f" except {len(noisy)} that differ between two base runs too"
                if added:
                    verdict += f"; {len(added)} sidecar keys added"
                print(f"{label:<24} {count:>5}  {verdict}")
                for problem in real + noisy + added:
                    print(f"    {problem}")
        finally:
            for tree in trees.values():
                if tree != REPO:
                    subprocess.run(
                        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                        check=False,
                    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
