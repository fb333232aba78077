"""Triangle strips (glTF mode 5, ``TRIANGLE_STRIP``) from triangle lists, and back.

A strip ``s`` of n indices draws n - 2 triangles; triangle ``j`` is ``(s[j], s[j+1], s[j+2])``
for even ``j`` and ``(s[j+1], s[j], s[j+2])`` for odd ``j`` (the odd ones are wound the other
way round by definition, so that every triangle of a strip faces the same side; glTF writes
the odd ones ``(s[j], s[j+2], s[j+1])``, the same triangle). A grid row of cells, two
triangles each as :func:`depth2mesh.geometry.points.grid_faces` orders them, is one index per
triangle instead of three.

:func:`triangles_to_strip` walks the triangles in their order and continues the strip while
the next triangle shares the last two indices the way the strip's parity needs; elsewhere (a
new row, a cut triangle) it starts a new run, joined to the last by repeating the last index
and the next run's first one (and once more where the parity needs it). The triangles those
joins make repeat an index: they have no area, draw nothing, and glTF readers may drop them
(the Khronos validator reports them as information, ``ACCESSOR_INDEX_TRIANGLE_DEGENERATE``).
glTF forbids primitive-restart values, so degenerate joins are the only way to cut a strip.

:func:`strip_to_triangles` decodes a strip and drops those degenerate triangles: it gives the
triangles back exactly, in their order and rotation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["strip_to_triangles", "triangles_to_strip"]

_EVEN_NEXT = 1
"""Link kind: the earlier triangle sits at an even strip position, the later at an odd one."""
_ODD_NEXT = 2
"""Link kind: the earlier triangle sits at an odd strip position, the later at an even one."""


def _links(triangles: NDArray[np.int64]) -> NDArray[np.int8]:
    """Which triangles can follow the one before in a strip, and at which parity.

    Triangle k = (a, b, c) continues a strip whose last triangle k - 1 = (a', b', c') sits at
    an even position (strip ``a', b', c'``) when ``a == c'`` and ``b == b'`` (the strip
    then reads ``a', b', c', c``), and one at an odd position (strip ``b', a', c'``) when
    ``a == a'`` and ``b == c'``. A triangle with three distinct indices meets at most one.

    Args:
        triangles: (M, 3) int64 triangles with three distinct indices each, M >= 1.

    Returns:
        (M,) int8: :data:`_EVEN_NEXT`, :data:`_ODD_NEXT` or 0 (no link; always 0 for k = 0).
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    links = np.zeros(len(triangles), dtype=np.int8)
    even = (a[1:] == c[:-1]) & (b[1:] == b[:-1])
    odd = (a[1:] == a[:-1]) & (b[1:] == c[:-1])
    np.add(
        even.view(np.int8) * np.int8(_EVEN_NEXT),
        odd.view(np.int8) * np.int8(_ODD_NEXT),
        out=links[1:],
    )
    # two links of one kind in a row would put the middle triangle at both parities: in a
    # run of equal kinds keep every other link, starting with the first (rare: no grid has it)
    if ((links[1:] == links[:-1]) & (links[1:] != 0)).any():
        changes = np.flatnonzero(np.diff(links, prepend=np.int8(-1)) != 0)
        lengths = np.diff(changes, append=len(links))
        offset = np.arange(len(links)) - np.repeat(changes, lengths)
        links[offset % 2 == 1] = 0
    return links


def _ranges(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """``0, 1, ..., n - 1`` for each n of ``lengths`` (>= 1 each), concatenated."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def triangles_to_strip(faces: NDArray[np.integer]) -> NDArray[np.int64]:
    """Encode triangles, in their order, as one triangle strip joined by degenerate triangles.

    Args:
        faces: (M, 3) integer vertex indices of triangles with three distinct indices each,
            M >= 1 (a triangle list, wound as the caller wants them drawn).

    Returns:
        (S,) int64 strip indices, S >= 3: :func:`strip_to_triangles` of it gives ``faces``
        back, in order, each triangle with its winding and first index; between those it
        holds only triangles that repeat an index. S is M + 2 for one run, and at most
        about 3 per triangle more for every run it starts (6 for a lone triangle).

    Raises:
        ValueError: ``faces`` is empty, not (M, 3), or a triangle repeats an index.
    """
    triangles = np.asarray(faces, dtype=np.int64)
    if triangles.ndim != 2 or triangles.shape[1] != 3 or not len(triangles):
        raise ValueError(f"faces must have shape (M, 3) with M >= 1, got {triangles.shape}")
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    if ((a == b) | (b == c) | (c == a)).any():
        raise ValueError("triangles must have three distinct indices to go into a strip")
    links = _links(triangles)
    starts = np.flatnonzero(links == 0)  # each run's first triangle
    # parity of each run's first triangle: odd when the link after it expects so
    following = np.minimum(starts + 1, len(triangles) - 1)
    odd = ((links[following] == _ODD_NEXT) & (starts + 1 < len(triangles))).astype(np.int64)
    sizes = np.diff(starts, append=len(triangles))  # triangles per run
    first = np.where(odd == 1, b[starts], a[starts])
    second = np.where(odd == 1, a[starts], b[starts])
    later = np.arange(len(starts)) > 0
    # run r writes its first two indices and one per triangle; before it (r > 0) a join: the
    # last index so far, then the run's first index, once more where the parity needs it
    bodies = sizes + 2
    before = np.concatenate([[0], odd[:-1]]) + np.concatenate([[0], bodies[:-1]])
    pads = (odd - before) % 2  # the first run's triangle must land at its parity too
    joins = 2 * later + pads
    begins = np.cumsum(joins + bodies) - bodies  # where each run's first index goes
    length = int(begins[-1] + bodies[-1])
    # the triangles' last indices fill every place but the runs' first two and the joins
    heads = np.repeat(begins - joins, joins + 2) + _ranges(joins + 2)
    body = np.ones(length, dtype=bool)
    body[heads] = False
    strip = np.empty(length, dtype=np.int64)
    strip[body] = c
    strip[begins] = first
    strip[begins + 1] = second
    repeats = joins - later  # copies of the run's first index in its join: 0, 1 or 2
    for step in (1, 2):
        where = repeats >= step
        strip[begins[where] - step] = first[where]
    strip[begins[later] - joins[later]] = c[starts[later] - 1]
    return strip


def strip_to_triangles(strip: NDArray[np.integer]) -> NDArray[np.int64]:
    """Decode a triangle strip into its triangles, dropping those that repeat an index.

    Args:
        strip: (S,) integer strip indices (glTF mode 5).

    Returns:
        (M, 3) int64 triangles: ``(s[j], s[j+1], s[j+2])`` for even ``j``,
        ``(s[j+1], s[j], s[j+2])`` for odd ``j``, the degenerate ones left out; (0, 3) for
        fewer than 3 indices.
    """
    indices = np.asarray(strip, dtype=np.int64).reshape(-1)
    if len(indices) < 3:
        return np.zeros((0, 3), dtype=np.int64)
    windows = np.stack([indices[:-2], indices[1:-1], indices[2:]], axis=1)
    odd = np.arange(len(windows)) % 2 == 1
    windows[odd, 0], windows[odd, 1] = indices[1:-1][odd], indices[:-2][odd]
    keep = (
        (windows[:, 0] != windows[:, 1])
        & (windows[:, 1] != windows[:, 2])
        & (windows[:, 2] != windows[:, 0])
    )
    triangles: NDArray[np.int64] = windows[keep]
    return triangles
