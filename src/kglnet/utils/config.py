"""Settings dataclasses built from plain dicts (parsed YAML / JSON)."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")

# The scalar field types checked on input, and how an error message names each.
_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def _type_problem(key: str, value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit a field annotated ``hint`` (a scalar type or a union of them),
    or None. Other annotations (dicts, lists, nested settings) are left to the class itself."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        allowed = typing.get_args(hint)
    else:
        allowed = (hint,)
    if not all(t in _SCALARS for t in allowed):
        return None
    for t in allowed:
        if t is bool and isinstance(value, bool):
            return None
        if t is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return None
        if t is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
            return None
        if (t is str and isinstance(value, str)) or (t is type(None) and value is None):
            return None
    expected = " or ".join(_SCALARS[t] for t in allowed)
    return f"{key!r} must be {expected}, got {value!r} ({type(value).__name__})"


def dataclass_from_dict(cls: type[T], values: dict[str, Any], what: str) -> T:
    """``cls(**values)``, after naming every key ``cls`` does not have and the allowed ones:
    ``ValueError("unknown <what> ['bogus']; allowed: [...]")``, and every value whose type does
    not fit its field (a string for an integer, ...): ``ValueError("<Class>: 'epochs' must be an
    integer, got '3' (str)")``, before the class computes anything with it."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; allowed: {sorted(allowed)}")
    hints = typing.get_type_hints(cls)
    problems = [p for key, value in values.items() if (p := _type_problem(key, value, hints.get(key))) is not None]
    if problems:
        raise ValueError(f"{cls.__name__}: " + "; ".join(problems))
    return cls(**values)
