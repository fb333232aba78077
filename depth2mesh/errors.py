"""Exceptions and warnings whose messages are one line a user can act on.

Every message says what was wrong and what to do about it. The CLI prints ``str(error)``
as is, on one line, and exits non-zero; the Python API raises these same exceptions.
A :class:`ParameterError` names a Python parameter (``near``), and each front end says it its
own way (the CLI ``--near``, the web page "Near").
"""

import re
from collections.abc import Callable
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{(\w+)(?:=([^{}]*))?\}")
"""``{parameter}`` or ``{parameter=value}`` in a message template (value as Python writes it)."""


class NamesParameters:
    """A message template that names Python parameters, each front end its own way.

    The template holds ``{name}`` for a parameter (``str()``: "name", the CLI "--name") and
    ``{name=value}`` for a parameter set to a value, the value as Python writes it
    (``str()``: "name=value", the CLI "--name value", or "--name" alone for ``True``).
    Braces that do not name one of :attr:`parameters` stay as they are.

    Attributes:
        template: The message with its placeholders.
        parameters: The parameters it names; the first is the one the error is about.
    """

    template: str
    parameters: tuple[str, ...]

    def render(
        self, name: Callable[[str], str], setting: Callable[[str, str], str] | None = None
    ) -> str:
        """The message with each ``{parameter}`` given as ``name(parameter)``.

        Args:
            name: How a parameter is named (the CLI: its option).
            setting: How ``{parameter=value}`` is said, given the parameter and the value's
                Python text; None: ``name(parameter)`` + "=" + the value.
        """

        def one(match: re.Match[str]) -> str:
            parameter, value = match.group(1), match.group(2)
            if parameter not in self.parameters:
                return match.group(0)
            if value is None:
                return name(parameter)
            if setting is None:
                return f"{name(parameter)}={value}"
            return setting(parameter, value)

        return _PLACEHOLDER.sub(one, self.template)

    def __str__(self) -> str:
        return self.render(str)


class Depth2MeshError(Exception):
    """Base class: an expected failure with a one-line, actionable message."""


class WeightsError(Depth2MeshError):
    """A model's weights could not be found, downloaded, read or matched to the network."""


class InputError(Depth2MeshError):
    """An input photo (or another input file) cannot be used."""


class OutputError(Depth2MeshError):
    """An output cannot be written: it exists already, or its folder is not writable."""


class DeviceError(Depth2MeshError):
    """The requested compute device is unknown or not present on this machine."""


class OutputKindError(Depth2MeshError, ValueError):
    """A relative model was asked for metres, or a metric model for disparity."""


class UnofficialWeightsWarning(UserWarning):
    """The weights file loads, but it is not the model's official release."""


class ParameterError(NamesParameters, ValueError):
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


class TemplatedError(NamesParameters, Depth2MeshError):
    """A :class:`Depth2MeshError` whose message names parameters (see :class:`NamesParameters`).

    Args:
        template: One line; ``{name}`` or ``{name=value}`` for each parameter it names.
        parameters: The parameters the template names.
    """

    def __init__(self, template: str, *parameters: str) -> None:
        super().__init__(template, *parameters)
        self.template = template
        self.parameters = parameters


class OutputExistsError(TemplatedError, OutputError):
    """A result exists already and ``overwrite`` is not set.

    ``str()`` says "pass overwrite=True to replace it"; the CLI says "--overwrite".

    Args:
        path: The existing file (``.path``).
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} exists already: pass {{overwrite=True}} to replace it", "overwrite"
        )
        self.path = path

    def __reduce__(self) -> tuple[type["OutputExistsError"], tuple[Path]]:
        return (OutputExistsError, (self.path,))


class InputParameterError(TemplatedError, InputError):
    """An :class:`InputError` whose message names parameters (e.g. ``max_pixels``)."""


class DeviceParameterError(TemplatedError, DeviceError):
    """A :class:`DeviceError` whose message names parameters (e.g. ``backend='torch'``)."""
