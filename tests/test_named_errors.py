"""Library messages name Python parameters; the CLI renders them as its options."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depth2mesh.apps.cli import _message, _reason
from depth2mesh.atomic import atomic_write_bytes
from depth2mesh.errors import (
    DeviceError,
    DeviceParameterError,
    InputError,
    OutputError,
    OutputExistsError,
)
from depth2mesh.exchange.photo import read_photo
from depth2mesh.pipeline.batch import WorkItem, run_batch


def test_existing_output_names_the_parameter_and_the_cli_its_flag(tmp_path: Path) -> None:
    target = tmp_path / "a.glb"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError) as caught:
        atomic_write_bytes(target, b"new")
    error = caught.value
    assert isinstance(error, OutputError)
    assert error.path == target
    assert str(error) == f"{target} exists already: pass overwrite=True to replace it"
    assert _message(error) == f"{target} exists already: pass --overwrite to replace it"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert target.read_bytes() == b"old"


def test_batch_outcome_keeps_the_error_for_the_cli(tmp_path: Path) -> None:
    def process(item: WorkItem) -> None:
        raise OutputExistsError(tmp_path / "x.glb")

    (outcome,) = run_batch([WorkItem(tmp_path / "x.jpg")], process)
    assert outcome.status == "failed"
    assert outcome.reason.endswith("pass overwrite=True to replace it")
    assert isinstance(outcome.error, OutputExistsError)
    assert _reason(outcome).endswith("pass --overwrite to replace it")


def test_pixel_limit_names_the_parameter(tmp_path: Path) -> None:
    photo = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(photo)
    with pytest.raises(InputError) as caught:
        read_photo(photo, max_pixels=100)
    assert "raise it with max_pixels if the photo is genuine" in str(caught.value)
    assert "--" not in str(caught.value)
    assert "raise it with --max-pixels if" in _message(caught.value)


def test_backend_advice_names_parameters_with_values() -> None:
    error = DeviceParameterError(
        "use {backend='torch'} for GPUs, or {device='cpu'}", "backend", "device"
    )
    assert isinstance(error, DeviceError)
    assert str(error) == "use backend='torch' for GPUs, or device='cpu'"
    assert _message(error) == "use --backend torch for GPUs, or --device cpu"


def test_braces_that_name_no_parameter_stay() -> None:
    error = OutputExistsError(Path("odd{name}.glb"))
    assert str(error).startswith("odd{name}.glb exists already")
    assert _message(error).startswith("odd{name}.glb exists already")
