"""Depth backends: ONNX Runtime and OpenVINO equal the eager network, and the export cache."""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.parity import NAMES  # the eight parity fixtures

from depth2mesh.depth import backends
from depth2mesh.depth.backends import (
    AUTO_ORDER,
    cached_export,
    check_network_input,
    choose_backend,
    export_stem,
    find_export,
    physical_cores,
)
from depth2mesh.depth.model import DepthModel, load_model, predict_disparity, run_network
from depth2mesh.depth.networks import midas_small_torch as network
from depth2mesh.depth.weights import file_sha256
from depth2mesh.errors import DeviceError, InputError, WeightsError
from depth2mesh.exchange.photo import read_photo

EXPORTED = ["onnxruntime", "openvino"]


def require(backend: str) -> None:
    """Skip without the backend's package; fail instead under CI, where it must be installed."""
    if backends.backend_installed(backend):
        return
    message = f"backend {backend!r} needs the packages {backends.PACKAGES[backend]}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, which CI must install")
    pytest.skip(message)


def first_exported_backend() -> str:
    for backend in AUTO_ORDER:
        if backends.backend_installed(backend):
            return backend
    require(AUTO_ORDER[0])
    raise AssertionError("unreachable")


def quiet_load(weights: Path, **options: str) -> DepthModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(weights, **options)


def official(shared_dir: Path, name: str, kind: str) -> np.ndarray:
    return np.load(shared_dir / "midas" / "official_outputs" / f"{name}.{kind}.npy")


@pytest.fixture(scope="module")
def eager(parity_weights: Path) -> DepthModel:
    return quiet_load(parity_weights, device="cpu", backend="torch")


@pytest.fixture(scope="module", params=EXPORTED)
def exported(request: pytest.FixtureRequest, parity_weights: Path) -> DepthModel:
    backend: str = request.param
    require(backend)
    return quiet_load(parity_weights, device="cpu", backend=backend)


@pytest.fixture(scope="module")
def static_copy(eager: DepthModel) -> torch.nn.Module:
    """The eager network's exportable copy (static padding), made once for the module."""
    return network.exportable_network(eager.network)


@pytest.fixture(scope="module")
def eager_on_random() -> dict[tuple[int, int], np.ndarray]:
    """The eager network's output on ``random_input(size)``, computed once per size."""
    return {}


def random_input(size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((1, 3, *size), dtype=np.float32)


LARGE = pytest.param((384, 512), marks=pytest.mark.slow, id="384x512")  # over 2 s a call


@pytest.fixture
def counted_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every export that load_model makes."""
    calls: list[Path] = []
    real = network.export_onnx

    def counting(network: network.MidasSmall, destination: str | Path, **options: str) -> None:
        calls.append(Path(destination))
        real(network, destination, **options)

    monkeypatch.setattr(network, "export_onnx", counting)
    return calls


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder ($XDG_CACHE_HOME/depth2mesh) and a fresh process state."""
    monkeypatch.delenv("DEPTH2MESH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(backends, "_scratch", [])
    monkeypatch.setattr(backends, "_warned_unwritable", [])
    return tmp_path / "xdg" / "depth2mesh"


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("size", [(256, 256), (192, 256), (256, 32), LARGE])
def test_static_padding_copy_equals_the_network(
    eager: DepthModel, static_copy: torch.nn.Module, size: tuple[int, int]
) -> None:
    copy = static_copy
    assert not any(type(m).__name__ == "Conv2dSame" for m in copy.modules())
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 3, *size), np.float32))
    with torch.inference_mode():
        np.testing.assert_array_equal(copy(x).numpy(), eager.network(x).numpy())


def test_model_records_its_backend(exported: DepthModel, eager: DepthModel) -> None:
    assert exported.backend in EXPORTED
    assert exported.runner is not None
    assert exported.runner.backend == exported.backend
    assert exported.export_path is not None
    assert exported.export_path.is_file()
    assert exported.weights_sha256 in exported.export_path.name
    assert isinstance(exported.network, network.MidasSmall)
    assert not exported.network.training
    assert eager.backend == "torch"
    assert eager.runner is None
    assert eager.export_path is None


@pytest.mark.parametrize("name", NAMES)
def test_network_equals_eager_and_official(
    shared_dir: Path,
    exported: DepthModel,
    eager_outputs: Callable[[str], np.ndarray],
    name: str,
) -> None:
    network_input = official(shared_dir, name, "input")
    reference = official(shared_dir, name, "net")[0]
    eager_out = eager_outputs(name)[0]  # the eager network's, computed once a session
    ours = run_network(exported, network_input)
    assert ours.shape == eager_out.shape == reference.shape
    assert ours.dtype == np.float32
    assert np.abs(ours - eager_out).max() <= 1e-4 * np.ptp(eager_out)
    assert np.abs(ours - reference).max() <= 1e-4 * np.ptp(reference)


@pytest.mark.parametrize("name", NAMES)
def test_predict_disparity_equals_official(
    shared_dir: Path, exported: DepthModel, name: str
) -> None:
    photo = read_photo(shared_dir / "midas" / "images" / f"{name}.png")
    ours = predict_disparity(photo.rgb, exported)
    reference = official(shared_dir, name, "full")
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape == photo.rgb.shape[:2]
    assert np.abs(ours - reference).max() <= 1e-3 * np.ptp(reference)


@pytest.mark.parametrize("size", [(64, 96), LARGE])
def test_other_multiples_of_32_equal_eager(
    exported: DepthModel,
    eager: DepthModel,
    eager_on_random: dict[tuple[int, int], np.ndarray],
    size: tuple[int, int],
) -> None:
    x = random_input(size)
    ours = run_network(exported, x)
    if size not in eager_on_random:  # the same for both backends: computed once
        eager_on_random[size] = run_network(eager, x)
    reference = eager_on_random[size]
    assert ours.shape == size
    assert np.abs(ours - reference).max() <= 1e-4 * np.ptp(reference)


def test_concurrent_calls_give_the_same_result(exported: DepthModel, shared_dir: Path) -> None:
    x = official(shared_dir, "astronaut", "input")
    expected = run_network(exported, x)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(3):
            results.append(run_network(exported, x))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 9
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_exported_backends_refuse_sizes_that_are_not_multiples_of_32(
    exported: DepthModel,
) -> None:
    with pytest.raises(InputError, match="multiples of 32"):
        run_network(exported, np.zeros((1, 3, 100, 64), np.float32))


def test_auto_is_the_fastest_installed(parity_weights: Path) -> None:
    installed = [name for name in AUTO_ORDER if backends.backend_installed(name)]
    assert quiet_load(parity_weights).backend == (installed[0] if installed else "torch")
    if os.environ.get("CI"):
        assert quiet_load(parity_weights).backend == AUTO_ORDER[0]


# --------------------------------------------------------------------------- choosing


def test_unknown_backend_is_a_one_line_error(parity_weights: Path) -> None:
    with pytest.raises(DeviceError, match="unknown backend 'tensorrt'") as caught:
        load_model(parity_weights, backend="tensorrt")
    assert "\n" not in str(caught.value)
    assert "auto, torch, onnxruntime, openvino" in str(caught.value)


def test_choose_backend() -> None:
    installed = [name for name in AUTO_ORDER if backends.backend_installed(name)]
    assert choose_backend("auto", "cpu") == (installed[0] if installed else "torch")
    assert choose_backend(" Torch ", "cpu") == "torch"
    assert choose_backend("auto", "cuda") == "torch"
    assert choose_backend("auto", "mps") == "torch"
    for name in installed:
        assert choose_backend(name.upper(), "cpu") == name
    if "openvino" in installed:
        with pytest.raises(DeviceError, match="cannot run on device 'mps'"):
            choose_backend("openvino", "mps")


def test_missing_package_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "backend_installed", lambda name: name == "torch")
    with pytest.raises(DeviceError, match=r"pip install 'depth2mesh\[openvino\]'") as caught:
        choose_backend("openvino", "cpu")
    assert "\n" not in str(caught.value)
    assert choose_backend("auto", "cpu") == "torch"


def test_network_input_checks() -> None:
    good = np.zeros((1, 3, 64, 32), np.float64)[..., ::1]
    checked = check_network_input(good)
    assert checked.dtype == np.float32
    assert checked.flags.c_contiguous
    strided = np.zeros((1, 3, 64, 64), np.float32)[:, :, :, ::-1]
    assert check_network_input(strided).flags.c_contiguous
    for shape in [(3, 64, 64), (1, 1, 64, 64), (2, 3, 64, 64), (1, 3, 0, 64), (1, 3, 64, 48)]:
        with pytest.raises(InputError, match="multiples of 32"):
            check_network_input(np.zeros(shape, np.float32))


def test_physical_cores() -> None:
    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)


# --------------------------------------------------------------------------- the cache


@pytest.fixture
def weights_copy(parity_weights: Path, tmp_path: Path) -> Path:
    target = tmp_path / "weights" / "midas.pt"
    target.parent.mkdir()
    target.write_bytes(parity_weights.read_bytes())
    return target


def _exports(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.onnx"))


@pytest.mark.slow  # four ONNX exports: over 20 s
def test_export_cache_lifecycle(
    weights_copy: Path,
    private_cache: Path,
    counted_exports: list[Path],
    shared_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = first_exported_backend()
    folder = weights_copy.parent
    x = official(shared_dir, "astronaut", "input")

    # created once, in the cache folder, named by their sha256, no temporary files left;
    # nothing beside the weights
    first = quiet_load(weights_copy, backend=backend)
    assert len(counted_exports) == 1
    assert first.exported_now
    assert "export" in first.load_timings_s
    assert first.export_path is not None
    assert first.export_path.parent == private_cache
    assert first.export_path.name.startswith(export_stem(file_sha256(weights_copy)))
    assert _exports(private_cache) == [first.export_path]
    compiled = [backends.OPENVINO_CACHE] if backend == "openvino" else []
    assert sorted(p.name for p in private_cache.iterdir()) == sorted(
        [first.export_path.name, *compiled]
    )
    assert [p.name for p in folder.iterdir()] == ["midas.pt"]
    stamp = first.export_path.stat().st_mtime_ns

    # reused: no second export, the same file untouched, the checkpoint not even read
    reads: list[Path] = []
    real_read = network.read_checkpoint

    def counting_read(path: str | Path) -> dict[str, torch.Tensor]:
        reads.append(Path(path))
        return real_read(path)

    monkeypatch.setattr(network, "read_checkpoint", counting_read)
    second = quiet_load(weights_copy, backend=backend)
    assert len(counted_exports) == 1
    assert not second.exported_now
    assert "export" not in second.load_timings_s
    assert "network" not in second.load_timings_s
    assert second.export_path == first.export_path
    assert first.export_path.stat().st_mtime_ns == stamp
    assert reads == []
    assert second.eager_network is None
    np.testing.assert_array_equal(run_network(second, x), run_network(first, x))
    # the eager network is still there, read on first use, once
    assert second.network is second.network
    assert reads == [weights_copy]
    third = quiet_load(weights_copy, backend=backend)

    # damaged (same size, bytes flipped in the middle): replaced, with one warning
    data = bytearray(first.export_path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    first.export_path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repaired = load_model(weights_copy, backend=backend)
    assert len(counted_exports) == 2
    assert any("damaged" in str(item.message) for item in caught)
    assert repaired.export_path is not None
    assert repaired.exported_now
    assert _exports(private_cache) == [repaired.export_path]
    reference = run_network(quiet_load(weights_copy, backend="torch"), x)
    assert np.abs(run_network(repaired, x) - reference).max() <= 1e-4 * np.ptp(reference)

    # truncated to garbage: replaced too
    repaired.export_path.write_bytes(b"not an onnx file")
    again = quiet_load(weights_copy, backend=backend)
    assert len(counted_exports) == 3
    assert again.export_path is not None
    assert again.export_path.stat().st_size > 50_000_000

    # weights changed (one tensor altered): new sha256, new export, new numbers
    state = torch.load(weights_copy, map_location="cpu", weights_only=True)
    state["scratch.output_conv.4.bias"] = state["scratch.output_conv.4.bias"] + 0.5
    torch.save(state, weights_copy)
    with pytest.raises(WeightsError, match="changed since the model was loaded"):
        _ = third.network
    changed = quiet_load(weights_copy, backend=backend)
    assert len(counted_exports) == 4
    assert changed.weights_sha256 != first.weights_sha256
    assert changed.export_path is not None
    assert changed.weights_sha256 in changed.export_path.name
    assert len(_exports(private_cache)) == 2  # the other weights' export is kept
    new_reference = run_network(quiet_load(weights_copy, backend="torch"), x)
    assert np.abs(new_reference - reference).max() > 0.1
    ours = run_network(changed, x)
    assert np.abs(ours - new_reference).max() <= 1e-4 * np.ptp(new_reference)
    assert [p.name for p in folder.iterdir()] == ["midas.pt"]


@pytest.mark.slow  # an ONNX export: over 2 s
def test_read_only_weights_folder_uses_the_cache(
    weights_copy: Path, private_cache: Path, counted_exports: list[Path]
) -> None:
    backend = first_exported_backend()
    folder = weights_copy.parent
    folder.chmod(0o555)
    try:
        loaded = quiet_load(weights_copy, backend=backend)
        assert loaded.export_path is not None
        assert loaded.export_path.parent == private_cache
        assert len(counted_exports) == 1
        reloaded = quiet_load(weights_copy, backend=backend)
        assert reloaded.export_path == loaded.export_path
        assert len(counted_exports) == 1
        assert [p.name for p in folder.iterdir()] == ["midas.pt"]
    finally:
        folder.chmod(0o755)


@pytest.mark.slow  # an ONNX export: over 2 s
def test_unwritable_cache_exports_for_this_process_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
    weights_copy: Path,
    private_cache: Path,
    counted_exports: list[Path],
) -> None:
    backend = first_exported_backend()
    locked = private_cache.parent / "locked"
    locked.mkdir(parents=True)
    locked.chmod(0o555)
    monkeypatch.setenv("DEPTH2MESH_CACHE", str(locked / "depth2mesh"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = load_model(weights_copy, backend=backend)
            second = load_model(weights_copy, backend=backend)
        notes = [str(item.message) for item in caught if "not writable" in str(item.message)]
        assert len(notes) == 1
        assert str(locked / "depth2mesh") in notes[0]
        assert "each run exports it again" in notes[0]
        assert "\n" not in notes[0]
        assert first.exported_now
        assert not second.exported_now
        assert len(counted_exports) == 1
        assert first.export_path is not None
        assert first.export_path.parent == backends.scratch_dir()
        assert second.export_path == first.export_path
        assert list(locked.iterdir()) == []
        assert [p.name for p in weights_copy.parent.iterdir()] == ["midas.pt"]
        x = np.random.default_rng(3).standard_normal((1, 3, 64, 96), dtype=np.float32)
        reference = run_network(quiet_load(weights_copy, backend="torch"), x)
        assert np.abs(run_network(second, x) - reference).max() <= 1e-4 * np.ptp(reference)
    finally:
        locked.chmod(0o755)


@pytest.mark.slow  # an ONNX export: over 2 s
def test_an_old_export_beside_the_weights_is_used_and_left_alone(
    weights_copy: Path,
    private_cache: Path,
    counted_exports: list[Path],
    parity_model: DepthModel,
) -> None:
    """Exports that earlier versions wrote beside the weights are found, read only."""
    backend = first_exported_backend()
    source = parity_model.export_path
    if source is None:
        source = quiet_load(parity_model.weights_path, backend=backend).export_path
    assert source is not None
    old = weights_copy.parent / source.name
    old.write_bytes(source.read_bytes())
    stamp = old.stat().st_mtime_ns
    loaded = quiet_load(weights_copy, backend=backend)
    assert loaded.export_path == old
    assert not loaded.exported_now
    assert counted_exports == []
    assert old.stat().st_mtime_ns == stamp
    assert not _exports(private_cache)
    # a damaged old export is skipped (not deleted) and a new one goes to the cache
    old.write_bytes(b"damaged")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_model(weights_copy, backend=backend)
    assert not any("damaged" in str(item.message) for item in caught)
    assert again.exported_now
    assert again.export_path is not None
    assert again.export_path.parent == private_cache
    assert sorted(p.name for p in weights_copy.parent.iterdir()) == sorted(["midas.pt", old.name])
    assert old.read_bytes() == b"damaged"


@pytest.mark.slow  # an ONNX export: over 2 s
def test_describe_is_the_sidecar_model_block(
    weights_copy: Path, private_cache: Path, counted_exports: list[Path]
) -> None:
    backend = first_exported_backend()
    first = quiet_load(weights_copy, backend=backend).describe()
    second = quiet_load(weights_copy, backend=backend).describe()
    assert json.loads(json.dumps(first)) == first
    assert set(first) == {
        "name",
        "model",
        "output",
        "max_depth_m",
        "input_size",
        "weights_sha256",
        "official_weights",
        "device",
        "backend",
        "export",
        "exported_now",
        "load_timings_s",
    }
    assert first["name"] == "MiDaS v2.1 small"
    assert first["weights_sha256"] == file_sha256(weights_copy)
    assert first["official_weights"] is False
    assert (first["device"], first["backend"]) == ("cpu", backend)
    assert first["exported_now"] is True
    assert set(first["load_timings_s"]) == {"weights", "network", "export", "compile", "total"}
    assert first["export"] == second["export"] == _exports(private_cache)[0].name
    assert second["exported_now"] is False
    assert set(second["load_timings_s"]) == {"weights", "compile", "total"}
    assert all(value >= 0 for value in second["load_timings_s"].values())
    eager_block = quiet_load(weights_copy, backend="torch").describe()
    assert (eager_block["backend"], eager_block["export"]) == ("torch", None)
    assert eager_block["exported_now"] is False
    assert set(eager_block["load_timings_s"]) == {"weights", "network", "total"}
    assert len(counted_exports) == 1


# The cache logic itself, with a stand-in exporter (fast): every corner case.


@pytest.fixture
def fake_export() -> Callable[[Path], None]:
    def export(path: Path) -> None:
        path.write_bytes(b"fake onnx " * 1000)

    return export


SHA = "ab" * 32


def test_cache_finds_its_own_file(tmp_path: Path, fake_export: Callable[[Path], None]) -> None:
    path, exported = cached_export(SHA, fake_export, tmp_path)
    assert exported
    assert path.parent == tmp_path
    assert path.name.startswith(export_stem(SHA))
    assert path.name.endswith(file_sha256(path)[:16] + ".onnx")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask_bits()
    assert cached_export(SHA, fake_export, tmp_path) == (path, False)
    assert find_export("cd" * 32, [tmp_path]) is None  # other weights: not this file


def _umask_bits() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_cache_falls_back_when_the_folder_is_not_writable(
    tmp_path: Path, fake_export: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "_scratch", [])
    monkeypatch.setattr(backends, "_warned_unwritable", [])
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    with pytest.warns(UserWarning, match="not writable"):
        path, exported = cached_export(SHA, fake_export, blocked / "sub")
    assert exported
    assert path.is_file()
    assert path.parent.name.startswith("depth2mesh-export-")
    assert path.parent == backends.scratch_dir()
    assert cached_export(SHA, fake_export, blocked / "sub") == (path, False)


def test_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cached_export(SHA, broken, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_damaged_cache_file_is_deleted_with_a_warning(
    tmp_path: Path, fake_export: Callable[[Path], None]
) -> None:
    path, _ = cached_export(SHA, fake_export, tmp_path)
    path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="damaged"):
        assert find_export(SHA, [tmp_path]) is None
    assert not path.exists()
    renamed = tmp_path / f"{export_stem(SHA)}-xyz.onnx"
    renamed.write_bytes(b"a name without a valid hash")
    with pytest.warns(UserWarning, match="damaged"):
        new_path, exported = cached_export(SHA, fake_export, tmp_path)
    assert exported
    assert [p.name for p in tmp_path.iterdir()] == [new_path.name]


def test_failed_export_falls_back_to_torch_only_for_auto(
    weights_copy: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = first_exported_backend()

    def broken(network: network.MidasSmall, destination: str | Path) -> None:
        raise RuntimeError("exporter crashed\nsecond line")

    monkeypatch.setattr(network, "export_onnx", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_model(weights_copy)
    assert loaded.backend == "torch"
    assert loaded.runner is None
    assert any("runs on eager torch instead" in str(item.message) for item in caught)
    with pytest.raises(DeviceError, match="could not export the network") as error:
        quiet_load(weights_copy, backend=backend)
    assert "\n" not in str(error.value)
    assert [p.name for p in weights_copy.parent.iterdir()] == ["midas.pt"]
    assert _exports(private_cache) == []


def test_openvino_keeps_its_compiled_network_in_the_given_folder(
    tmp_path: Path, parity_model: DepthModel, shared_dir: Path
) -> None:
    """A second runner loads the compiled network from openvino-cache/, with equal results."""
    require("openvino")
    source = parity_model.export_path
    if source is None or parity_model.backend != "openvino":
        source = quiet_load(parity_model.weights_path, backend="openvino").export_path
    assert source is not None
    x = official(shared_dir, "coffee", "input")
    cache = backends.compiled_cache_dir(tmp_path)
    assert cache == tmp_path / backends.OPENVINO_CACHE
    first = backends.create_runner("openvino", source, compiled_cache=cache)
    blobs = sorted(cache.iterdir())
    assert blobs  # the compiled network was written
    stamps = [blob.stat().st_mtime_ns for blob in blobs]
    second = backends.create_runner("openvino", source, compiled_cache=cache)
    assert sorted(cache.iterdir()) == blobs
    assert [blob.stat().st_mtime_ns for blob in blobs] == stamps  # read, not written again
    np.testing.assert_array_equal(second(x), first(x))
    # a read-only cache folder gets no compiled cache, and the runner still works
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert backends.compiled_cache_dir(locked) is None
        third = backends.create_runner("openvino", source, compiled_cache=None)
        np.testing.assert_array_equal(third(x), first(x))
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("backend", EXPORTED)
def test_threads_reach_the_runner(parity_weights: Path, backend: str) -> None:
    require(backend)
    for threads in (1, 2):
        runner = quiet_load(parity_weights, backend=backend, threads=threads).runner
        if isinstance(runner, backends.OnnxRuntimeRunner):
            options = runner.session.get_session_options()
            assert options.intra_op_num_threads == threads
        else:
            assert isinstance(runner, backends.OpenVinoRunner)
            assert int(runner.compiled.get_property("INFERENCE_NUM_THREADS")) == threads
    default = quiet_load(parity_weights, backend=backend).runner
    if isinstance(default, backends.OnnxRuntimeRunner):
        assert default.session.get_session_options().intra_op_num_threads == physical_cores()
    else:
        assert isinstance(default, backends.OpenVinoRunner)
        assert int(default.compiled.get_property("INFERENCE_NUM_THREADS")) == physical_cores()


def test_threads_set_torch_only_for_the_eager_backend(parity_weights: Path) -> None:
    before = torch.get_num_threads()
    try:
        quiet_load(parity_weights, backend="torch")
        assert torch.get_num_threads() == before
        if backends.available_backends()[1:]:
            quiet_load(parity_weights, backend="auto", threads=before + 1)
            assert torch.get_num_threads() == before
        quiet_load(parity_weights, backend="torch", threads=before + 1)
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        load_model(parity_weights, threads=0)
