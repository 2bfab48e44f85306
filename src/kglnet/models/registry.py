"""Model registry: configs and the command line name a model by a string.

Modelled on timm's registry: a decorator registers a factory under a name; ``create_model``
builds it, ``list_models`` lists the names. Checkpoints store the name so a checkpoint of one
model cannot be loaded silently into another.

The names come from :mod:`kglnet.models.catalog`, which imports no torch; a model's module is
imported the first time the model is built or its factory is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from .catalog import list_models, model_info

if TYPE_CHECKING:
    import torch.nn as nn

_REGISTRY: dict[str, Callable[..., "nn.Module"]] = {}


def register_model(name: str) -> Callable[[Callable[..., "nn.Module"]], Callable[..., "nn.Module"]]:
    """Register a model factory (a class or a function returning an ``nn.Module``) under ``name``,
    which must have its entry in :data:`kglnet.models.catalog.MODELS` naming this module (and, for
    a class, the class's ``objective``)."""

    def decorator(factory: Callable[..., "nn.Module"]) -> Callable[..., "nn.Module"]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        info = model_info(name)  # a name missing from the catalog raises here
        if factory.__module__ != f"kglnet.models.{info.module}":
            raise ValueError(f"model {name!r} is registered in {factory.__module__}, but the catalog "
                             f"(kglnet.models.catalog) places it in kglnet.models.{info.module}")
        if isinstance(factory, type):
            _check_against_catalog(name, factory)
        _REGISTRY[name] = factory
        return factory

    return decorator


def _check_against_catalog(name: str, model) -> None:
    """Refuse a model class or instance whose objective or shared descriptor layers differ from
    its catalog entry (the config checks read the catalog, the training loop the model)."""
    info = model_info(name)
    objective = getattr(model, "objective", "kglnet")
    if objective != info.objective:
        raise ValueError(f"model {name!r} trains with objective {objective!r}, but the catalog "
                         f"(kglnet.models.catalog) says {info.objective!r}")
    if hasattr(model, "one_pass_shared_stack") != info.shared_stack:
        raise ValueError(f"model {name!r}: the catalog's shared_stack ({info.shared_stack}) does not match "
                         "whether the model has one_pass_shared_stack")


def model_factory(name: str) -> Callable[..., "nn.Module"]:
    """The factory (usually the class) registered as ``name``, importing its module on first use;
    unknown names list the known ones."""
    info = model_info(name)
    if name not in _REGISTRY:
        importlib.import_module(f"kglnet.models.{info.module}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs) -> "nn.Module":
    """Build the model registered as ``name``; unknown names list the known ones."""
    model = model_factory(name)(**kwargs)
    _check_against_catalog(name, model)
    model.model_name = name  # recorded in checkpoints
    return model


def count_parameters(model: "nn.Module") -> int:
    """Number of trainable parameters (buffers such as FRN's eps are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["count_parameters", "create_model", "list_models", "model_factory", "register_model"]
