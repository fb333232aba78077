"""Writing results: depth images and arrays, always atomically.

Every file is written to a temporary file in its target folder, then moved into place in one
step: an interrupted run never leaves a truncated file, and an existing result is never
replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import OutputError


def atomic_write(
    path: str | Path, write: Callable[[BinaryIO], None], *, overwrite: bool = False
) -> Path:
    """Write a file through ``write(stream)`` atomically.

    Args:
        path: The final path. Its folder must exist.
        write: Writes the whole content to the binary stream it is given.
        overwrite: Replace an existing file. Without it an existing file is an error, and it
            is left as it was (the check and the rename are one step: ``link`` fails if the
            name exists).

    Returns:
        ``path``.

    Raises:
        OutputError: The file exists and ``overwrite`` is False, or the folder is not writable.
    """
    path = Path(path)
    refuse_existing([path], overwrite=overwrite)
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise OutputError(f"cannot write into {path.parent}: {error.strerror}") from error
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_without_replacing(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def refuse_existing(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Raise :class:`OutputError` for the first of ``paths`` that exists, unless ``overwrite``."""
    if overwrite:
        return
    for path in paths:
        if path.exists():
            raise OutputError(_exists_message(path))


def _exists_message(path: Path) -> str:
    return f"{path} exists already: pass --overwrite to replace it"


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _link_without_replacing(temporary: str, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError as error:
        raise OutputError(_exists_message(path)) from error
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise OutputError(f"cannot write {path}: {error.strerror}") from error
        if path.exists():  # a file system without hard links: check, then rename
            raise OutputError(_exists_message(path)) from error
        os.replace(temporary, path)


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda stream: _write_all(stream, data), overwrite=overwrite)


def _write_all(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)


def normalize_disparity(disparity: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scale disparity to [0, 1] by its finite minimum and maximum (near = 1).

    A constant map (no depth variation) gives all zeros; NaN and inf give 0.

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W) float32 in [0, 1].
    """
    values = np.asarray(disparity, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.float32)
    low = float(values[finite].min())
    high = float(values[finite].max())
    span = high - low
    if span <= 0.0:
        return np.zeros(values.shape, np.float32)
    scaled = np.where(finite, (values - low) / span, 0.0)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def disparity_to_png16(disparity: NDArray[np.floating]) -> NDArray[np.uint16]:
    """Return the 16-bit picture of disparity: min -> 0, max -> 65535 (near = bright).

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W) uint16.
    """
    return np.round(normalize_disparity(disparity) * 65535.0).astype(np.uint16)


def colorize_disparity(disparity: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Colour disparity with the inferno colormap (near = bright yellow, far = black).

    Args:
        disparity: (H, W) float, relative inverse depth.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    levels = np.round(normalize_disparity(disparity) * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def encode_png(image: NDArray[np.uint8] | NDArray[np.uint16]) -> bytes:
    """Encode an (H, W) gray or (H, W, 3) RGB image, 8- or 16-bit, as PNG bytes."""
    pixels = image[:, :, ::-1] if image.ndim == 3 else image
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise OutputError(f"PNG encoding failed for an image of shape {image.shape}")
    return encoded.tobytes()


def write_png(
    path: str | Path, image: NDArray[np.uint8] | NDArray[np.uint16], *, overwrite: bool = False
) -> Path:
    """Write an image as PNG atomically (see :func:`encode_png`, :func:`atomic_write`)."""
    return atomic_write_bytes(path, encode_png(image), overwrite=overwrite)


def write_npy(path: str | Path, array: NDArray[np.generic], *, overwrite: bool = False) -> Path:
    """Write an array as ``.npy`` atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def depth_output_paths(out_dir: Path, stem: str, *, save_raw: bool) -> dict[str, Path]:
    """Return the files ``depth2mesh depth`` writes for one photo, by kind.

    Keys: "png16" (``<stem>_depth.png``), "inferno" (``<stem>_depth_inferno.png``) and, with
    ``save_raw``, "raw" (``<stem>_disparity.npy``).
    """
    paths = {
        "png16": out_dir / f"{stem}_depth.png",
        "inferno": out_dir / f"{stem}_depth_inferno.png",
    }
    if save_raw:
        paths["raw"] = out_dir / f"{stem}_disparity.npy"
    return paths


def write_depth_images(
    disparity: NDArray[np.float32],
    out_dir: str | Path,
    stem: str,
    *,
    save_raw: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write the depth pictures of one photo (and the raw disparity).

    Nothing is written when any of the outputs exists and ``overwrite`` is False.

    Args:
        disparity: (H, W) float32, relative inverse depth from the network.
        out_dir: Existing output folder.
        stem: The photo's file name without extension.
        save_raw: Also write ``<stem>_disparity.npy`` (float32, unnormalised).
        overwrite: Replace existing files.

    Returns:
        The paths written.

    Raises:
        OutputError: An output exists (without ``overwrite``) or cannot be written.
    """
    paths = depth_output_paths(Path(out_dir), stem, save_raw=save_raw)
    refuse_existing(paths.values(), overwrite=overwrite)
    written = [
        write_png(paths["png16"], disparity_to_png16(disparity), overwrite=overwrite),
        write_png(paths["inferno"], colorize_disparity(disparity), overwrite=overwrite),
    ]
    if save_raw:
        raw = np.asarray(disparity, dtype=np.float32)
        written.append(write_npy(paths["raw"], raw, overwrite=overwrite))
    return written


GLTF_FROM_CAMERA = np.array([1.0, -1.0, -1.0], dtype=np.float32)
"""Per-axis signs taking the OpenCV camera frame (x right, y down, z forward) to glTF's
(x right, y up, -z forward): ``(x, y, z) -> (x, -y, -z)``."""


def camera_to_gltf(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    """Convert points or normals from the OpenCV camera frame to glTF axes.

    Args:
        vectors: (..., 3) float, camera frame (metres for points).

    Returns:
        (..., 3) float32 in glTF axes (Y up, -Z forward); PLY output uses the same axes.
    """
    return (np.asarray(vectors, dtype=np.float32) * GLTF_FROM_CAMERA).astype(np.float32)


_JPEG_KEPT_APPS = {
    0xE0: (b"JFIF\0", b"JFXX\0"),  # the file's colour space and pixel density
    0xE2: (b"ICC_PROFILE\0",),  # the colour profile
    0xEE: (b"Adobe",),  # the colour transform (RGB or YCbCr, CMYK)
}
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""In entropy-coded data: a 0xFF not followed by stuffing (0x00), a restart marker or fill."""


def jpeg_without_metadata(data: bytes) -> bytes:
    """Return a JPEG file with its metadata left out and nothing after its end.

    Keeps every segment that decoding needs (quantisation and Huffman tables, frame and scan
    headers, restart intervals, the entropy-coded data of every scan, so progressive files
    too), plus JFIF, the ICC profile and Adobe's colour transform; leaves out EXIF (camera
    serial numbers, GPS position), XMP, Photoshop/IPTC blocks, comments, thumbnails and any
    bytes after the end-of-image marker (a phone's motion-photo video, a second picture). The
    pixels it decodes to are the original's, bit for bit.

    Args:
        data: A JPEG file's bytes.

    Returns:
        The JPEG without metadata.

    Raises:
        ValueError: Not a JPEG this parser can follow (no SOI, a truncated segment, no EOI).
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no start-of-image marker)")
    parts = [b"\xff\xd8"]
    position, size = 2, len(data)
    while True:
        if position >= size or data[position] != 0xFF:
            raise ValueError(f"expected a JPEG marker at byte {position}")
        while position < size and data[position] == 0xFF:  # fill bytes before a marker
            position += 1
        if position >= size:
            raise ValueError("the JPEG ends inside a marker")
        marker = data[position]
        position += 1
        if marker == 0xD9:  # end of image
            parts.append(b"\xff\xd9")
            return b"".join(parts)
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            raise ValueError(f"unexpected JPEG marker 0xFF{marker:02X} at byte {position - 2}")
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > size:
            raise ValueError(f"truncated JPEG segment 0xFF{marker:02X} at byte {position - 2}")
        segment = data[position : position + length]
        position += length
        is_metadata = 0xE0 <= marker <= 0xEF or marker == 0xFE  # APPn, COM
        kept = _JPEG_KEPT_APPS.get(marker, ())
        if not is_metadata or any(segment[2:].startswith(prefix) for prefix in kept):
            parts.append(bytes((0xFF, marker)) + segment)
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            end = _JPEG_SCAN_END.search(data, position)
            if end is None:
                raise ValueError("the JPEG's scan data has no end (truncated?)")
            parts.append(data[position : end.start()])
            position = end.start()


def encode_texture(
    rgb: NDArray[np.uint8], *, max_size: int = 4096, image_format: str = "jpeg", quality: int = 90
) -> tuple[bytes, str]:
    """Encode the photo as the mesh's texture, downscaled to ``max_size`` on its long side.

    Args:
        rgb: (H, W, 3) uint8 sRGB photo.
        max_size: Longest side of the texture, pixels.
        image_format: "jpeg" (default: small files) or "png" (lossless).
        quality: JPEG quality, 1..100.

    Returns:
        (encoded bytes, MIME type).
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, max_size / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    if image_format == "png":
        ok, data = cv2.imencode(".png", bgr)
        mime = "image/png"
    elif image_format == "jpeg":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        mime = "image/jpeg"
    else:
        raise ValueError(f"texture format must be 'jpeg' or 'png', got {image_format!r}")
    if not ok:
        raise OutputError(f"texture encoding failed for an image of shape {rgb.shape}")
    return data.tobytes(), mime


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
