"""Batches and bad input: every odd or broken input, its exit code, its one line, the files left.

The corpus is generated here. Each case runs the real command line in a subprocess and checks
the exit code, a pattern in its messages, and the exact set of files in the output folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
from helpers.gltf_validator import validate_glb
from PIL import Image

RESULT = ("{s}.glb", "{s}_points.ply", "{s}_depth.png", "{s}_depth_inferno.png", "{s}.json")


def results(stem: str) -> set[str]:
    return {name.format(s=stem) for name in RESULT}


def photo_array(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 40, (height, width, 1))
    rgb = np.stack([u * 255 // max(width - 1, 1), v * 255 // max(height - 1, 1), 128 + 0 * u], 2)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def save(path: Path, image: Image.Image, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class Case:
    """One run of the command line."""

    name: str
    make: Callable[[Path], list[str]]  # builds the inputs in a folder, returns the arguments
    code: int
    pattern: str
    files: set[str] = field(default_factory=set)
    command: str = "convert"


def _good(folder: Path, name: str = "good.png") -> str:
    return str(save(folder / name, Image.fromarray(photo_array())))


def _animated(folder: Path, suffix: str) -> list[str]:
    frames = [Image.fromarray(photo_array(seed=i)) for i in range(3)]
    path = folder / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return [str(path)]


def _truncated(folder: Path, kind: str) -> list[str]:
    buffer = io.BytesIO()
    Image.fromarray(photo_array(96, 128)).save(buffer, format=kind)
    path = folder / f"cut.{kind.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return [str(path)]


def _depth(folder: Path, values: np.ndarray, kind: str = "disparity") -> list[str]:
    np.save(folder / "d.npy", values)
    return [_good(folder), "--depth", str(folder / "d.npy"), "--depth-kind", kind]


def _existing(folder: Path) -> list[str]:
    (folder / "out").mkdir()
    (folder / "out" / "good.glb").write_bytes(b"precious")
    return [_good(folder)]


def _bomb(folder: Path) -> list[str]:
    # 13000 x 12000 = 156 million pixels in a tiny file: more than the 150 M default limit
    return [str(save(folder / "bomb.png", Image.new("1", (13000, 12000))))]


def _hundred_megapixels(folder: Path) -> list[str]:
    import cv2

    v, u = np.mgrid[0:10000, 0:10000]
    stripes = np.stack([(u // 40) % 256, (v // 40) % 256, ((u + v) // 80) % 256], axis=2)
    path = folder / "huge.jpg"
    cv2.imwrite(str(path), stripes.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return [str(path)]


def _heic(folder: Path) -> list[str]:
    import pillow_heif

    pillow_heif.register_heif_opener()  # Pillow writes HEIC through pillow-heif
    return [str(save(folder / "phone.heic", Image.fromarray(photo_array())))]


def _cmyk(folder: Path) -> list[str]:
    image = Image.fromarray(photo_array()).convert("CMYK")
    return [str(save(folder / "print.jpg", image))]


def _palette(folder: Path) -> list[str]:
    image = Image.fromarray(photo_array()).convert("P", palette=Image.Palette.ADAPTIVE)
    return [str(save(folder / "palette.png", image))]


def _rgba(folder: Path) -> list[str]:
    rgba = np.dstack([photo_array(), np.full((48, 64), 255, np.uint8)])
    rgba[:, :20, 3] = 0  # a transparent left part: left out of the geometry
    return [str(save(folder / "cutout.png", Image.fromarray(rgba)))]


ONE_CONVERTED = r"\.\w+: \d+ files in \d+\.\d s"
"""What converting one photo prints: one line (no summary table)."""

CASES = [
    Case(
        "jpeg",
        lambda f: [str(save(f / "a.jpg", Image.fromarray(photo_array())))],
        0,
        ONE_CONVERTED,
        results("a"),
    ),
    Case(
        "png 16-bit gray",
        lambda f: [
            str(
                save(f / "g16.png", Image.fromarray(photo_array()[:, :, 0].astype(np.uint16) * 257))
            )
        ],
        0,
        ONE_CONVERTED,
        results("g16"),
    ),
    Case(
        "png gray 8-bit",
        lambda f: [str(save(f / "g8.png", Image.fromarray(photo_array()).convert("L")))],
        0,
        ONE_CONVERTED,
        results("g8"),
    ),
    Case("png palette", _palette, 0, ONE_CONVERTED, results("palette")),
    Case("png rgba", _rgba, 0, ONE_CONVERTED, results("cutout")),
    Case(
        "webp",
        lambda f: [str(save(f / "w.webp", Image.fromarray(photo_array())))],
        0,
        ONE_CONVERTED,
        results("w"),
    ),
    Case(
        "tiff",
        lambda f: [str(save(f / "t.tif", Image.fromarray(photo_array())))],
        0,
        ONE_CONVERTED,
        results("t"),
    ),
    Case(
        "bmp",
        lambda f: [str(save(f / "b.bmp", Image.fromarray(photo_array())))],
        0,
        ONE_CONVERTED,
        results("b"),
    ),
    Case("heic", _heic, 0, ONE_CONVERTED, results("phone")),
    Case("cmyk jpeg", _cmyk, 0, ONE_CONVERTED, results("print")),
    Case(
        "animated gif", lambda f: _animated(f, ".gif"), 0, r"first of its 3 frames", results("anim")
    ),
    Case(
        "animated webp",
        lambda f: _animated(f, ".webp"),
        0,
        r"first of its 3 frames",
        results("anim"),
    ),
    Case(
        "1x1 photo",
        lambda f: [str(save(f / "dot.png", Image.new("RGB", (1, 1), (9, 99, 199))))],
        0,
        ONE_CONVERTED,
        results("dot"),
    ),
    Case(
        "constant colour",
        lambda f: [str(save(f / "flat.png", Image.new("RGB", (64, 48), (90, 90, 90))))],
        0,
        ONE_CONVERTED,
        results("flat"),
    ),
    Case(
        "spaces and non-ASCII",
        lambda f: [_good(f, "my phötö ünïcode.png")],
        0,
        ONE_CONVERTED,
        results("my phötö ünïcode"),
    ),
    Case(
        "empty file",
        lambda f: [str(save_bytes(f / "empty.jpg", b""))],
        1,
        r"empty\.jpg is an empty file",
    ),
    Case(
        "truncated jpeg",
        lambda f: _truncated(f, "JPEG"),
        1,
        r"cut\.jpeg cannot be decoded .*truncated",
    ),
    Case(
        "truncated png",
        lambda f: _truncated(f, "PNG"),
        1,
        r"cut\.png cannot be decoded .*truncated",
    ),
    Case(
        "text named .jpg",
        lambda f: [str(save_bytes(f / "notes.jpg", b"just text\n"))],
        1,
        r"notes\.jpg is not an image file",
    ),
    Case("missing file", lambda f: [str(f / "absent.jpg")], 1, r"absent\.jpg does not exist"),
    Case(
        "folder as a photo",
        lambda f: [str(mkdir(f / "album.jpg"))],
        1,
        r"album\.jpg is a folder with no photos",
    ),
    Case("pattern without match", lambda f: [str(f / "*.nef")], 1, r"no photo matches the pattern"),
    Case("100 megapixels", _hundred_megapixels, 0, ONE_CONVERTED, results("huge")),
    Case(
        "decompression bomb",
        _bomb,
        1,
        r"156,000,000 pixels, more than the limit of 150,000,000.*--max-pixels",
    ),
    Case(
        "limit lowered",
        lambda f: [_good(f), "--max-pixels", "1000"],
        1,
        r"more than the limit of 1,000",
    ),
    Case(
        "existing output", _existing, 1, r"good\.glb exists already: pass --overwrite", {"good.glb"}
    ),
    Case(
        "output under a file",
        lambda f: [_good(f), "-o", str(save_bytes(f / "blocker", b"x") / "out")],
        1,
        r"cannot create the output folder",
    ),
    Case("negative fov", lambda f: [_good(f), "--fov", "-5"], 2, r"--fov"),
    Case(
        "near >= far",
        lambda f: [_good(f), "--near", "5", "--far", "5"],
        2,
        r"--far must be greater than --near",
    ),
    Case("grid 0", lambda f: [_good(f), "--grid", "0"], 2, r"--grid must be at least 2"),
    Case(
        "depth of another size",
        lambda f: _depth(f, np.ones((30, 30), np.float32)),
        1,
        r"is 30x30 but the photo is 64x48",
    ),
    Case(
        "depth with NaN",
        lambda f: _depth(f, np.where(np.eye(48, 64) > 0, np.nan, 1.0)),
        1,
        r"48 NaN or inf disparity values",
    ),
    Case("depth with inf", lambda f: _depth(f, np.full((48, 64), np.inf)), 1, r"no usable value"),
    Case(
        "depth all zeros", lambda f: _depth(f, np.zeros((48, 64)), "metric"), 1, r"no usable value"
    ),
    Case(
        "depth flat disparity",
        lambda f: _depth(f, np.full((48, 64), 3.0)),
        0,
        ONE_CONVERTED,
        results("good"),
    ),
]


def save_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depth2mesh", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def env(parity_weights: Path, isolated_env: dict[str, str]) -> dict[str, str]:
    return {**isolated_env, "DEPTH2MESH_WEIGHTS": str(parity_weights), "COLUMNS": "200"}


def check_complete(path: Path) -> None:
    """Fail unless ``path`` is a whole, readable result file."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".png":
        with Image.open(path) as image:
            image.load()
    elif path.suffix == ".ply":
        assert len(o3d.io.read_point_cloud(str(path)).points) > 0, path
    elif path.suffix == ".glb":
        data = path.read_bytes()
        assert data[:4] == b"glTF"
        assert int.from_bytes(data[8:12], "little") == len(data), path
        assert validate_glb(path)["issues"]["numErrors"] == 0, path
    else:
        raise AssertionError(f"unexpected file {path}")


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_and_odd_inputs(tmp_path: Path, env: dict[str, str], case: Case) -> None:
    args = case.make(tmp_path)
    if "-o" not in args:
        args = [*args, "-o", str(tmp_path / "out")]
    result = run([case.command, *args], env)
    output = result.stdout + result.stderr
    assert result.returncode == case.code, output
    assert re.search(case.pattern, " ".join(output.split())), output
    if case.pattern == ONE_CONVERTED:
        assert len(result.stdout.splitlines()) == 1, result.stdout
    assert "Traceback" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == (1 if case.code else 0), output
    out = tmp_path / "out"
    left = {p.name for p in out.iterdir()} if out.is_dir() else set()
    assert left == case.files, output
    for name in left - {"good.glb"} if case.name == "existing output" else left:
        check_complete(out / name)
    if case.name == "existing output":
        assert (out / "good.glb").read_bytes() == b"precious"


def test_transparent_pixels_are_left_out(tmp_path: Path, env: dict[str, str]) -> None:
    args = _rgba(tmp_path)
    assert run(["convert", *args, "-o", str(tmp_path / "out")], env).returncode == 0
    sidecar = json.loads((tmp_path / "out" / "cutout.json").read_text())
    assert sidecar["counts"]["points"] == 48 * (64 - 20)


@pytest.mark.slow  # root, and a subprocess per case
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
@pytest.mark.parametrize("what", ["photo", "output folder"])
def test_permission_denied(parity_weights: Path, what: str) -> None:
    # root reads everything: run the command as "nobody" to meet a real permission error
    folder = Path(tempfile.mkdtemp(prefix="d2m-perm-"))
    try:
        folder.chmod(0o777)
        photo = Path(_good(folder))
        photo.chmod(0o644)
        out = folder / "out"
        out.mkdir()
        if what == "photo":
            photo.chmod(0o000)
            out.chmod(0o777)
        else:
            out.chmod(0o555)
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(folder),
            "TORCH_HOME": str(folder / "torch"),
            "DEPTH2MESH_WEIGHTS": str(parity_weights),
            "DEPTH2MESH_OFFLINE": "1",
            "COLUMNS": "200",
        }
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        result = subprocess.run(
            [*command, "-m", "depth2mesh", "convert", str(photo), "-o", str(out)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
            check=False,
        )
        text = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stdout + result.stderr
        expected = "cannot be read: permission denied" if what == "photo" else "cannot write into"
        assert expected in text
        assert "Traceback" not in text
        assert list(out.iterdir()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow  # a batch of twenty photos in a subprocess: over 5 s
def test_batch_of_twenty_with_five_broken(tmp_path: Path, env: dict[str, str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(15):
        save(photos / f"good_{index:02d}.jpg", Image.fromarray(photo_array(seed=index)))
    save_bytes(photos / "broken_empty.jpg", b"")
    save_bytes(photos / "broken_text.jpg", b"hello")
    save_bytes(photos / "broken_cut.jpg", jpeg_bytes(Image.fromarray(photo_array(96, 128)))[:300])
    save_bytes(photos / "broken_zeros.png", bytes(64))
    save(photos / "broken_bomb.png", Image.new("1", (13000, 12000)))
    result = run(["convert", str(photos), "-o", str(tmp_path / "out")], env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, result.stderr
    assert all("broken_" in line for line in errors)
    assert "15 converted, 0 skipped, 5 failed" in result.stdout
    expected = set().union(*(results(f"good_{index:02d}") for index in range(15)))
    assert {p.name for p in (tmp_path / "out").iterdir()} == expected


@pytest.mark.slow  # subprocesses: over 5 s
def test_recursive_folders_mirror_their_structure(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "trip" / "day1").mkdir(parents=True)
    (tmp_path / "trip" / "day2").mkdir()
    _good(tmp_path / "trip" / "day1", "a.png")
    _good(tmp_path / "trip" / "day2", "a.png")  # same name, another folder: no clash
    _good(tmp_path / "trip", "top.png")
    flat = run(["convert", str(tmp_path / "trip"), "-o", str(tmp_path / "o1")], env)
    assert flat.returncode == 0, flat.stderr
    assert {p.name for p in (tmp_path / "o1").iterdir()} == results("top")
    deep = run(["convert", str(tmp_path / "trip"), "-r", "-o", str(tmp_path / "o2")], env)
    assert deep.returncode == 0, deep.stderr
    assert {p.name for p in (tmp_path / "o2" / "day1").iterdir()} == results("a")
    assert {p.name for p in (tmp_path / "o2" / "day2").iterdir()} == results("a")
    pattern = run(
        ["convert", str(tmp_path / "trip" / "**" / "*.png"), "-r", "-o", str(tmp_path / "o3")], env
    )
    assert pattern.returncode == 1  # two a.png into one folder: the second is refused
    assert "has the same name as" in pattern.stderr
    assert "2 converted, 0 skipped, 1 failed" in pattern.stdout


@pytest.mark.slow  # interrupts and resumes a batch: over a minute on two cores
def test_sigint_leaves_only_complete_files_and_skip_existing_resumes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(12):
        save(photos / f"p{index:02d}.png", Image.fromarray(photo_array(240, 320, seed=index)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "depth2mesh", "convert", str(photos), "-o", str(out)]
    process = subprocess.Popen(
        [*command, "--mesh", "both"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a user's terminal does: a test run started in the background (`cmd &` in a
        # script) hands its children SIGINT ignored, and Python then never installs its handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while not (out / "p00.json").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next photo's conversion
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted after" in stderr
    assert "Traceback" not in stderr
    left = sorted(out.iterdir())
    assert not [p for p in left if p.name.startswith(".")], left  # no temporary file
    finished = {p.stem for p in left if p.suffix == ".json"}
    assert 1 <= len(finished) < 12
    for path in left:
        check_complete(path)
    resumed = run([*command[3:], "--mesh", "both", "--skip-existing"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{12 - len(finished)} converted, {len(finished)} skipped, 0 failed" in resumed.stdout
    names = {p.name for p in out.iterdir()}
    for index in range(12):
        stem = f"p{index:02d}"
        assert results(stem) | {f"{stem}_poisson.glb", f"{stem}_poisson.ply"} <= names


@pytest.mark.slow  # two batches in subprocesses: over 5 s
def test_jobs_give_the_same_files_as_one_at_a_time(tmp_path: Path, env: dict[str, str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(5):
        save(photos / f"p{index}.png", Image.fromarray(photo_array(seed=index)))
    save_bytes(photos / "bad.png", b"broken")
    serial = run(["convert", str(photos), "-o", str(tmp_path / "one")], env)
    parallel = run(["convert", str(photos), "-o", str(tmp_path / "two"), "--jobs", "2"], env)
    for result in (serial, parallel):
        assert result.returncode == 1
        assert "5 converted, 0 skipped, 1 failed" in result.stdout
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        if not name.endswith(".json"):  # the sidecar holds timings
            one = (tmp_path / "one" / name).read_bytes()
            assert one == (tmp_path / "two" / name).read_bytes(), name
    assert (
        run(["convert", str(photos), "-o", str(tmp_path / "x"), "--jobs", "0"], env).returncode == 2
    )
