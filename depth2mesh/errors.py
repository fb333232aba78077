"""Exceptions and warnings whose messages are one line a user can act on.

Every message says what was wrong and what to do about it. The CLI prints ``str(error)``
as is, on one line, and exits non-zero; the Python API raises these same exceptions.
"""


class Depth2MeshError(Exception):
    """Base class: an expected failure with a one-line, actionable message."""


class WeightsError(Depth2MeshError):
    """The MiDaS weights could not be found, downloaded, read or matched to the network."""


class InputError(Depth2MeshError):
    """An input photo (or another input file) cannot be used."""


class OutputError(Depth2MeshError):
    """An output cannot be written: it exists already, or its folder is not writable."""


class DeviceError(Depth2MeshError):
    """The requested compute device is unknown or not present on this machine."""


class UnofficialWeightsWarning(UserWarning):
    """The weights file loads, but it is not the official MiDaS v2.1 small release."""
