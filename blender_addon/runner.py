# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the depth2mesh command line in a subprocess, without a shell and without ``bpy``.

The add-on never imports depth2mesh (nor torch or numpy): it runs the ``depth2mesh``
executable of the user's own installation, reads its output, and imports the files it wrote.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

MESH_KINDS = ("grid", "poisson", "both")

MODELS = (
    (
        "midas-small",
        "MiDaS v2.1 small",
        "fastest; relative depth, scaled by Near and Far",
        "disparity",
    ),
    (
        "dav2-small",
        "Depth Anything V2 Small",
        "sharper, more accurate relative depth; several times slower",
        "disparity",
    ),
    (
        "dav2-metric-indoor",
        "Depth Anything V2 Metric Indoor Small (Hypersim)",
        "depth in metres for rooms, up to 20 m; no Near/Far",
        "metric",
    ),
    (
        "dav2-metric-outdoor",
        "Depth Anything V2 Metric Outdoor Small (Virtual KITTI 2)",
        "depth in metres for streets and landscapes, up to 80 m; no Near/Far",
        "metric",
    ),
    (
        "moge2-small",
        "MoGe-2 ViT-S (normal)",
        "camera (field of view), metric points, sky mask and normals from the photo alone; "
        "Python API only for now",
        "points",
    ),
)
"""depth2mesh's models: (``--model`` name, title, one-line summary, output kind).

A copy of ``depth2mesh.depth.registry.MODELS`` (the add-on never imports depth2mesh); a test keeps
the two equal."""

METRIC_MODELS = tuple(name for name, _, _, output in MODELS if output == "metric")
"""Models that give metres themselves: ``--near``/``--far`` are not passed with them."""

SCALE_OPTIONS = ("--depth-at",)
"""Options of ``extra_args`` that set the depth scale themselves (no ``--near``/``--far``)."""


class ConvertError(Exception):
    """The conversion could not start or failed (message: one line)."""


@dataclass(frozen=True)
class ConvertSettings:
    """Options for ``depth2mesh convert``, as the add-on preferences hold them.

    Attributes:
        executable: Path or name of the ``depth2mesh`` executable ("" finds it on PATH).
        weights: MiDaS small checkpoint (.pt) for ``--weights``, passed only with the
            ``midas-small`` model; "" lets depth2mesh find it. The other models' checkpoints
            are found by depth2mesh (their variable, e.g. ``DEPTH2MESH_WEIGHTS_DAV2_SMALL``,
            or the torch.hub cache), or given as ``--weights`` in ``extra_args``.
        model: The depth model, a ``--model`` name of :data:`MODELS`.
        mesh: ``grid``, ``poisson`` or ``both``.
        near: Depth of the nearest content, metres (relative models without ``--depth-at``).
        far: Depth of the farthest content, metres (likewise).
        fov: Horizontal field of view, degrees; 0 lets depth2mesh decide (EXIF, else 60).
        extra_args: More options, split like a POSIX shell would (never run by one).
        overwrite: Replace an earlier result of the same photo in the output folder.
    """

    executable: str = ""
    weights: str = ""
    model: str = "midas-small"
    mesh: str = "grid"
    near: float = 1.0
    far: float = 10.0
    fov: float = 0.0
    extra_args: str = ""
    overwrite: bool = True


def resolve_executable(executable: str) -> str:
    """Return the full path of the depth2mesh executable.

    Raises:
        ConvertError: It cannot be found or is not executable.
    """
    wanted = executable.strip() or "depth2mesh"
    has_folder = os.sep in wanted or (os.altsep is not None and os.altsep in wanted)
    if has_folder:
        path = os.path.abspath(os.path.expanduser(wanted))
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise ConvertError(
            f"the depth2mesh executable {path} does not exist or cannot be run; "
            "set its path in the add-on preferences"
        )
    found = shutil.which(wanted)
    if found is None:
        raise ConvertError(
            f"'{wanted}' was not found on PATH; set the path of the depth2mesh executable "
            "in the add-on preferences (e.g. /path/to/venv/bin/depth2mesh)"
        )
    return found


def sets_scale(extra: list[str]) -> bool:
    """Whether split extra arguments set the depth scale themselves (``--depth-at``)."""
    return any(arg == name or arg.startswith(name + "=") for arg in extra for name in SCALE_OPTIONS)


def build_command(settings: ConvertSettings, photo: str, out_dir: str) -> list[str]:
    """Build the argument list of ``depth2mesh convert`` (no shell ever parses it).

    ``--near``/``--far`` are passed for relative models only, and not when ``extra_args``
    holds ``--depth-at`` (either would be a usage error of the CLI); ``--weights`` only with
    ``midas-small``.

    Raises:
        ConvertError: An option is out of range, or ``extra_args`` cannot be split.
    """
    if settings.mesh not in MESH_KINDS:
        raise ConvertError(
            f"mesh kind must be one of {', '.join(MESH_KINDS)}, got {settings.mesh!r}"
        )
    names = [name for name, *_ in MODELS]
    if settings.model not in names:
        raise ConvertError(f"model must be one of {', '.join(names)}, got {settings.model!r}")
    if settings.fov < 0 or settings.fov >= 180:
        raise ConvertError(
            f"fov must be in (0, 180) degrees or 0 for automatic, got {settings.fov}"
        )
    try:
        extra = shlex.split(settings.extra_args)
    except ValueError as error:
        raise ConvertError(f"cannot split the extra arguments: {error}") from None
    scaled = settings.model not in METRIC_MODELS and not sets_scale(extra)
    if scaled and not 0 < settings.near < settings.far:
        raise ConvertError(
            f"near and far must satisfy 0 < near < far, got near={settings.near} far={settings.far}"
        )
    command = [
        resolve_executable(settings.executable),
        "convert",
        photo,
        "--out",
        out_dir,
        "--model",
        settings.model,
        "--mesh",
        settings.mesh,
    ]
    if scaled:
        command += ["--near", repr(float(settings.near)), "--far", repr(float(settings.far))]
    if settings.fov > 0:
        command += ["--fov", repr(float(settings.fov))]
    if settings.weights.strip() and settings.model == "midas-small":
        command += ["--weights", os.path.abspath(os.path.expanduser(settings.weights.strip()))]
    if settings.overwrite:
        command.append("--overwrite")
    return command + extra


def child_environment() -> dict[str, str]:
    """The environment for the child: Blender's own Python settings removed, UTF-8 output."""
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
        env.pop(name, None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    return env


class ConvertJob:
    """One running ``depth2mesh convert``: started at once, polled, read line by line.

    Output (stdout and stderr together) is read on a daemon thread, so polling never blocks.
    """

    def __init__(self, command: list[str], *, keep_lines: int = 200) -> None:
        self.command = command
        self.started = time.monotonic()
        self.lines: deque[str] = deque(maxlen=keep_lines)
        creationflags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=child_environment(),
                creationflags=creationflags,
            )
        except OSError as error:
            raise ConvertError(f"cannot start {command[0]}: {error.strerror or error}") from None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        if stream is None:
            return
        for line in stream:
            # Progress bars redraw with carriage returns: keep the latest state of the line.
            text = line.rstrip("\r\n").rsplit("\r", 1)[-1].strip()
            if text:
                self.lines.append(text)
        stream.close()

    @property
    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.monotonic() - self.started

    @property
    def last_line(self) -> str:
        """The latest output line with words in it ("" before any); table borders are skipped."""
        for line in reversed(self.lines):
            if any(character.isalnum() for character in line):
                return line.strip("\u2502\u2503 ")  # table borders
        return ""

    def poll(self) -> int | None:
        """Return the exit code once the process has ended and its output is read, else None."""
        code = self.process.poll()
        if code is None:
            return None
        self._reader.join(timeout=5)
        return code

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process ends; return its exit code.

        Raises:
            ConvertError: It ran past ``timeout`` seconds (it is stopped).
        """
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise ConvertError(
                f"depth2mesh ran longer than {timeout:.0f} s and was stopped"
            ) from None
        self._reader.join(timeout=5)
        return self.process.returncode

    def cancel(self) -> None:
        """Stop the process (terminate, then kill after two seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)

    def failure(self, code: int) -> str:
        """One line saying why the run failed: the CLI's own ``error:`` line when it gave one."""
        for line in reversed(self.lines):
            if line.lower().startswith("error"):
                return line
        if self.lines:
            return f"exit code {code}: {self.lines[-1]}"
        return f"exit code {code} and no output"


def expected_files(out_dir: str, photo: str, mesh: str) -> dict[str, str]:
    """The result files ``depth2mesh convert`` writes for ``photo`` into ``out_dir``.

    Returns:
        Paths by role: ``grid``, ``points``, ``sidecar``, and ``poisson`` when ``mesh`` asks
        for it.
    """
    stem = os.path.splitext(os.path.basename(photo))[0]
    files = {
        "grid": os.path.join(out_dir, stem + ".glb"),
        "points": os.path.join(out_dir, stem + "_points.ply"),
        "sidecar": os.path.join(out_dir, stem + ".json"),
    }
    if mesh in ("poisson", "both"):
        files["poisson"] = os.path.join(out_dir, stem + "_poisson.glb")
    return files
