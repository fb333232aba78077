"""Wavefront OBJ + MTL for tools that want OBJ (``--format obj``): text, UV-textured."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray


def encode_obj(
    vertices: NDArray[np.float32],
    faces: NDArray[np.integer],
    uvs: NDArray[np.float32],
    *,
    material_file: str,
    material_name: str = "photo",
) -> bytes:
    """Encode a UV-textured triangle mesh as Wavefront OBJ text.

    Args:
        vertices: (N, 3) float32 positions, already in the output axes (glTF's), metres.
        faces: (M, 3) integer vertex indices (0-based; written 1-based).
        uvs: (N, 2) float32 glTF texture coordinates (origin top-left); OBJ's ``vt`` has
            its origin bottom-left, so ``v`` is flipped.
        material_file: Name of the ``.mtl`` file beside the OBJ.
        material_name: The material to use.

    Returns:
        The OBJ file content (ASCII).
    """
    buffer = io.BytesIO()
    buffer.write(f"# depth2mesh\nmtllib {material_file}\n".encode("ascii"))
    np.savetxt(buffer, vertices, fmt="v %.6f %.6f %.6f")
    flipped = np.column_stack([uvs[:, 0], 1.0 - uvs[:, 1]])
    np.savetxt(buffer, flipped, fmt="vt %.6f %.6f")
    buffer.write(f"usemtl {material_name}\n".encode("ascii"))
    one_based = np.asarray(faces, dtype=np.int64) + 1
    np.savetxt(buffer, np.repeat(one_based, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
    return buffer.getvalue()


def encode_mtl(texture_file: str, *, material_name: str = "photo") -> bytes:
    """Encode the ``.mtl`` material for :func:`encode_obj`: unlit-looking, the photo as map_Kd.

    Args:
        texture_file: Name of the texture image beside the MTL.
        material_name: The material's name.

    Returns:
        The MTL file content (ASCII).
    """
    return (
        f"newmtl {material_name}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
        f"map_Kd {texture_file}\n"
    ).encode("ascii")
