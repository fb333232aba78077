"""The package as others get it: ``python -m build``'s wheel and sdist, installed afresh.

The fresh environment reuses the test environment's installed dependencies through a
``.pth`` file (no 5 GB reinstall, no network): pip sees them as installed, so the wheel's
requirements are checked against them, and only depth2mesh itself is installed.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTRAS = {"web", "onnxruntime", "ray", "draco", "dev"}


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` on a copy of what the sdist needs (the checkout stays clean)."""
    pytest.importorskip("build", reason="pip install build (the dev extra has it)")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "depth2mesh", source / "depth2mesh", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], timeout=600)
    return out


@pytest.mark.slow  # an isolated build (setuptools from the index)
def test_build_makes_a_wheel_and_an_sdist_with_complete_metadata(dist: Path) -> None:
    [wheel] = dist.glob("depth2mesh-*-py3-none-any.whl")
    [sdist] = dist.glob("depth2mesh-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt"))
    assert "depth2mesh/apps/cli.py" in names
    assert "depth2mesh/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert b"depth2mesh = depth2mesh.apps.cli:main" in entry_points
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Summary"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert len(metadata.get_all("Project-URL") or []) >= 2
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX field says it
    assert set(metadata.get_all("Provides-Extra") or []) == EXTRAS
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("gradio") and 'extra == "web"' in r for r in requires)
    assert any(r.startswith("torch>=") for r in requires)
    with tarfile.open(sdist) as archive:
        members = {Path(m).relative_to(Path(m).parts[0]).as_posix() for m in archive.getnames()}
    assert {"pyproject.toml", "README.md", "LICENSE", "depth2mesh/apps/cli.py"} <= members


@pytest.mark.slow  # a fresh environment, a pip install and a conversion (export included)
def test_wheel_installs_in_a_fresh_environment_and_converts_the_sample(
    dist: Path, shared_dir: Path, tmp_path: Path
) -> None:
    [wheel] = dist.glob("depth2mesh-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    fresh_site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    # the big dependencies come from the test environment, after the fresh one's own
    (fresh_site / "reused_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # venv's own old setuptools would hide the reused one, which torch requires
    _run([str(python), "-m", "pip", "uninstall", "-y", "setuptools"], env=env, timeout=300)
    _run([str(python), "-m", "pip", "install", str(wheel)], env=env, timeout=600)
    where = _run(
        [str(python), "-c", "import depth2mesh; print(depth2mesh.__file__)"], env=env, cwd=tmp_path
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy

    out = tmp_path / "out"
    env.update(DEPTH2MESH_CACHE=str(tmp_path / "cache"), DEPTH2MESH_OFFLINE="1")
    weights = shared_dir / "midas" / "midas_small_random_init.pt"
    result = _run(
        [
            str(venv / "bin" / "depth2mesh"),
            "convert",
            str(REPO / "samples" / "coffee.png"),
            "-o",
            str(out),
            "--weights",
            str(weights),
        ],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert "coffee.png: 5 files in" in result.stdout
    assert {p.name for p in out.iterdir()} == {
        "coffee.glb",
        "coffee_points.ply",
        "coffee_depth.png",
        "coffee_depth_inferno.png",
        "coffee.json",
    }
    import trimesh

    assert len(trimesh.load(out / "coffee.glb", force="mesh").faces) > 100_000
