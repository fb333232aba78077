"""Running the real command line in a subprocess, for tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m depth2mesh ARGS`` in a real subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "depth2mesh", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
