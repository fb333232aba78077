"""The parity fixtures' names (``shared/midas/images`` and ``official_outputs``)."""

NAMES = [
    "astronaut",
    "camera_gray",
    "chelsea",
    "coffee",
    "motorcycle_left",
    "rocket",
    "tall_strip",
    "tiny_37x23",
]
