"""The command line as a new user meets it: ``convert --help`` and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from depth2mesh.apps.cli import PANELS, app, attribute_docs, option_help
from depth2mesh.exchange.gltf import DEFAULT_JPEG_QUALITY
from depth2mesh.geometry.camera import DEFAULT_FOV_DEG
from depth2mesh.geometry.scale import DEFAULT_FAR, DEFAULT_NEAR
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def convert_help() -> str:
    result = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.output


def _convert_options() -> list[object]:
    command = get_command(app)
    context = command.make_context("depth2mesh", ["convert", "--help"], resilient_parsing=True)
    convert = command.get_command(context, "convert")  # type: ignore[attr-defined]
    return [p for p in convert.params if not getattr(p, "is_eager", False)]


def test_every_convert_option_is_in_one_of_the_seven_panels() -> None:
    options = [p for p in _convert_options() if type(p).__name__ == "TyperOption"]
    assert len(options) > 40
    outside = [p.opts for p in options if getattr(p, "rich_help_panel", None) not in PANELS]
    assert not outside
    used = {getattr(p, "rich_help_panel", None) for p in options}
    assert used == set(PANELS)


def test_convert_help_is_grouped_in_order_and_ends_with_the_exit_codes(convert_help: str) -> None:
    titles = re.findall(r"╭─ (.+?) ─", convert_help)
    assert [t for t in titles if t in PANELS] == list(PANELS)
    assert set(titles) - set(PANELS) <= {"Arguments", "Options"}  # the photos; --help
    last_panel = convert_help.rindex("╰")
    assert convert_help.index("Exit codes") > last_panel
    for code in ("0 every photo", "1 a photo failed", "2 a usage error", "130 interrupted"):
        assert code in " ".join(convert_help[last_panel:].split())


def test_convert_help_shows_switches_as_switches(convert_help: str) -> None:
    assert "<bool>" not in convert_help
    assert "<list[str]>" not in convert_help
    assert "{photos}" not in convert_help
    assert re.search(r"Usage: .* convert \[OPTIONS\] PHOTO\.\.\.", convert_help)
    assert re.search(r"--overwrite +Replace existing output files\.", convert_help)
    assert re.search(r"--format +obj +", convert_help)


def test_convert_help_refers_only_to_what_exists(convert_help: str) -> None:
    text = " ".join(convert_help.replace("│", " ").split())
    assert "README's" not in text
    for document in re.findall(r"docs/[\w.]+\.md", text):
        assert (REPO / document).is_file(), document
    assert "docs/ray.md" in text
    assert "docs/benchmarks.md" in text


def test_option_help_comes_from_the_field_docs(convert_help: str) -> None:
    text = " ".join(convert_help.replace("│", " ").split())
    docs = attribute_docs(ConvertOptions)
    assert set(docs) == {f.name for f in fields(ConvertOptions)}
    assert set(attribute_docs(CameraOptions)) == {f.name for f in fields(CameraOptions)}
    for name in ("near", "edges", "glb_compression", "depth_at", "drop_far"):
        assert " ".join(option_help(ConvertOptions, name).split()) in text
    # field names become options; Sphinx markup does not reach the terminal
    assert "not with --depth-at" in option_help(ConvertOptions, "near")
    assert "``" not in text
    assert ":func:" not in text
    # the numbers the docs give are the defaults in force
    assert f"not given: {DEFAULT_NEAR:g}." in option_help(ConvertOptions, "near")
    assert f"not given: {DEFAULT_FAR:g}." in option_help(ConvertOptions, "far")
    assert f"encoded at {DEFAULT_JPEG_QUALITY}." in option_help(ConvertOptions, "jpeg_quality")
    assert f"else {DEFAULT_FOV_DEG:g}." in option_help(CameraOptions, "fov_deg")


def test_near_far_unset_means_the_defaults() -> None:
    options = ConvertOptions()
    assert (options.near, options.far) == (None, None)
    assert options.near_far() == (DEFAULT_NEAR, DEFAULT_FAR)
    assert ConvertOptions(far=30.0).near_far() == (DEFAULT_NEAR, 30.0)


def test_a_missing_photo_is_named_once(tmp_path: Path) -> None:
    np.save(tmp_path / "depth.npy", np.ones((4, 4), np.float32))
    missing = tmp_path / "bad" / "missing.jpg"
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(missing),
            "-o",
            str(tmp_path / "out"),
            "--depth",
            str(tmp_path / "depth.npy"),
        ],
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert lines == [f"error: {missing} does not exist"]


def test_a_bad_photo_still_gets_its_path_first(tmp_path: Path) -> None:
    photo = tmp_path / "notes.jpg"
    photo.write_text("just text\n")
    np.save(tmp_path / "depth.npy", np.ones((4, 4), np.float32))
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(photo),
            "-o",
            str(tmp_path / "out"),
            "--depth",
            str(tmp_path / "depth.npy"),
        ],
    )
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.startswith("error")]
    assert line.startswith(f"error: {photo} ")
    assert line.count(str(photo)) == 1


@pytest.mark.slow  # a subprocess that exports and compiles the network (10-30 s)
def test_first_run_says_what_it_prepares_and_reports_the_time(
    shared_dir: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DEPTH2MESH_CACHE": str(tmp_path / "empty-cache"),
        "DEPTH2MESH_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    weights = shared_dir / "midas" / "midas_small_random_init.pt"
    command = [
        sys.executable,
        "-m",
        "depth2mesh",
        "convert",
        str(REPO / "samples" / "coffee.png"),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        str(weights),
        "--backend",
        "openvino",
        "--overwrite",
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    lines = [(time.perf_counter() - start, line.rstrip()) for line in process.stdout]
    assert process.wait(timeout=300) == 0, lines
    wall = time.perf_counter() - start
    texts = [text for _, text in lines]
    # the first line, long before the end, says what is being prepared
    first_at, first = lines[0]
    assert first.startswith("preparing MiDaS v2.1 small for this computer: ONNX export and ")
    assert "OpenVINO compile, once" in first
    prepared = next(t for t in texts if re.match(r"MiDaS v2\.1 small prepared in [\d.]+ s", t))
    load_s = float(re.search(r"prepared in ([\d.]+) s", prepared)[1])  # type: ignore[index]
    assert "ONNX export" in prepared
    assert "OpenVINO compile" in prepared
    converted = next(t for t in texts if "coffee.png: 5 files in" in t)
    convert_s = float(re.search(r"files in ([\d.]+) s", converted)[1])  # type: ignore[index]
    done_at = next(at for at, text in lines if text == prepared)
    assert first_at < done_at - 0.5 * load_s  # said while it happened, not after
    # the times reported cover the run, less Python's start and exit
    assert load_s + convert_s >= 0.6 * wall, (load_s, convert_s, wall)
    assert load_s + convert_s <= wall

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "preparing" not in again.stdout + again.stderr  # once: the cache is used
