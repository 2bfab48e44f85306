"""Settings dataclasses built from plain dicts (parsed YAML / JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], values: dict[str, Any], what: str) -> T:
    """``cls(**values)``, after naming every key ``cls`` does not have and the allowed ones:
    ``ValueError("unknown <what> ['bogus']; allowed: [...]")``."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; allowed: {sorted(allowed)}")
    return cls(**values)
