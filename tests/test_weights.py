"""Weights: resolution order, download, sha256, safe loading, one-line errors."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from helpers.cli import run_cli

from depth2mesh.depth.model import load_model
from depth2mesh.depth.networks.midas_small_torch import read_checkpoint
from depth2mesh.depth.weights import (
    CHECKPOINT_NAME,
    OFFICIAL_SHA256,
    OFFICIAL_URL,
    cache_file,
    download_file,
    file_sha256,
    resolve_weights,
)
from depth2mesh.errors import UnofficialWeightsWarning, WeightsError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "blob.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


# --------------------------------------------------------------------------- resolution order


def test_cache_file_is_torch_hub_checkpoint_path(tmp_path: Path) -> None:
    assert cache_file(tmp_path) == tmp_path / "checkpoints" / "midas_v21_small_256.pt"
    assert Path(OFFICIAL_URL).name == CHECKPOINT_NAME


def test_argument_beats_environment_and_cache(tmp_path: Path, small_file: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cached")
    env_file = tmp_path / "env.pt"
    env_file.write_bytes(b"env")
    found = resolve_weights(
        small_file, cache_path=cache, environ={"DEPTH2MESH_WEIGHTS": str(env_file)}
    )
    assert (found.path, found.origin) == (small_file, "argument")


def test_environment_beats_cache(tmp_path: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cached")
    env_file = tmp_path / "env.pt"
    env_file.write_bytes(b"env")
    found = resolve_weights(None, cache_path=cache, environ={"DEPTH2MESH_WEIGHTS": str(env_file)})
    assert (found.path, found.origin) == (env_file, "environment")


def test_cache_is_used_without_download(tmp_path: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cached")
    # an unusable URL proves that no download is attempted
    found = resolve_weights(None, cache_path=cache, environ={}, url="file:///nonexistent/x.pt")
    assert (found.path, found.origin) == (cache, "cache")


def test_download_into_cache_from_file_url(tmp_path: Path, small_file: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    calls: list[tuple[int, int | None]] = []
    found = resolve_weights(
        None,
        cache_path=cache,
        environ={},
        url=small_file.as_uri(),
        sha256=_sha(small_file),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (found.path, found.origin) == (cache, "download")
    assert cache.read_bytes() == small_file.read_bytes()
    assert calls[-1][0] == small_file.stat().st_size
    assert len(calls) >= 4  # 1 MiB chunks: the bar moves
    assert [p.name for p in cache.parent.iterdir()] == [CHECKPOINT_NAME]


def test_download_with_wrong_sha256_leaves_nothing(tmp_path: Path, small_file: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    with pytest.raises(WeightsError, match=r"sha256 is .* expected 0{64}") as caught:
        resolve_weights(
            None, cache_path=cache, environ={}, url=small_file.as_uri(), sha256="0" * 64
        )
    assert "\n" not in str(caught.value)
    assert list(cache.parent.iterdir()) == []


def test_download_file_is_atomic_on_failure(tmp_path: Path) -> None:
    destination = tmp_path / "out" / "file.pt"
    with pytest.raises(OSError, match="No such file"):
        download_file((tmp_path / "missing.bin").as_uri(), destination, sha256="0" * 64)
    assert list(destination.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/midas_v21_small_256.pt", "refused"),
        ("file:///nonexistent/dir/midas_v21_small_256.pt", "No such file"),
    ],
)
def test_offline_error_names_url_cache_sha_and_option(
    tmp_path: Path, url: str, reason: str
) -> None:
    cache = cache_file(tmp_path / "hub")
    with pytest.raises(WeightsError) as caught:
        resolve_weights(None, cache_path=cache, environ={}, url=url)
    message = str(caught.value)
    assert "\n" not in message
    assert reason in message
    for part in (url, str(cache), OFFICIAL_SHA256, "--weights", "DEPTH2MESH_WEIGHTS"):
        assert part in message


def test_offline_variable_forbids_download(tmp_path: Path, small_file: Path) -> None:
    cache = cache_file(tmp_path / "hub")
    with pytest.raises(WeightsError, match="DEPTH2MESH_OFFLINE is set"):
        resolve_weights(
            None,
            cache_path=cache,
            environ={"DEPTH2MESH_OFFLINE": "1"},
            url=small_file.as_uri(),
            sha256=_sha(small_file),
        )
    assert not cache.exists()


@pytest.mark.parametrize("given_by", ["argument", "environment"])
def test_missing_explicit_file_is_an_error_not_a_fallback(tmp_path: Path, given_by: str) -> None:
    cache = cache_file(tmp_path / "hub")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"cached")
    missing = tmp_path / "nope.pt"
    argument = missing if given_by == "argument" else None
    environ = {"DEPTH2MESH_WEIGHTS": str(missing)} if given_by == "environment" else {}
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(argument, cache_path=cache, environ=environ)


def test_official_constants() -> None:
    assert OFFICIAL_URL == (
        "https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21_small_256.pt"
    )
    assert OFFICIAL_SHA256 == "70d6b9c891758c67f974a6097fb0c608c7ee67fb81ac3e5588847d5596d56fca"


# --------------------------------------------------------------------------- loading


def test_unofficial_weights_load_with_one_warning(
    parity_weights: Path, isolated_env: dict[str, str]
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(parity_weights)
    relevant = [w for w in caught if issubclass(w.category, UnofficialWeightsWarning)]
    assert len(relevant) == 1
    assert "not the official" in str(relevant[0].message)
    assert model.weights_sha256 == file_sha256(parity_weights)
    assert not model.official
    assert model.weights_origin == "argument"
    assert model.device == "cpu"
    assert not model.network.training


def test_environment_variable_loads_model(
    parity_weights: Path, isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPTH2MESH_WEIGHTS", str(parity_weights))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        model = load_model()
    assert model.weights_origin == "environment"
    assert model.weights_path == parity_weights


def test_torch_hub_cache_is_found(
    parity_weights: Path, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    cached = cache_file(torch.hub.get_dir())
    assert str(cached).startswith(str(tmp_path))
    cached.parent.mkdir(parents=True)
    os.symlink(parity_weights, cached)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialWeightsWarning)
        model = load_model()
    assert model.weights_origin == "cache"


def test_load_model_offline_error(isolated_env: dict[str, str]) -> None:
    with pytest.raises(WeightsError, match="not downloadable") as caught:
        load_model()
    assert str(cache_file(torch.hub.get_dir())) in str(caught.value)


class _Exploit:
    """Unpickling this would create a marker file (it must never run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Exploit(marker)}, evil)
    # proof that the file really is an exploit: an unsafe load runs it
    torch.load(evil, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(WeightsError, match="refused") as caught:
        read_checkpoint(evil)
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_plain_pickle_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    with pytest.raises(WeightsError):
        read_checkpoint(evil)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path: Path, parity_weights: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    with open(parity_weights, "rb") as source:
        truncated.write_bytes(source.read(parity_weights.stat().st_size // 2))
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(truncated)


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(text)


def test_empty_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.touch()
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(empty)


def test_wrong_keys(tmp_path: Path, parity_weights: Path) -> None:
    state = torch.load(parity_weights, weights_only=True)
    renamed = {key.replace("scratch.", "decoder."): value for key, value in state.items()}
    path = tmp_path / "renamed.pt"
    torch.save(renamed, path)
    with pytest.raises(WeightsError, match=r"keys missing, \d+ unexpected"):
        read_checkpoint(path)


def test_wrong_shape(tmp_path: Path, parity_weights: Path) -> None:
    state = torch.load(parity_weights, weights_only=True)
    state["scratch.output_conv.4.weight"] = torch.zeros(2, 32, 1, 1)
    path = tmp_path / "shape.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"scratch.output_conv.4.weight is \(2, 32, 1, 1\)"):
        read_checkpoint(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="not a MiDaS state dict"):
        read_checkpoint(path)


def test_training_checkpoint_is_unwrapped(tmp_path: Path, parity_weights: Path) -> None:
    state = torch.load(parity_weights, weights_only=True)
    path = tmp_path / "train.pt"
    torch.save({"model": state, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    assert read_checkpoint(path).keys() == state.keys()


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize("kind", ["truncated", "text", "wrong-keys", "evil", "missing", "folder"])
def test_cli_bad_weights_one_line_no_traceback(
    tmp_path: Path, parity_weights: Path, isolated_env: dict[str, str], kind: str
) -> None:
    bad = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        bad.write_bytes(parity_weights.read_bytes()[:1000])
    elif kind == "text":
        bad.write_text("hello")
    elif kind == "wrong-keys":
        torch.save({"a": torch.zeros(1)}, bad)
    elif kind == "evil":
        torch.save(_Exploit(tmp_path / "pwned"), bad)
    elif kind == "folder":
        bad.mkdir()
    photo = tmp_path / "photo.png"
    shutil.copy(Path(__file__).parents[1] / "samples" / "chelsea.png", photo)
    result = run_cli("depth", photo, "-o", tmp_path / "out", "--weights", bad, env=isolated_env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # the first run's notice may come first (the export starts from these weights), then the
    # one error line
    notices = [line for line in lines if line.startswith("preparing ")]
    assert len(notices) <= 1
    errors = [line for line in lines if line not in notices]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_offline_message(tmp_path: Path, isolated_env: dict[str, str]) -> None:
    photo = Path(__file__).parents[1] / "samples" / "chelsea.png"
    result = run_cli("depth", photo, "-o", tmp_path / "out", env=isolated_env)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())  # the terminal may wrap the line
    cache = cache_file(Path(isolated_env["TORCH_HOME"]) / "hub")
    for part in (OFFICIAL_URL, str(cache), OFFICIAL_SHA256, "--weights"):
        assert part in message
    assert "Traceback" not in result.stderr
