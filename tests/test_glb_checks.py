"""The fast loop's own GLB check (``helpers.glb.check_glb``) rejects what the validator rejects."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.glb import check_glb, glb_chunks
from helpers.gltf_validator import validate_glb

from depth2mesh.exchange.gltf import GltfCamera, encode_glb


def textured_quad() -> bytes:
    positions = np.array([[0, 0, -1], [1, 0, -1], [1, 1, -1], [0, 1, -1]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int64)
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    ok, png = cv2.imencode(".png", np.full((16, 16, 3), 128, np.uint8))
    assert ok
    camera = GltfCamera(yfov=0.8, aspect_ratio=1.0, znear=0.01)
    return encode_glb(
        positions, faces, uvs=uvs, texture=png.tobytes(), texture_mime="image/png", camera=camera
    )


def with_json(data: bytes, change: Callable[[dict], None]) -> bytes:
    """Rewrite the GLB's JSON chunk after ``change`` (padding and lengths kept consistent)."""
    document, binary = glb_chunks(data)
    change(document)
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def with_index(data: bytes, value: int) -> bytes:
    """Overwrite the first vertex index in the BIN chunk."""
    document, _ = glb_chunks(data)
    spec = document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]
    view = document["bufferViews"][spec["bufferView"]]
    start = 20 + struct.unpack_from("<I", data, 12)[0] + 8
    start += view.get("byteOffset", 0) + spec.get("byteOffset", 0)
    fmt = {5123: "<H", 5125: "<I"}[spec["componentType"]]
    out = bytearray(data)
    struct.pack_into(fmt, out, start, value)
    return bytes(out)


def _bad_max(document: dict) -> None:
    position = document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    document["accessors"][position]["max"][0] += 1.0


def _wrong_mime(document: dict) -> None:
    document["images"][0]["mimeType"] = "image/jpeg"


def _view_past_buffer(document: dict) -> None:
    document["bufferViews"][-1]["byteOffset"] = document["buffers"][0]["byteLength"] - 4


BROKEN: dict[str, Callable[[bytes], bytes]] = {
    "header length": lambda d: d[:8] + struct.pack("<I", len(d) + 4) + d[12:],
    "index out of range": lambda d: with_index(d, 4),
    "POSITION max": lambda d: with_json(d, _bad_max),
    "image not its MIME type": lambda d: with_json(d, _wrong_mime),
    "view past the buffer": lambda d: with_json(d, _view_past_buffer),
}


def test_a_valid_file_passes(tmp_path: Path) -> None:
    path = tmp_path / "quad.glb"
    path.write_bytes(textured_quad())
    assert check_glb(path)["info"] == {"totalVertexCount": 4, "totalTriangleCount": 2}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_files_fail_our_check(tmp_path: Path, case: str) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(BROKEN[case](textured_quad()))
    with pytest.raises(AssertionError):
        check_glb(path)


@pytest.mark.slow  # node
@pytest.mark.parametrize("case", BROKEN)
def test_broken_files_fail_the_khronos_validator_too(tmp_path: Path, case: str) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(BROKEN[case](textured_quad()))
    assert validate_glb(path)["issues"]["numErrors"] > 0
    good = tmp_path / "good.glb"
    good.write_bytes(textured_quad())
    assert validate_glb(good)["issues"]["numErrors"] == 0
