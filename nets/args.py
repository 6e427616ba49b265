"""Argument checks of nets beyond `emu.checks`: a layer size, an int in [1, `MAX_SIZE`]; an argument that
must be of a given class; a progress stream; a list of layer names. Each is refused with a one-line error
naming the function and the parameter. Imports `emu.checks`.

>>> check_size(3, "Linear", "n_in")
3
>>> check_size(2**70, "Linear", "n_in")
Traceback (most recent call last):
...
ValueError: Linear: n_in=1180591620717411303424 outside the allowed range [1, 2147483648]
>>> check_instance(None, tuple, "Residual", "body", "a Sequential")
Traceback (most recent call last):
...
TypeError: Residual: body=None must be a Sequential
"""

from __future__ import annotations

from typing import Any

from emu.checks import check_int

__all__ = ["MAX_SIZE", "check_instance", "check_layer_names", "check_size", "check_stream"]

#: The largest layer size (features, channels, a group's size) a constructor takes: 2^31. numpy refuses an
#: array with a dimension past 2^63 in words of its own; memory runs out long before either.
MAX_SIZE = 2**31


def check_size(value: object, func: str, name: str) -> int:
    """``value`` as an int in [1, `MAX_SIZE`] (`emu.checks.check_int`: TypeError for a non-int or a bool,
    ValueError outside the range)."""
    return check_int(value, func, name, 1, MAX_SIZE)


def check_stream(stream: object, func: str) -> None:
    """Refuse a ``stream`` (where progress is written) that is neither None (stderr) nor has ``write()``.

    >>> check_stream(5, "evaluate")
    Traceback (most recent call last):
    ...
    TypeError: evaluate: stream=5 must be None (stderr) or a text stream with write()
    """
    if stream is not None and not callable(getattr(stream, "write", None)):
        raise TypeError(f"{func}: stream={stream!r} must be None (stderr) or a text stream with write()")


def check_instance(value: Any, cls: type | tuple[type, ...], func: str, name: str, what: str) -> Any:
    """``value`` if it is an instance of ``cls``, else a TypeError ``func: name=value must be what`` (the
    value's type in place of a repr that is long or spans lines)."""
    if not isinstance(value, cls):
        shown = repr(value)
        shown = f"={shown}" if len(shown) <= 60 and "\n" not in shown else f" of type {type(value).__name__}"
        raise TypeError(f"{func}: {name}{shown} must be {what}")
    return value


def check_layer_names(layers: Any, where: str) -> list[str] | None:
    """``layers`` (None: every weighted layer) as a list of layer names: a string is one name, not its
    characters, so it is refused (give ``["linear1"]``), as is anything but a list or tuple of strings,
    and an empty list (it names no layer)."""
    if layers is None:
        return None
    if not isinstance(layers, (list, tuple)) or not all(isinstance(n, str) for n in layers):
        raise TypeError(f"{where}: layers={layers!r} must be a list of layer names (e.g. ['linear1']) or None"
                        " (every weighted layer)")
    if not layers:
        raise ValueError(f"{where}: layers={layers!r} names no layer; give at least one name, or None (every"
                         " weighted layer)")
    return list(layers)
