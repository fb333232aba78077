"""depth2mesh's cache folder: where it is, what it holds, clearing it, and the CLI command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli

from depth2mesh.depth import backends
from depth2mesh.depth.cache import (
    OPENVINO_CACHE,
    cache_dir,
    cache_entries,
    cache_size_bytes,
    clear_cache,
    is_own_entry,
    writable_folder,
)

SHA = "ab" * 32


def test_cache_dir_order(tmp_path: Path) -> None:
    home = Path.home()
    assert cache_dir({}) == home / ".cache" / "depth2mesh"
    assert cache_dir({"XDG_CACHE_HOME": "", "DEPTH2MESH_CACHE": " "}) == cache_dir({})
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "depth2mesh"
    both = {"XDG_CACHE_HOME": str(tmp_path), "DEPTH2MESH_CACHE": str(tmp_path / "mine")}
    assert cache_dir(both) == tmp_path / "mine"
    assert cache_dir({"DEPTH2MESH_CACHE": "~/d2m"}) == home / "d2m"
    assert cache_dir({"DEPTH2MESH_CACHE": "relative"}).is_absolute()


def _fill(folder: Path) -> None:
    """Write an export, a half-written export, OpenVINO's folder and a user's own file."""
    folder.mkdir(parents=True)
    export = folder / f"{backends.export_stem(SHA)}-0123456789abcdef.onnx"
    export.write_bytes(b"x" * 1000)
    (folder / f".{backends.export_stem(SHA)}.abcdefgh.part").write_bytes(b"y" * 10)
    (folder / OPENVINO_CACHE).mkdir()
    (folder / OPENVINO_CACHE / "1234.blob").write_bytes(b"z" * 300)
    (folder / "notes.txt").write_text("the user's own file")
    (folder / "other").mkdir()


def test_entries_size_and_clear_touch_only_own_files(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    _fill(folder)
    names = [entry.path.name for entry in cache_entries(folder)]
    assert len(names) == 3
    assert OPENVINO_CACHE in names
    assert "notes.txt" not in names
    assert cache_size_bytes(folder) == 1310
    assert clear_cache(folder) == (3, 1310)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "other"]
    assert clear_cache(folder) == (0, 0)
    assert cache_entries(tmp_path / "missing") == []
    assert clear_cache(tmp_path / "missing") == (0, 0)


def test_own_entries_are_recognised_by_name() -> None:
    assert is_own_entry(f"{backends.export_stem(SHA)}-0123456789abcdef.onnx")
    assert is_own_entry(OPENVINO_CACHE)
    assert not is_own_entry("model.onnx")
    assert not is_own_entry("midas_v21_small_256.pt")


def test_writable_folder(tmp_path: Path) -> None:
    assert writable_folder(tmp_path)
    assert writable_folder(tmp_path / "a" / "b")  # missing: its parent decides
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert not writable_folder(locked)
        assert not writable_folder(locked / "sub" / "deeper")
    finally:
        locked.chmod(0o755)
    (tmp_path / "file").write_text("a file")
    assert not writable_folder(tmp_path / "file" / "sub")


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_cli_cache_lists_and_clears(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    _fill(folder)
    env = {**os.environ, "DEPTH2MESH_CACHE": str(folder)}
    shown = run_cli("cache", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"cache folder: {folder}"
    assert any(f"{OPENVINO_CACHE}/" in line for line in lines)
    assert "notes.txt" not in shown.stdout
    assert lines[-1] == "3 entries, 0.0 MB in total"
    cleared = run_cli("cache", "--clear", env=env)
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == f"freed 0.0 MB (3 entries) in {folder}"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "other"]
    again = run_cli("cache", env={**os.environ, "DEPTH2MESH_CACHE": str(tmp_path / "new")})
    assert again.stdout.splitlines() == [
        f"cache folder: {tmp_path / 'new'} (not created yet)",
        "0 entries, 0.0 MB in total",
    ]


@pytest.mark.slow  # two CLI subprocesses and an ONNX export
def test_two_cli_conversions_leave_the_weights_folder_alone(
    tmp_path: Path, parity_weights: Path
) -> None:
    """Two real `convert` runs: the export is made once, in the cache, never beside weights."""
    if not backends.available_backends()[1:]:
        pytest.skip("needs OpenVINO or ONNX Runtime")
    weights = tmp_path / "weights" / "midas.pt"
    weights.parent.mkdir()
    weights.write_bytes(parity_weights.read_bytes())
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(photo), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "DEPTH2MESH_CACHE"}
    env.update({"XDG_CACHE_HOME": str(tmp_path / "xdg"), "DEPTH2MESH_OFFLINE": "1"})
    cache = tmp_path / "xdg" / "depth2mesh"
    stamps = []
    for run in ("first", "second"):
        result = run_cli("convert", photo, "-o", tmp_path / run, "--weights", weights, env=env)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / run / "photo.glb").is_file()
        exports = sorted(cache.glob("*.onnx"))
        assert len(exports) == 1
        stamps.append((exports[0].name, exports[0].stat().st_mtime_ns))
        assert [p.name for p in weights.parent.iterdir()] == ["midas.pt"]
        sidecar = json.loads((tmp_path / run / "photo.json").read_text())["model"]
        exported = run == "first"  # the sidecar's timings show the export only when it ran
        assert sidecar["exported_now"] is exported
        assert ("export" in sidecar["load_timings_s"]) is exported
        assert sidecar["export"] == exports[0].name
    assert stamps[0] == stamps[1]  # the second run used the cached export
