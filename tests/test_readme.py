"""The documentation's Python examples run as written; its links and test command hold.

Every ```python block of the README and of docs/usage.md is taken from the file and executed,
never retyped here, in a fresh working directory where ``samples/`` is the repository's, with
``DEPTH2MESH_WEIGHTS`` set to the parity checkpoint (random values in the official format) and
downloads forbidden.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from depth2mesh.errors import UnofficialWeightsWarning

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_FILES = ("README.md", "docs/usage.md")
DOCUMENTS = (
    "README.md",
    "blender_addon/README.md",
    *sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md")),
)
README_TEST_COMMAND = ".venv/bin/python -m pytest"

_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def python_blocks(name: str) -> list[tuple[str, str]]:
    """Return (where, code) for each ```python block of a document, ``where`` as FILE:LINE."""
    text = (REPO / name).read_text(encoding="utf-8")
    return [
        (f"{name}:{text.count(chr(10), 0, match.start()) + 2}", match.group(1))
        for match in _PYTHON_BLOCK.finditer(text)
    ]


EXAMPLES = [block for name in EXAMPLE_FILES for block in python_blocks(name)]


def test_readme_has_a_python_example() -> None:
    assert any(where.startswith("README.md:") for where, _ in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_python_example_runs(
    where: str,
    code: str,
    shared_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "samples").symlink_to(REPO / "samples", target_is_directory=True)
    monkeypatch.chdir(workdir)
    weights = shared_dir / "midas" / "midas_small_random_init.pt"
    monkeypatch.setenv("DEPTH2MESH_WEIGHTS", str(weights))
    monkeypatch.setenv("DEPTH2MESH_OFFLINE", "1")
    # the ONNX export and compiled network go to a cache of this test, not the user's
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        exec(compile(code, where, "exec"), {"__name__": "__example__"})

    if "convert_photo(" in code:  # the examples convert the coffee sample into out/
        assert (workdir / "out" / "coffee.glb").is_file()
        assert "coffee.glb" in capsys.readouterr().out


def heading_anchors(text: str) -> set[str]:
    """Return the anchors GitHub makes for a Markdown text's headings (outside code blocks)."""
    anchors = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", DOCUMENTS)
def test_relative_links_resolve(name: str) -> None:
    document = REPO / name
    broken = []
    for target in _LINK.findall(document.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path) if path else document
        exists = linked.exists()
        if not exists or (anchor and anchor not in heading_anchors(linked.read_text("utf-8"))):
            broken.append(target)
    assert not broken, f"{name} links to files or headings that do not exist: {broken}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci_commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert f"```bash\n{README_TEST_COMMAND}\n```" in readme
    assert README_TEST_COMMAND in ci_commands
    assert "bash .ci/run" in readme
