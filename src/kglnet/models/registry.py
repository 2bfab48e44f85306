"""Model registry: configs and the command line name a model by a string.

Modelled on timm's registry: a decorator registers a factory under a name; ``create_model``
builds it, ``list_models`` lists the names. Checkpoints store the name so a checkpoint of one
model cannot be loaded silently into another.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory (a class or a function returning an ``nn.Module``) under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The factory (usually the class) registered as ``name``, for class-level checks without
    building the model; unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name``; unknown names list the known ones."""
    model = model_factory(name)(**kwargs)
    model.model_name = name  # recorded in checkpoints
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as FRN's eps are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
