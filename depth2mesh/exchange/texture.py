"""The GLB texture: the photo's own JPEG data without its metadata, or the pixels encoded.

:func:`photo_texture` picks: an upright RGB JPEG that fits the texture size is embedded as it
is (no second JPEG loss, no encoding time) with its metadata left out
(:func:`jpeg_without_metadata`); anything else is encoded by :func:`encode_texture`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import OutputError
from depth2mesh.exchange.gltf import DEFAULT_JPEG_QUALITY, DEFAULT_TEXTURE_SIZE
from depth2mesh.exchange.photo import Photo

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


def texture_pixels(rgb: NDArray[np.uint8], *, max_size: int) -> NDArray[np.uint8]:
    """The photo as the texture holds it: downscaled to ``max_size`` on its long side.

    The area filter downscales; a photo that fits stays as it is.

    Args:
        rgb: (H, W, 3) uint8 sRGB photo.
        max_size: Longest side of the texture, pixels.

    Returns:
        (h, w, 3) uint8 sRGB.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, max_size / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return rgb


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
    rgb = texture_pixels(rgb, max_size=max_size)
    bgr = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), np.uint8)
    return encode_bgr(bgr, image_format=image_format, quality=quality)


def encode_bgr(
    bgr: NDArray[np.uint8], *, image_format: str = "jpeg", quality: int = 90
) -> tuple[bytes, str]:
    """Encode a BGR image (OpenCV's channel order) as it is.

    Args:
        bgr: (H, W, 3) uint8, channels blue, green, red (sRGB).
        image_format: "jpeg" or "png".
        quality: JPEG quality, 1..100.

    Returns:
        (encoded bytes, MIME type).
    """
    if image_format == "png":
        ok, data = cv2.imencode(".png", bgr)
        mime = "image/png"
    elif image_format == "jpeg":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        mime = "image/jpeg"
    else:
        raise ValueError(f"texture format must be 'jpeg' or 'png', got {image_format!r}")
    if not ok:
        raise OutputError(f"texture encoding failed for an image of shape {bgr.shape}")
    return data.tobytes(), mime


@dataclass(frozen=True)
class Texture:
    """An encoded GLB texture.

    Attributes:
        data: The image file's bytes.
        mime_type: "image/jpeg" or "image/png".
        source: "photo" (the photo's own JPEG data, metadata left out) or "encoded".
        quality: The JPEG quality it was encoded at; None for "photo" and PNG.
    """

    data: bytes
    mime_type: str
    source: Literal["photo", "encoded"]
    quality: int | None


def photo_texture(
    photo: Photo,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
    texture_format: Literal["jpeg", "png"] = "jpeg",
    jpeg_quality: int | None = None,
) -> Texture:
    """Return the GLB texture of a photo: its own JPEG data where it fits, else encoded.

    The photo's JPEG data is embedded as it is when it is an upright RGB JPEG
    (``photo.jpeg``), its long side is at most ``texture_size``, and neither the PNG format
    nor a JPEG quality was asked for: the texture then is exactly the photo (no second JPEG
    loss) and costs no encoding (about 0.15 s for 12 MP). Its metadata is left out
    (:func:`jpeg_without_metadata`: no EXIF GPS position in a model
    that gets shared, no thumbnails, no appended motion-photo video). Otherwise the pixels
    are encoded by :func:`encode_texture` (downscaled to
    ``texture_size``).

    Args:
        photo: The photo (from :func:`~depth2mesh.exchange.photo.read_photo`).
        texture_size: Longest side of the texture, pixels.
        texture_format: "jpeg" or "png" (lossless).
        jpeg_quality: Encode at this JPEG quality; None: the photo's own JPEG where it fits,
            else :data:`~depth2mesh.exchange.gltf.DEFAULT_JPEG_QUALITY`.

    Returns:
        The texture.
    """
    height, width = photo.rgb.shape[:2]
    if (
        photo.jpeg is not None
        and photo.alpha is None
        and texture_format == "jpeg"
        and jpeg_quality is None
        and max(height, width) <= texture_size
    ):
        try:
            return Texture(jpeg_without_metadata(photo.jpeg), "image/jpeg", "photo", None)
        except ValueError:
            pass  # a JPEG this parser cannot follow: encode the decoded pixels instead
    data, mime = encode_texture(
        photo.rgb,
        max_size=texture_size,
        image_format=texture_format,
        quality=encoding_quality(jpeg_quality),
    )
    return Texture(
        data, mime, "encoded", encoding_quality(jpeg_quality) if mime == "image/jpeg" else None
    )


def encoding_quality(jpeg_quality: int | None) -> int:
    """Return the JPEG quality a texture is encoded at: ``jpeg_quality``, else the default."""
    return DEFAULT_JPEG_QUALITY if jpeg_quality is None else jpeg_quality


STRIP_ALIGN: Final = 16
"""The photo's part of a texture with a strip is padded to a multiple of this many rows (JPEG's
largest block), so that its blocks are encoded exactly as without the strip."""


@dataclass(frozen=True)
class StripTexture:
    """A texture that holds the photo and, below it, a strip of other colours.

    Attributes:
        texture: The encoded image.
        photo_size: (height, width) of the photo's part, texels (at the top-left corner).
        strip_top: The strip's first row, texels.
        size: (height, width) of the whole image, texels.
    """

    texture: Texture
    photo_size: tuple[int, int]
    strip_top: int
    size: tuple[int, int]


def strip_texture(
    photo: Photo,
    strip: NDArray[np.uint8],
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
    texture_format: Literal["jpeg", "png"] = "jpeg",
    jpeg_quality: int | None = None,
    margin: int = 0,
) -> StripTexture:
    """Encode the photo's texture with ``strip`` below it, in one image.

    The photo's part is the pixels :func:`encode_texture` would encode
    (:func:`texture_pixels`), its last row repeated for at least ``margin`` rows and to a
    multiple of :data:`STRIP_ALIGN` rows, its last column to the strip's width (what a JPEG
    encoder does itself at the image's edge, so those blocks come out as without the strip);
    the strip starts on the next row, its last column repeated to the image's width. The
    image is always encoded (the photo's own JPEG bytes cannot hold the strip), as
    ``texture_format`` at :func:`encoding_quality`.

    Args:
        photo: The photo.
        strip: (h, w, 3) uint8 sRGB strip.
        texture_size: Longest side of the photo's part, pixels.
        texture_format: "jpeg" or "png".
        jpeg_quality: JPEG quality; None: the default.
        margin: Rows of the photo's last row, at least, between it and the strip (texture
            coordinates a little below the photo then sample the photo's last row).

    Returns:
        The texture and where its parts are.
    """
    pixels = texture_pixels(photo.rgb, max_size=texture_size)
    height, width = pixels.shape[:2]
    total_width = max(width, strip.shape[1])
    top = -(-(height + max(0, margin)) // STRIP_ALIGN) * STRIP_ALIGN
    image = np.empty((top + strip.shape[0], total_width, 3), dtype=np.uint8)  # BGR, filled once
    cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR, dst=image[:height, :width])
    image[height:top, :width] = image[height - 1 : height, :width]
    image[:top, width:] = image[:top, width - 1 : width]
    cv2.cvtColor(strip, cv2.COLOR_RGB2BGR, dst=image[top:, : strip.shape[1]])
    image[top:, strip.shape[1] :] = image[top:, strip.shape[1] - 1 : strip.shape[1]]
    quality = encoding_quality(jpeg_quality)
    data, mime = encode_bgr(image, image_format=texture_format, quality=quality)
    texture = Texture(data, mime, "encoded", quality if mime == "image/jpeg" else None)
    return StripTexture(texture, (height, width), top, (image.shape[0], image.shape[1]))
