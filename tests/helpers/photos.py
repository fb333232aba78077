"""Photos for tests: how a camera stores an upright picture under each EXIF orientation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# For each EXIF orientation (the standard's meaning of the tag), how a camera stores the
# upright picture: 2 mirrored, 3 rotated 180, 4 flipped, 5 transposed, 6 rotated 90 ccw
# (view needs 90 cw), 7 transversed, 8 rotated 90 cw (view needs 90 ccw).
STORE: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}
