"""Test helper: run the Khronos glTF validator (npm ``gltf-validator``) on a file.

The validator is a dev dependency in the repository's ``package.json``; ``npm ci`` in the
repository root installs it into ``node_modules/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_DIR = REPO_ROOT / "node_modules" / "gltf-validator"
SCRIPT = Path(__file__).resolve().with_name("validate_gltf.cjs")


def validate_glb(path: str | Path, *, timeout: float = 120.0) -> dict[str, Any]:
    """Validate a GLB (or glTF) file and return the validator's report.

    Args:
        path: The file to validate.
        timeout: Seconds to wait for node.

    Returns:
        The report as the validator writes it; ``report["issues"]`` holds ``numErrors``,
        ``numWarnings``, ``numInfos``, ``numHints`` and the ``messages``.

    Raises:
        RuntimeError: node or the validator package is missing, or the validator failed.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: install Node.js 18+ to run the glTF validator")
    if not (VALIDATOR_DIR / "package.json").is_file():
        raise RuntimeError(f"{VALIDATOR_DIR} is missing: run `npm ci` in {REPO_ROOT}")
    completed = subprocess.run(
        [node, str(SCRIPT), str(VALIDATOR_DIR), str(Path(path).resolve())],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"glTF validator failed on {path}: {completed.stderr.strip()}")
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def issue_summary(report: dict[str, Any]) -> str:
    """Format the report's messages, one per line, for assertion messages."""
    messages = report.get("issues", {}).get("messages", [])
    lines = [
        f"severity {m.get('severity')} {m.get('code')}: {m.get('message')} at {m.get('pointer')}"
        for m in messages
    ]
    return "\n".join(lines) or "no messages"


def assert_khronos_valid(path: str | Path) -> dict[str, Any]:
    """Require a GLB that our own checks and the Khronos validator accept without remarks.

    Every message except the information that an image is not power-of-two sized fails.
    Returns the validator's report.
    """
    from helpers.glb import ALLOWED_INFOS, check_glb

    check_glb(path)
    report = validate_glb(path)
    issues = report["issues"]
    assert issues["numErrors"] == 0, issue_summary(report)
    assert issues["numWarnings"] == 0, issue_summary(report)
    assert {m["code"] for m in issues["messages"]} <= ALLOWED_INFOS, issue_summary(report)
    return report
