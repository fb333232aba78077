"""Exceptions and warnings whose messages are one line a user can act on.

Every message says what was wrong and what to do about it. The CLI prints ``str(error)``
as is, on one line, and exits non-zero; the Python API raises these same exceptions.
A :class:`ParameterError` names a Python parameter (``near``), and each front end says it its
own way (the CLI ``--near``, the web page "Near").
"""

from collections.abc import Callable


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


class ParameterError(ValueError):
    """A parameter's value cannot work; the message names it by its Python name.

    The message is a template in which parameter names stand in braces (``"{far} must be
    greater than {near} (5.0), got 2.0"``): ``str(error)`` gives them as they are ("far must
    be greater than near ..."), and :meth:`render` lets each front end name them its own way
    (the CLI ``--far``, the web page its control's label).

    Args:
        template: One line; ``{name}`` for each parameter it names.
        parameter: The parameter whose value is wrong (``.parameter``).
        others: Further parameters the template names.
    """

    def __init__(self, template: str, parameter: str, *others: str) -> None:
        super().__init__(template, parameter, *others)
        self.template = template
        self.parameter = parameter
        self.parameters = (parameter, *others)

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each parameter given as ``name(parameter)``."""
        text = self.template
        for parameter in self.parameters:
            text = text.replace("{" + parameter + "}", name(parameter))
        return text

    def __str__(self) -> str:
        return self.render(str)
