"""Loading photos: decode, apply the EXIF orientation, return upright RGB uint8.

Orientation is applied before anything else (all eight EXIF values, the mirrored ones of
front cameras too), so the colours and the depth predicted from them always line up.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from depth2mesh.errors import InputError, InputParameterError

EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_FOCAL_35MM = 0xA405

MAX_PIXELS = 150_000_000
"""Default limit in pixels: larger images are refused as possible decompression bombs (a
100-megapixel photo passes; raise it with ``max_pixels`` / ``--max-pixels``)."""

ALPHA_BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on white for the texture (and left out of the geometry)."""

PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".gif"}
)
"""File name suffixes taken as photos when a folder is given."""


@dataclass(frozen=True)
class Photo:
    """An upright photo and what its metadata says about the camera.

    Attributes:
        rgb: (H, W, 3) uint8 sRGB pixels, upright; transparent pixels composited on white.
        path: The file it was read from.
        orientation: The EXIF orientation that was applied (1 = none), 1..8.
        focal_length_35mm: EXIF ``FocalLengthIn35mmFilm`` in millimetres, or None.
        alpha: (H, W) uint8 opacity for images with transparency, else None.
        notes: Things the user should know (e.g. "first of 12 frames used").
        jpeg: The file's own bytes when it is an RGB JPEG stored upright (no EXIF rotation
            or mirroring) and decoded at full size: a texture can embed them as they are
            instead of encoding ``rgb`` again (no second loss, no encoding time). None
            otherwise.
        stored_size: (H, W) of the upright photo in its file when ``rgb`` was decoded
            smaller (see ``min_side`` in :func:`read_photo`); None when ``rgb`` is full size.
    """

    rgb: NDArray[np.uint8]
    path: Path
    orientation: int = 1
    focal_length_35mm: float | None = None
    alpha: NDArray[np.uint8] | None = None
    notes: tuple[str, ...] = ()
    jpeg: bytes | None = field(default=None, repr=False, compare=False)
    stored_size: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the upright photo as stored in its file: the size cameras refer to."""
        if self.stored_size is not None:
            return self.stored_size
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


_HEIF = _register_heif()


def read_photo(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, min_side: int | None = None
) -> Photo:
    """Read a photo file as upright RGB.

    JPEG (EXIF orientation, CMYK), PNG (8- and 16-bit, grayscale, palette, alpha), WebP,
    TIFF, BMP, GIF and HEIC/HEIF (with ``pillow-heif``). Palette, grayscale and CMYK images
    become RGB; 16-bit and float images are scaled to 8 bits; transparent pixels are
    composited on white (:data:`ALPHA_BACKGROUND`) and their opacity is kept in ``alpha``;
    animated images give their first frame (and say so in ``notes``).

    A JPEG larger than needed can be decoded smaller by the JPEG decoder itself (its DCT
    scaling: 1/2, 1/4 or 1/8 of each side, as fast and as light as the size it produces):
    with ``min_side``, the smallest of these scales whose long side is still at least
    ``min_side`` pixels is used. A 100-megapixel JPEG needed at 4096 pixels is decoded at
    5000x5000: a quarter of the memory and the time. ``stored_size`` keeps the file's size.

    Args:
        path: An image file.
        max_pixels: Refuse images with more pixels than this (decompression bombs).
        min_side: JPEG only: decode at a reduced scale while the long side stays at least
            this many pixels; None (default) decodes the full resolution.

    Returns:
        The photo.

    Raises:
        InputError: Missing, unreadable, not an image, truncated, or too large.
    """
    path = Path(path)
    _check_photo_file(path)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # our own limit below, with a message that says what to do
        return _decode_photo(path, max_pixels=max_pixels, min_side=min_side)
    except InputError:
        raise
    except PermissionError as error:
        raise InputError(f"{path} cannot be read: permission denied") from error
    except UnidentifiedImageError as error:
        raise InputError(f"{path} is not an image file (or a format Pillow cannot read)") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} cannot be decoded ({first}): is it truncated?") from error
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_photo_file(path: Path) -> None:
    """Raise InputError for a path that cannot be a readable photo (before decoding)."""
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a photo")
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file (0 bytes)")
    if path.suffix.lower() in (".heic", ".heif") and not _HEIF:
        raise InputError(f"{path} is HEIC/HEIF: install pillow-heif to read it")


def _decode_photo(path: Path, *, max_pixels: int, min_side: int | None) -> Photo:
    """Decode an image file to an upright :class:`Photo` (Pillow's errors pass through)."""
    jpeg: bytes | None = None
    with Image.open(path) as probe:
        if probe.format == "JPEG" and probe.mode == "RGB":
            jpeg = path.read_bytes()  # decoded from these very bytes, so they match rgb
    with Image.open(io.BytesIO(jpeg) if jpeg is not None else path) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise InputParameterError(
                f"{path} has {width}x{height} = {width * height:,} pixels, more than the "
                f"limit of {max_pixels:,} (a decompression bomb?): raise it with "
                "{max_pixels} if the photo is genuine",
                "max_pixels",
            )
        if min_side is not None and image.format == "JPEG" and max(width, height) > min_side:
            scale = min_side / max(width, height)
            wanted = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
            image.draft(image.mode, wanted)  # never smaller than wanted
        notes = []
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > 1:
            notes.append(f"animated image: the first of its {frames} frames was used")
            image.seek(0)
        exif = image.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
        focal = exif.get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
        # exif_transpose copies even an upright image: only call it to turn or mirror
        upright = ImageOps.exif_transpose(image) if orientation in range(2, 9) else image
        rgb, alpha = _to_rgb(upright)
    applied = orientation if 1 <= orientation <= 8 else 1
    stored = (width, height) if applied < 5 else (height, width)  # 5..8 swap the sides
    reduced = (rgb.shape[1], rgb.shape[0]) != stored
    return Photo(
        rgb,
        path,
        applied,
        _focal_mm(focal),
        alpha,
        tuple(notes),
        jpeg if applied == 1 and not reduced else None,
        (stored[1], stored[0]) if reduced else None,
    )


def _focal_mm(value: object) -> float | None:
    """EXIF FocalLengthIn35mmFilm as a float, or None when absent, zero or unreadable."""
    try:
        return float(value) if value else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _to_rgb(image: Image.Image) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Decode to (H, W, 3) uint8 RGB, compositing transparency on white, and the alpha."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        wide = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            peak = 65535.0
        elif image.mode == "F":
            finite = wide[np.isfinite(wide)]
            peak = float(finite.max()) if finite.size and finite.max() > 1.0 else 1.0
        else:
            peak = 65535.0 if wide.max(initial=0) > 255 else 255.0
        scaled = np.nan_to_num(wide * (255.0 / peak), nan=0.0, posinf=255.0, neginf=0.0)
        gray = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8)), None
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
    alpha = rgba[:, :, 3]
    opacity = alpha[:, :, None].astype(np.float32) / 255.0
    background = np.asarray(ALPHA_BACKGROUND, np.float32)
    blended = rgba[:, :, :3].astype(np.float32) * opacity + background * (1.0 - opacity)
    rgb = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(alpha)


def read_depth_file(path: str | Path, *, png_scale: float = 0.001) -> NDArray[np.float32]:
    """Read a depth or disparity map given by the user (``--depth FILE``).

    Args:
        path: ``.npy`` (2-D float array), ``.pfm`` (single channel) or a 16-bit ``.png``.
        png_scale: What one PNG unit is worth (0.001: millimetres to metres; 1 for disparity
            PNGs).

    Returns:
        (H, W) float32, as stored (times ``png_scale`` for PNG). NaN and inf are kept: the
        caller decides what is valid.

    Raises:
        InputError: Unknown format, unreadable, or not a single-channel 2-D map.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"depth file {path} does not exist")
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".pfm":
            values = _read_pfm(path)
        elif suffix == ".png":
            with Image.open(path) as image:
                if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
                    raise InputError(
                        f"depth PNG {path} must be single-channel (16-bit), got mode {image.mode}"
                    )
                values = np.asarray(image).astype(np.float64) * png_scale
        else:
            raise InputError(f"depth file {path} must be .npy, .pfm or a 16-bit .png")
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"depth file {path} cannot be read: {error}") from error
    values = np.squeeze(values)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise InputError(
            f"depth file {path} must hold one 2-D map, got {values.dtype} {values.shape}"
        )
    return np.ascontiguousarray(values, dtype=np.float32)


def _read_pfm(path: Path) -> NDArray[np.float32]:
    with open(path, "rb") as stream:
        kind = stream.readline().strip()
        if kind not in (b"Pf", b"PF"):
            raise ValueError("not a PFM file (no Pf/PF header)")
        width, height = (int(part) for part in stream.readline().split())
        scale = float(stream.readline().strip())
        channels = 3 if kind == b"PF" else 1
        dtype = "<f4" if scale < 0 else ">f4"
        data = np.frombuffer(stream.read(width * height * channels * 4), dtype=dtype)
    if data.size != width * height * channels:
        raise ValueError("truncated PFM file")
    grid = data.reshape(height, width, channels)[::-1]  # PFM rows run bottom to top
    return np.ascontiguousarray(grid[..., 0], dtype=np.float32)
