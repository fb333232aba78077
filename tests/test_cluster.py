"""The Ray path: a real two-host cluster (network namespaces), a local Ray, and the local path.

Ray never sees this machine's own network address: the two-host cluster lives in two network
namespaces joined by a veth pair (10.77.0.1 and 10.77.0.2, nothing else), and the local Ray
binds to 127.0.0.1 only. Without Ray, ``ip`` or root these tests skip, and fail under ``CI``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import trimesh

from depth2mesh.depth.model import DepthModel
from depth2mesh.errors import UnofficialWeightsWarning
from depth2mesh.pipeline.batch import Outcome, WorkItem, convert_many, find_photos
from depth2mesh.pipeline.convert import ConvertOptions, is_converted, output_paths

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DRIVER = Path(__file__).resolve().parent / "cluster_driver.py"
RAY = Path(sys.executable).with_name("ray")
HEAD_IP, WORKER_IP = "10.77.0.1", "10.77.0.2"
GCS_PORT = 6379
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # find a dead node in about 3 s instead of about 30 (Ray's GCS settings)
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),  # Ray's own, internal
]


def _require(ok: bool, message: str) -> None:
    """Skip without what the test needs; under CI, fail instead."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _require_ray() -> None:
    _require(
        importlib.util.find_spec("ray") is not None and RAY.exists(),
        "Ray is not installed: pip install -e '.[ray]'",
    )


def make_photos(folder: Path, count: int, *, size: tuple[int, int] = (320, 240)) -> list[Path]:
    """Write ``count`` different JPEGs of ``size`` and one broken file; return all of them."""
    folder.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(str(SAMPLES / "coffee.png"))
    assert image is not None
    paths = []
    for index in range(count):
        shifted = np.roll(image, index * 29, axis=1)
        path = folder / f"photo_{index:02d}.jpg"
        cv2.imwrite(str(path), cv2.resize(shifted, size, interpolation=cv2.INTER_AREA))
        paths.append(path)
    broken = folder / "broken.jpg"
    broken.write_bytes(b"this is not a photo")
    return [*paths, broken]


def assert_complete(photo: Path, out_dir: Path, options: ConvertOptions) -> None:
    """Every file of the photo's result exists and is whole: GLB length, PLY loads, sidecar."""
    assert is_converted(photo, out_dir, options), photo
    paths = output_paths(out_dir, photo.stem, options.mesh)
    data = paths["glb"].read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data)), paths["glb"]
    sidecar = json.loads(paths["sidecar"].read_text())
    cloud = trimesh.load(paths["points"])
    assert len(cloud.vertices) == sidecar["counts"]["points"] > 0


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes (``.NAME.XXXXXXXX.tmp``) under ``folder``."""
    return sorted(str(path) for path in folder.rglob(".*.tmp"))


def same_files(ours: Path, reference: Path, stem: str) -> None:
    """The result's geometry and pictures are byte for byte the reference's (sidecars differ
    in their timings)."""
    for name in (f"{stem}_points.ply", f"{stem}.glb", f"{stem}_depth.png"):
        assert (ours / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference_model(parity_weights: Path) -> DepthModel:
    """The model as a Ray worker loads it (keywords only), for the local reference runs."""
    from depth2mesh.depth.model import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        return load_model(weights=parity_weights, device="cpu")


# --------------------------------------------------------------------------- the local path


def test_local_path_never_imports_ray(tmp_path: Path, parity_weights: Path) -> None:
    photo = make_photos(tmp_path / "photos", 1)[0]
    script = f"""
import json, sys
import depth2mesh.pipeline.cluster  # importing the Ray path alone does not import Ray either
from depth2mesh.apps.cli import app
try:
    app(["convert", {str(photo)!r}, "-o", {str(tmp_path / "out")!r},
         "--weights", {str(parity_weights)!r}, "--device", "cpu"])
except SystemExit as done:
    code = done.code
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "ray")
print(json.dumps({{"exit": code, "ray": loaded}}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {"exit": 0, "ray": []}
    assert is_converted(photo, tmp_path / "out", ConvertOptions())


def test_batch_progress_counts_rate_and_eta() -> None:
    from depth2mesh.pipeline.batch import BatchProgress

    progress = BatchProgress(10, started=100.0)
    item = WorkItem(Path("a.jpg"))
    assert progress.describe(now=100.0) == "0/10 photos, 0 failed, 0.0 photos/min, ETA --"
    for _ in range(3):
        progress.update(Outcome(item, "converted"))
    progress.update(Outcome(item, "failed", "bad"))
    assert progress.per_minute(now=112.0) == pytest.approx(15.0)  # 3 in 12 s
    assert progress.eta_seconds(now=112.0) == pytest.approx(24.0)  # 6 left at 15/min
    assert progress.describe(now=112.0) == "4/10 photos, 1 failed, 15.0 photos/min, ETA 24 s"


def test_arguments_are_checked_before_ray_is_needed(tmp_path: Path) -> None:
    from depth2mesh.pipeline.cluster import convert_on_ray

    items = [WorkItem(tmp_path / "a.jpg")]
    with pytest.raises(ValueError, match="object-store URLs are not supported"):
        convert_on_ray(items, "s3://bucket/out", ray_address=None, options=ConvertOptions())
    with pytest.raises(ValueError, match="contradict"):
        convert_on_ray(
            items,
            tmp_path,
            ray_address=None,
            options=ConvertOptions(overwrite=True),
            skip_existing=True,
        )
    with pytest.raises(ValueError, match="far must be greater than near"):
        convert_on_ray(items, tmp_path, ray_address=None, options=ConvertOptions(near=5, far=2))


def test_errors_wrapped_by_ray_come_out_as_one_line() -> None:
    from depth2mesh.errors import WeightsError
    from depth2mesh.pipeline.cluster import _innermost

    class WrapperError(Exception):  # as Ray's ActorDiedError keeps the task error in ``cause``
        def __init__(self, message: str, cause: BaseException | None = None) -> None:
            super().__init__(message)
            self.cause = cause

    ours = WeightsError("weights file /x.pt does not exist: check the path")
    wrapped = WrapperError("the actor died")
    wrapped.__cause__ = WrapperError("task failed", WrapperError("init", ours))
    assert _innermost(wrapped) == str(ours)
    embedded = RuntimeError("Failed:\nTraceback (most recent call last):\n  File x\nBadError: why")
    connection = ConnectionError("cannot connect")
    assert _innermost(connection) == "cannot connect"
    connection.__cause__ = embedded
    assert _innermost(connection) == "BadError: why"


# --------------------------------------------------------------------------- a local Ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """Ray on this machine, bound to 127.0.0.1 only, with token authentication."""
    _require_ray()
    saved = {name: os.environ.get(name) for name in (*RAY_ENV, "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    # Linux Ray replaces 127.0.0.1 by the machine's address unless it runs as on a laptop
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.update(RAY_ENV, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    import ray
    from ray._private import ray_constants

    cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # the same, should Ray have been imported already
    temp_dir = tempfile.mkdtemp(prefix="d2m-ray-")
    try:
        ray.init(
            address="local",  # a new instance, never one that `ray start` left on this machine
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=2,
            object_store_memory=100 * 2**20,
            _temp_dir=temp_dir,
            log_to_driver=False,
        )
        assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
        yield ray
    finally:
        ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = cluster_flag
        os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_local_ray_gives_the_local_batch_outcomes_and_resumes(
    local_ray: Any, tmp_path: Path, parity_weights: Path, reference_model: DepthModel
) -> None:
    from depth2mesh.pipeline.cluster import convert_on_ray

    photos = make_photos(tmp_path / "photos", 4)
    items = find_photos([tmp_path / "photos"])
    options = ConvertOptions()
    events: list[tuple[str, Path]] = []

    def on_start(item: WorkItem) -> None:
        events.append(("start", item.photo))

    def on_done(outcome: Outcome) -> None:
        events.append(("done", outcome.item.photo))

    def run_ray(**arguments: Any) -> list[Outcome]:
        return convert_on_ray(
            items,
            tmp_path / "ray",
            ray_address=None,  # the connection made by the fixture
            options=options,
            weights=parity_weights,
            on_start=on_start,
            on_done=on_done,
            **arguments,
        )

    def run_local(**arguments: Any) -> list[Outcome]:
        return convert_many(
            items, tmp_path / "local", model=reference_model, options=options, **arguments
        )

    def summary(outcomes: list[Outcome], out_dir: Path) -> list[tuple[str, str, list[str]]]:
        return [
            (o.status, o.reason.replace(str(out_dir), "OUT"), [f.name for f in o.files])
            for o in outcomes
        ]

    # a first run: the same outcomes (reasons, files) and the same bytes as the local batch
    outcomes = run_ray()
    assert [o.item for o in outcomes] == items  # in the items' order, the very same items
    assert summary(outcomes, tmp_path / "ray") == summary(run_local(), tmp_path / "local")
    assert [o.status for o in outcomes].count("failed") == 1
    assert "broken.jpg" in next(o.reason for o in outcomes if o.status == "failed")
    assert sorted(events) == sorted(
        [("start", i.photo) for i in items] + [("done", i.photo) for i in items]
    )
    assert all(events.index(("start", p)) < events.index(("done", p)) for p in photos)
    for photo in photos[:-1]:
        assert_complete(photo, tmp_path / "ray", options)
        same_files(tmp_path / "ray", tmp_path / "local", photo.stem)

    # again, without --skip-existing: "exists already", as the local batch says it
    assert summary(run_ray(), tmp_path / "ray") == summary(run_local(), tmp_path / "local")

    # an interrupted run: one result half written, with a killed write's temporary file
    damaged = output_paths(tmp_path / "ray", photos[1].stem)
    damaged["sidecar"].unlink()
    damaged["glb"].write_bytes(b"glTF truncated")
    stale = tmp_path / "ray" / f".{damaged['glb'].name}.k1ll3d_x.tmp"
    stale.write_bytes(b"half a file")
    resumed = run_ray(skip_existing=True)
    assert [o.status for o in resumed] == ["failed", "skipped", "converted", "skipped", "skipped"]
    assert resumed[2].item.photo == photos[1]
    assert_complete(photos[1], tmp_path / "ray", options)
    same_files(tmp_path / "ray", tmp_path / "local", photos[1].stem)
    assert leftovers(tmp_path) == []


def test_pins_cross_to_the_workers(
    local_ray: Any, tmp_path: Path, parity_weights: Path, reference_model: DepthModel
) -> None:
    """``depth_at`` travels in the options: the workers' files are the local ones."""
    from depth2mesh.geometry.scale import DepthPin
    from depth2mesh.pipeline.cluster import convert_on_ray

    photo = make_photos(tmp_path / "photos", 1)[0]
    items = find_photos([photo])
    options = ConvertOptions(depth_at=(DepthPin(100.5, 80.0, 3.25),))
    outcomes = convert_on_ray(
        items, tmp_path / "ray", ray_address=None, options=options, weights=parity_weights
    )
    assert [o.status for o in outcomes] == ["converted"], [o.reason for o in outcomes]
    convert_many(items, tmp_path / "local", model=reference_model, options=options)
    same_files(tmp_path / "ray", tmp_path / "local", photo.stem)
    sidecar = json.loads(output_paths(tmp_path / "ray", photo.stem)["sidecar"].read_text())
    pin = sidecar["depth"]["depth_at"]["pins"][0]
    assert (pin["u"], pin["v"], pin["metres"]) == (100.5, 80.0, 3.25)


def _on_ray_and_locally(
    items: list[WorkItem],
    tmp_path: Path,
    weights: Path,
    model_options: dict[str, Any],
    options: ConvertOptions,
) -> None:
    """Convert on the local Ray's workers into ``tmp_path / "ray"`` and, with the model as a
    worker loads it (one thread, as each worker runs: eager torch sums in the same order),
    locally into ``tmp_path / "local"``."""
    from depth2mesh.depth.model import load_model
    from depth2mesh.pipeline.cluster import convert_on_ray

    outcomes = convert_on_ray(
        items,
        tmp_path / "ray",
        ray_address=None,
        options=options,
        weights=weights,
        model_options=model_options,
    )
    assert [o.status for o in outcomes] == ["converted"], [o.reason for o in outcomes]
    import torch

    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # test weights
            local = load_model(weights=weights, device="cpu", threads=1, **model_options)
        convert_many(items, tmp_path / "local", model=local, options=options)
    finally:
        torch.set_num_threads(threads)


def test_the_chosen_model_and_input_size_reach_the_workers(
    local_ray: Any, tmp_path: Path, upcast_weights: dict[str, Path]
) -> None:
    """``--model``/``--input-size`` travel in the workers' load options (as the CLI passes
    them): their sidecars name the model and its size, and their files are a local run's."""
    weights = upcast_weights["metric_hypersim"]
    model_options = {"backend": "torch", "model": "dav2-metric-indoor", "input_size": 392}
    photo = make_photos(tmp_path / "photos", 1)[0]
    items = find_photos([photo])
    options = ConvertOptions(grid=96, drop_far=True)
    _on_ray_and_locally(items, tmp_path, weights, model_options, options)
    same_files(tmp_path / "ray", tmp_path / "local", photo.stem)
    sidecar = json.loads(output_paths(tmp_path / "ray", photo.stem)["sidecar"].read_text())
    assert sidecar["model"]["model"] == "dav2-metric-indoor"
    assert sidecar["model"]["input_size"] == 392
    assert sidecar["model"]["backend"] == "torch"
    assert sidecar["depth"]["kind"] == "metric"
    assert sidecar["depth"]["max_depth_m"] == 20.0


def test_moge2_converts_on_the_workers_as_locally(
    local_ray: Any, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    """``--model moge2-small`` on the workers: its camera estimate, metres and normals, and
    files byte for byte a local run's."""
    from helpers.moge2 import pinhole_checkpoint

    weights = pinhole_checkpoint(tmp_path / "model.pt")
    model_options = {"backend": "torch", "model": "moge2-small", "input_size": None}
    photo = make_photos(tmp_path / "photos", 1)[0]
    items = find_photos([photo])
    options = ConvertOptions(grid=96, mesh="both")
    _on_ray_and_locally(items, tmp_path, weights, model_options, options)
    same_files(tmp_path / "ray", tmp_path / "local", photo.stem)
    ray_sidecar = json.loads(output_paths(tmp_path / "ray", photo.stem)["sidecar"].read_text())
    local_sidecar = json.loads(output_paths(tmp_path / "local", photo.stem)["sidecar"].read_text())
    assert ray_sidecar["intrinsics"]["source"] == "estimated by moge2-small"
    assert ray_sidecar["intrinsics"] == local_sidecar["intrinsics"]
    assert ray_sidecar["model"]["model"] == "moge2-small"
    assert ray_sidecar["normals"] == local_sidecar["normals"]
    assert ray_sidecar["normals"]["source"] == "moge2-small"
    # the Poisson surface from the same oriented points: Open3D's reconstruction is not bit
    # for bit the same with the worker's one thread (OMP_NUM_THREADS) and the test's own
    counts = [sidecar["counts"]["poisson_faces"] for sidecar in (ray_sidecar, local_sidecar)]
    assert counts[0] == pytest.approx(counts[1], rel=0.02)


def test_a_worker_loads_the_camera_model_once_beside_the_depth_model(
    tmp_path: Path,
    parity_weights: Path,
    isolated_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--camera moge2-small`` with ``--ray``: the options travel as they are, and each
    worker loads the camera model when it starts (its weights found as its own: here its
    variable), on the depth model's backend; none beside moge2-small itself."""
    import torch
    from helpers.moge2 import pinhole_checkpoint

    from depth2mesh.pipeline.cluster import PhotoConverter, _Settings

    camera_weights = pinhole_checkpoint(tmp_path / "model.pt")
    monkeypatch.setenv("DEPTH2MESH_WEIGHTS_MOGE2_SMALL", str(camera_weights))
    monkeypatch.chdir(tmp_path)  # a worker enters the run's folder: back to ours afterwards

    def worker(weights: Path, model_options: dict[str, Any]) -> PhotoConverter:
        settings = _Settings(
            out_dir=str(tmp_path / "out"),
            options=ConvertOptions(camera_model="moge2-small"),
            cwd=str(tmp_path),
            weights=str(weights),
            device="cpu",
            threads=1,
            model_options=model_options,
            attempts_per_photo=2,
        )
        threads = torch.get_num_threads()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnofficialWeightsWarning)  # test weights
                return PhotoConverter(settings=settings, attempts=None)
        finally:
            torch.set_num_threads(threads)

    midas = worker(parity_weights, {"backend": "torch"})
    assert midas.camera_model is not None
    assert (midas.camera_model.spec.name, midas.camera_model.input_size) == ("moge2-small", 1200)
    assert midas.camera_model.backend == "torch"
    assert midas.camera_model.weights_path == camera_weights
    moge = worker(camera_weights, {"backend": "torch", "model": "moge2-small"})
    assert moge.camera_model is None  # the depth model estimates the camera itself


def test_a_retried_photo_is_idempotent(
    local_ray: Any, tmp_path: Path, parity_weights: Path
) -> None:
    """What a restarted worker sees: its photo complete, half done, or deadly."""
    from depth2mesh.pipeline import cluster

    photo = make_photos(tmp_path / "photos", 1)[0]
    settings = cluster._Settings(
        out_dir=str(tmp_path / "out"),
        options=ConvertOptions(),
        cwd=os.getcwd(),
        weights=str(parity_weights),
        device="cpu",
        threads=1,
        model_options={},
        attempts_per_photo=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        worker = cluster.PhotoConverter(settings=settings, attempts=cluster._attempt_log(local_ray))

    def attempt() -> dict[str, Any]:
        batch = {
            "index": np.array([7]),
            "photo": np.array([str(photo)], dtype=object),
            "out_subdir": np.array(["."], dtype=object),
            "mode": np.array(["fresh"], dtype=object),
        }
        result = worker(batch)
        assert list(result["index"]) == [7]
        payload: dict[str, Any] = json.loads(result["result"][0])
        return payload

    first = attempt()
    assert (first["status"], first["attempt"], first["node_ip"]) == ("converted", 1, "127.0.0.1")
    glb = output_paths(settings.out_dir, photo.stem)["glb"]
    written = glb.stat().st_mtime_ns
    # the worker died after writing everything, before reporting: the retry reports it done
    again = attempt()
    assert (again["status"], again["attempt"]) == ("converted", 0)
    assert sorted(again["files"]) == sorted(first["files"])
    assert glb.stat().st_mtime_ns == written  # not converted twice
    # the worker died half way (no sidecar yet): the retry converts it again, over the rest
    output_paths(settings.out_dir, photo.stem)["sidecar"].unlink()
    third = attempt()
    assert (third["status"], third["attempt"]) == ("converted", 2)
    assert_complete(photo, Path(settings.out_dir), settings.options)
    # a photo that killed attempts_per_photo workers is not tried again
    output_paths(settings.out_dir, photo.stem)["sidecar"].unlink()
    last = attempt()
    assert last["status"] == "failed"
    assert last["reason"].startswith("2 workers died converting it")


# --------------------------------------------------------------------------- two hosts


@dataclass
class TwoHosts:
    """A Ray cluster of two hosts: network namespaces joined by a veth pair."""

    head: str  # the namespace of 10.77.0.1
    worker: str  # the namespace of 10.77.0.2
    env: dict[str, str]  # RAY_AUTH_MODE=token, the token, quiet settings
    temp_dirs: list[str]

    def run(self, namespace: str, *command: str | Path, timeout: float) -> None:
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, *map(str, command)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{command[1:3]} failed:\n{done.stderr[-3000:]}"


def _ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True, text=True)


def netns_pids(namespace: str) -> list[int]:
    listed = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in listed.stdout.split()]


def kill_namespace(namespace: str, *, grace_s: float) -> None:
    """End every process of a namespace, by id: SIGTERM, then SIGKILL after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    sent = signal.SIGTERM if grace_s > 0 else signal.SIGKILL
    while pids := netns_pids(namespace):
        if time.monotonic() > deadline:
            sent = signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sent)
        time.sleep(0.2)


@pytest.fixture
def two_hosts() -> Iterator[TwoHosts]:
    """Two Ray nodes on 10.77.0.1 (head) and 10.77.0.2, token authentication; torn down after."""
    _require_ray()
    _require(shutil.which("ip") is not None, "`ip` (iproute2) is not installed")
    _require(os.geteuid() == 0, "network namespaces need root")
    tag = f"d2m{os.getpid()}"
    hosts = TwoHosts(
        head=f"{tag}h1",
        worker=f"{tag}h2",
        env={**os.environ, **RAY_ENV, "RAY_AUTH_MODE": "token"},
        temp_dirs=[tempfile.mkdtemp(prefix="d2m-h1-"), tempfile.mkdtemp(prefix="d2m-h2-")],
    )
    hosts.env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    for name in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        hosts.env.pop(name, None)
    made: list[str] = []
    try:
        for namespace, ip, link in (
            (hosts.head, HEAD_IP, f"{tag}a"),
            (hosts.worker, WORKER_IP, f"{tag}b"),
        ):
            _ip("netns", "add", namespace)
            made.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            if link.endswith("a"):
                _ip("link", "add", link, "type", "veth", "peer", "name", f"{tag}b")
            _ip("link", "set", link, "netns", namespace)
            _ip("-n", namespace, "addr", "add", f"{ip}/24", "dev", link)
            _ip("-n", namespace, "link", "set", link, "up")
        common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20)]
        hosts.run(
            hosts.head,
            RAY,
            "start",
            "--head",
            "--node-ip-address",
            HEAD_IP,
            "--port",
            str(GCS_PORT),
            "--include-dashboard",
            "false",
            "--dashboard-host",
            HEAD_IP,
            "--disable-usage-stats",
            "--temp-dir",
            hosts.temp_dirs[0],
            *common,
            timeout=120,
        )
        hosts.run(
            hosts.worker,
            RAY,
            "start",
            "--address",
            f"{HEAD_IP}:{GCS_PORT}",
            "--node-ip-address",
            WORKER_IP,
            "--temp-dir",
            hosts.temp_dirs[1],
            *common,
            timeout=120,
        )
        yield hosts
    finally:
        # `ray stop` ends Ray processes by name on the whole machine: end ours by id instead
        for namespace in made:
            kill_namespace(namespace, grace_s=5.0)
        for namespace in made:
            assert netns_pids(namespace) == [], f"processes left in {namespace}"
            _ip("netns", "delete", namespace)
        for folder in hosts.temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert tag not in listed.stdout
        assert not any(
            folder in _cmdline(pid) for pid in _all_pids() for folder in hosts.temp_dirs
        ), "Ray processes of the test cluster are still running"


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def test_two_host_cluster_survives_losing_its_worker_node(
    two_hosts: TwoHosts, tmp_path: Path, parity_weights: Path, reference_model: DepthModel
) -> None:
    photos = make_photos(tmp_path / "photos", 30)
    out_dir, log = tmp_path / "out", tmp_path / "workers.jsonl"
    stdout, stderr = (tmp_path / "driver.out").open("w"), (tmp_path / "driver.err").open("w")
    command: list[str | Path] = ["ip", "netns", "exec", two_hosts.head, sys.executable, DRIVER]
    command += photos
    command += ["-o", out_dir, "--ray", f"{HEAD_IP}:{GCS_PORT}", "--weights", parity_weights]
    command += ["--node-ip-address", HEAD_IP, "--expect-nodes", "2", "--worker-log", log]
    driver = subprocess.Popen(
        command,
        env=two_hosts.env,
        stdout=stdout,
        stderr=stderr,
        cwd=REPO,
    )
    try:
        # the worker host is lost once results are written and both hosts have made some
        deadline = time.monotonic() + 240
        while {entry["node_ip"] for entry in read_log(log)} != {HEAD_IP, WORKER_IP}:
            assert driver.poll() is None, (tmp_path / "driver.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the two hosts did not both convert photos"
            time.sleep(0.05)
        assert any(is_converted(p, out_dir, ConvertOptions()) for p in photos[:-1])
        killed_at = time.time()
        kill_namespace(two_hosts.worker, grace_s=0)
        code = driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        stdout.close()
        stderr.close()
    out, err = (tmp_path / "driver.out").read_text(), (tmp_path / "driver.err").read_text()
    assert code == 1, err[-3000:]

    # the broken file is named in one line, the summary is the CLI's
    broken = str(photos[-1])
    named = [line for line in err.splitlines() if broken in line]
    assert len(named) == 1, err[-3000:]
    assert named[0].startswith(f"error: {broken}")
    assert named[0].count(broken) == 1  # the path once
    assert "30 converted, 0 skipped, 1 failed" in out

    # every photo converted, complete, once; nothing half written left behind
    entries = read_log(log)
    assert sorted(e["photo"] for e in entries if e["status"] == "converted") == sorted(
        map(str, photos[:-1])
    )
    for photo in photos[:-1]:
        assert_complete(photo, out_dir, ConvertOptions())
    assert leftovers(out_dir) == []

    # work on both hosts before the loss, on the head only after it
    before = {e["node_ip"] for e in entries if e["finished_at"] < killed_at}
    assert before == {HEAD_IP, WORKER_IP}
    assert all(e["node_ip"] == HEAD_IP for e in entries if e["finished_at"] > killed_at + 1)
    assert any(e["finished_at"] > killed_at for e in entries)

    # the same geometry as a local batch of the same photos
    local = convert_many(
        find_photos(photos[:-1]),
        tmp_path / "local",
        model=reference_model,
        options=ConvertOptions(),
    )
    assert {o.status for o in local} == {"converted"}
    for photo in photos[:-1]:
        same_files(out_dir, tmp_path / "local", photo.stem)
