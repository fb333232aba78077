"""Headless Chromium through a node driver (playwright-core): what the browser tests share.

The drivers (``tests/web_browser.mjs``, ``tests/three_loader.mjs``) take one JSON job as their
argument and print one JSON report whose ``offHost`` lists every request that tried to leave
this computer (aborted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("DEPTH2MESH_CHROMIUM", "/usr/bin/chromium"))
PLAYWRIGHT = REPO / "node_modules" / "playwright-core" / "package.json"


def missing(message: str) -> None:
    """Fail under CI (``CI`` set), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_browser(*packages: Path) -> None:
    """Fail or skip (:func:`missing`) unless node, Chromium, playwright-core and ``packages``
    (each a ``package.json`` under node_modules) are there."""
    if shutil.which("node") is None:
        missing("node is not on PATH (install Node.js 18+)")
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is missing: apt-get install chromium (or set DEPTH2MESH_CHROMIUM)")
    for needed in (PLAYWRIGHT, *packages):
        if not needed.is_file():
            missing(f"{needed.parent} is missing: run `npm ci` in {REPO}")


def run_driver(driver: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Run ``node driver job`` (Chromium added to the job) and return its report.

    Asserts that the driver succeeded and that nothing reached off this computer.
    """
    completed = subprocess.run(
        ["node", str(driver), json.dumps({"chromium": str(CHROMIUM), **job})],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert completed.returncode == 0, f"{driver.name} failed:\n{completed.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(completed.stdout)
    assert report["offHost"] == [], f"the page reached off this computer: {report['offHost']}"
    return report
