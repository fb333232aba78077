"""Pinhole camera intrinsics: from explicit values, a focal length, a field of view or EXIF.

Conventions: OpenCV camera frame (x right, y down, z forward) and pixel centres at integer
``(u, v)``, so the image spans ``-0.5 .. width - 0.5`` horizontally and the centre of the
image is at ``((width - 1) / 2, (height - 1) / 2)``. Focal lengths and the principal point are
in pixels.

Which source wins, in order (see :func:`resolve_intrinsics`): explicit ``--fx/--fy/--cx/--cy``;
``--focal-px`` or ``--focal-35mm``; ``--fov`` (horizontal, degrees); the EXIF
``FocalLengthIn35mmFilm`` tag; a default horizontal field of view of 60 degrees. The
:class:`Intrinsics` record which one was used in ``source``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Final, TypeGuard

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError

DEFAULT_FOV_DEG: Final = 60.0
"""Horizontal field of view, in degrees, used when nothing says what the camera was."""

FILM_35MM_DIAGONAL_MM: Final = math.hypot(36.0, 24.0)
"""Diagonal of a 36 x 24 mm film frame, in millimetres (about 43.27)."""

SOURCES: Final = ("explicit", "focal_px", "focal_35mm", "fov", "exif", "default")
"""Accepted values of :attr:`Intrinsics.source` (and ``"estimated by <model>"``, a camera a
depth model recovered from the photo itself, :data:`ESTIMATED_PREFIX`)."""

ESTIMATED_PREFIX: Final = "estimated by "
"""How :attr:`Intrinsics.source` begins for a camera a model estimated ("estimated by
moge2-small"); it ranks below explicit options and EXIF, above the 60-degree default."""


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera for an image of a given size.

    A point ``(X, Y, Z)`` in the OpenCV camera frame projects to the pixel
    ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy`` (pixel centres at integer ``u``, ``v``).

    Attributes:
        fx: Horizontal focal length, pixels.
        fy: Vertical focal length, pixels.
        cx: Principal point column, pixels.
        cy: Principal point row, pixels.
        width: Image width, pixels.
        height: Image height, pixels.
        source: Where the values came from: one of ``SOURCES``.

    Raises:
        ValueError: A focal length is not positive and finite, the principal point is not
            finite, a size is below 1 or the source is unknown.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str = "explicit"

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"Intrinsics.{name} must be a positive finite number, got {_show(value)}"
                )
        for name in ("cx", "cy"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"Intrinsics.{name} must be a finite number, got {_show(value)}")
        _check_size(self.width, self.height)
        if self.source not in SOURCES and not (
            isinstance(self.source, str) and self.source.startswith(ESTIMATED_PREFIX)
        ):
            raise ValueError(
                f"Intrinsics.source must be one of {', '.join(SOURCES)}, got {self.source!r}"
            )
        for name in ("fx", "fy", "cx", "cy"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view across the full image width, in degrees."""
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.fx)))

    @property
    def yfov(self) -> float:
        """Vertical field of view across the full image height, in radians (glTF ``yfov``)."""
        return 2.0 * math.atan(self.height / (2.0 * self.fy))

    @property
    def aspect_ratio(self) -> float:
        """Image width divided by height (glTF ``aspectRatio``)."""
        return self.width / self.height

    def matrix(self) -> NDArray[np.float64]:
        """The camera matrix ``K``.

        Returns:
            (3, 3) float64, pixels: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
        """
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def resized(self, *, width: int, height: int) -> Intrinsics:
        """The same camera for the image resized to another size.

        Focal lengths scale with the size ratios; the principal point scales about the image's
        outer edge (pixel centres at integer coordinates): ``cx' = (cx + 0.5) * sx - 0.5``.
        The size is keyword-only: arrays and ``Photo.size`` give (height, width), ``cv2``
        gives (width, height); naming them leaves no room for a mix-up.

        Args:
            width: New image width, pixels.
            height: New image height, pixels.

        Returns:
            The intrinsics for the new size, with the same ``source``.

        Raises:
            ValueError: A size is not an integer of at least 1, or the scaled camera is not
                representable (a focal length that underflows to 0 or a principal point
                that overflows, from extreme values only).
        """
        _check_size(width, height)
        sx = int(width) / self.width
        sy = int(height) / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=int(width),
            height=int(height),
            source=self.source,
        )

    def to_dict(self) -> dict[str, float | int | str]:
        """The intrinsics as plain JSON-ready values, for the sidecar file.

        Returns:
            ``fx, fy, cx, cy`` (pixels), ``width, height`` (pixels), ``source``, and for
            people reading the file ``hfov_deg`` and ``vfov_deg`` (degrees).
        """
        return {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "hfov_deg": self.hfov_deg,
            "vfov_deg": math.degrees(self.yfov),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Intrinsics:
        """Read intrinsics written by :meth:`to_dict` (the derived FOVs are ignored).

        Raises:
            ValueError: A value is missing, not a number, or out of range.
        """
        try:
            fx, fy, cx, cy = (float(values[key]) for key in ("fx", "fy", "cx", "cy"))
            width, height = (int(values[key]) for key in ("width", "height"))
        except (KeyError, TypeError) as error:
            raise ValueError(f"intrinsics need fx, fy, cx, cy, width, height: {error}") from error
        return cls(fx, fy, cx, cy, width, height, str(values.get("source", "explicit")))


def intrinsics_from_fov(
    width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG, *, source: str = "fov"
) -> Intrinsics:
    """Intrinsics from a horizontal field of view, square pixels, centred principal point.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        fov_deg: Horizontal field of view across the full width, degrees, in (0, 180).
        source: What to record as the source.

    Returns:
        ``fx = fy = (width / 2) / tan(fov / 2)``, ``cx = (width - 1) / 2``,
        ``cy = (height - 1) / 2``.

    Raises:
        ValueError: The field of view is outside (0, 180) degrees or a size is below 1.
    """
    _check_size(width, height)
    _check_fov(fov_deg, "fov_deg")
    focal = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return _centred(width, height, focal, source)


def intrinsics_from_focal_px(
    width: int, height: int, focal_px: float, *, source: str = "focal_px"
) -> Intrinsics:
    """Intrinsics from a focal length in pixels, square pixels, centred principal point.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        focal_px: Focal length, pixels (``fx = fy``).
        source: What to record as the source.

    Returns:
        The intrinsics, ``cx = (width - 1) / 2``, ``cy = (height - 1) / 2``.

    Raises:
        ValueError: The focal length is not positive and finite or a size is below 1.
    """
    _check_size(width, height)
    _check_positive(focal_px, "focal_px")
    return _centred(width, height, float(focal_px), source)


def intrinsics_from_focal_35mm(
    width: int, height: int, focal_35mm: float, *, source: str = "focal_35mm"
) -> Intrinsics:
    """Intrinsics from a 35 mm equivalent focal length (the diagonal rule).

    The 35 mm equivalent matches the diagonal field of view, so
    ``f_px = focal_35mm * hypot(width, height) / hypot(36, 24)``.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        focal_35mm: 35 mm equivalent focal length, millimetres.
        source: What to record as the source (``"exif"`` when it comes from EXIF).

    Returns:
        Square-pixel intrinsics with a centred principal point.

    Raises:
        ValueError: The focal length is not positive and finite or a size is below 1.
    """
    _check_size(width, height)
    _check_positive(focal_35mm, "focal_35mm")
    focal = float(focal_35mm) * math.hypot(width, height) / FILM_35MM_DIAGONAL_MM
    return _centred(width, height, focal, source)


def resolve_intrinsics(
    width: int,
    height: int,
    *,
    fx: float | None = None,
    fy: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    focal_px: float | None = None,
    focal_35mm: float | None = None,
    fov_deg: float | None = None,
    exif_focal_35mm: float | None = None,
) -> Intrinsics:
    """Pick the intrinsics from what the user and the photo say, in order of precedence.

    1. Explicit ``fx`` (required if any of ``fx, fy, cx, cy`` is given); ``fy`` defaults to
       ``fx``, ``cx`` and ``cy`` to the image centre. Source ``"explicit"``.
    2. ``focal_px`` or ``focal_35mm`` (not both). Source ``"focal_px"`` / ``"focal_35mm"``.
    3. ``fov_deg``, horizontal. Source ``"fov"``.
    4. ``exif_focal_35mm`` (EXIF ``FocalLengthIn35mmFilm``). Source ``"exif"``. A value that
       is not positive and finite (EXIF writes 0 for unknown) is ignored.
    5. ``DEFAULT_FOV_DEG`` horizontal. Source ``"default"``.

    Every option that is given is validated, also when a higher one wins.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        fx: Horizontal focal length, pixels.
        fy: Vertical focal length, pixels.
        cx: Principal point column, pixels.
        cy: Principal point row, pixels.
        focal_px: Focal length, pixels.
        focal_35mm: 35 mm equivalent focal length, millimetres.
        fov_deg: Horizontal field of view, degrees.
        exif_focal_35mm: The photo's EXIF 35 mm equivalent focal length, millimetres.

    Returns:
        The intrinsics, with ``source`` saying which option was used.

    Raises:
        ParameterError: An option is out of range, ``fy``/``cx``/``cy`` come without ``fx``,
            or both ``focal_px`` and ``focal_35mm`` are given (a ValueError naming it).
    """
    _check_options(
        width,
        height,
        {
            "fx": fx,
            "fy": fy,
            "cx": cx,
            "cy": cy,
            "focal_px": focal_px,
            "focal_35mm": focal_35mm,
            "fov_deg": fov_deg,
        },
    )
    explicit = _explicit(width, height, fx, fy, cx, cy)
    if explicit is not None:
        return explicit
    if focal_px is not None:
        return intrinsics_from_focal_px(width, height, focal_px)
    if focal_35mm is not None:
        return intrinsics_from_focal_35mm(width, height, focal_35mm)
    if fov_deg is not None:
        return intrinsics_from_fov(width, height, fov_deg)
    if exif_focal_35mm is not None and _usable_exif_focal(exif_focal_35mm):
        return intrinsics_from_focal_35mm(width, height, exif_focal_35mm, source="exif")
    return intrinsics_from_fov(width, height, DEFAULT_FOV_DEG, source="default")


def _check_options(width: int, height: int, given: Mapping[str, float | None]) -> None:
    """Validate the image size and every camera option of :func:`resolve_intrinsics` given.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        given: :func:`resolve_intrinsics`'s options ``fx, fy, cx, cy`` (pixels),
            ``focal_px`` (pixels), ``focal_35mm`` (millimetres) and ``fov_deg`` (degrees), by
            name; None when not given.

    Raises:
        ParameterError: An option is out of range, or both ``focal_px`` and ``focal_35mm``
            are given.
    """
    _check_size(width, height)
    for name in ("fx", "fy", "focal_px", "focal_35mm"):
        value = given[name]
        if value is not None:
            _check_positive(value, name)
    for name in ("cx", "cy"):
        value = given[name]
        if value is not None and (not _is_real(value) or not math.isfinite(value)):
            raise ParameterError(
                f"{{{name}}} must be a finite number of pixels, got {_show(value)}", name
            )
    fov_deg, focal_px, focal_35mm = given["fov_deg"], given["focal_px"], given["focal_35mm"]
    if fov_deg is not None:
        _check_fov(fov_deg, "fov_deg")
    if focal_px is not None and focal_35mm is not None:
        raise ParameterError(
            f"give {{focal_px}} or {{focal_35mm}}, not both (got {focal_px} px and "
            f"{focal_35mm} mm)",
            "focal_px",
            "focal_35mm",
        )


def _explicit(
    width: int,
    height: int,
    fx: float | None,
    fy: float | None,
    cx: float | None,
    cy: float | None,
) -> Intrinsics | None:
    """The intrinsics given explicitly, or None when ``fx, fy, cx, cy`` are all None.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        fx: Horizontal focal length, pixels (already checked).
        fy: Vertical focal length, pixels; None: ``fx``.
        cx: Principal point column, pixels; None: the image centre, ``(width - 1) / 2``.
        cy: Principal point row, pixels; None: the image centre, ``(height - 1) / 2``.

    Returns:
        Intrinsics with source "explicit", or None.

    Raises:
        ParameterError: ``fy``, ``cx`` or ``cy`` is given without ``fx``.
    """
    if fx is not None:
        return Intrinsics(
            fx=float(fx),
            fy=float(fx if fy is None else fy),
            cx=(width - 1) / 2.0 if cx is None else float(cx),
            cy=(height - 1) / 2.0 if cy is None else float(cy),
            width=width,
            height=height,
            source="explicit",
        )
    if fy is not None or cx is not None or cy is not None:
        given = [name for name, value in (("fy", fy), ("cx", cx), ("cy", cy)) if value is not None]
        listed = ", ".join("{" + name + "}" for name in given)
        raise ParameterError(f"{{fx}} is required with {listed}, got no {{fx}}", "fx", *given)
    return None


def _usable_exif_focal(value: float) -> bool:
    """Whether an EXIF 35 mm focal length (millimetres) is a real, finite, positive number.

    EXIF writes 0 when the focal length is unknown.
    """
    return _is_real(value) and math.isfinite(value) and value > 0


def _centred(width: int, height: int, focal: float, source: str) -> Intrinsics:
    return Intrinsics(
        fx=focal,
        fy=focal,
        cx=(width - 1) / 2.0,
        cy=(height - 1) / 2.0,
        width=width,
        height=height,
        source=source,
    )


def _is_real(value: object) -> TypeGuard[float]:
    return isinstance(value, Real) and not isinstance(value, bool)


def _show(value: object) -> str:
    """A number as people write it (``-5``, ``0.5``, ``nan``); anything else as its repr."""
    if _is_real(value):
        number = float(value)
        if number.is_integer():
            return str(int(number))
        return repr(number)
    return repr(value)


def _check_positive(value: object, name: str) -> None:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ParameterError(
            f"{{{name}}} must be a positive finite number, got {_show(value)}", name
        )


MIN_FOV_DEG: Final = 1e-3
"""Smallest field of view accepted, degrees (a focal length of about 57,000 image widths)."""


def _check_fov(value: object, name: str) -> None:
    if not _is_real(value) or not MIN_FOV_DEG <= value < 180.0:
        raise ParameterError(
            f"{{{name}}} must be between 0 and 180 degrees (at least {MIN_FOV_DEG:g}, below 180), "
            f"got {_show(value)}",
            name,
        )


def _check_size(width: object, height: object) -> None:
    for value, name in ((width, "width"), (height, "height")):
        if not isinstance(value, Integral) or isinstance(value, bool) or int(value) < 1:
            raise ValueError(
                f"image {name} must be an integer of at least 1 pixel, got {_show(value)}"
            )
