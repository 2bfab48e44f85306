"""Models, registered by name (``kglnet models`` lists them).

Importing this package imports no torch: the names and what the config checks need to know of
each model are in :mod:`.catalog`, and a model's module is imported when the model is first
built, its factory asked for, or its class named (``from kglnet.models import KGLNet``).
"""

from .catalog import MODELS, ModelInfo, list_models, model_info
from .registry import count_parameters, create_model, model_factory, register_model

# Classes exported by name, each from the module that defines it (imported on first access).
_LAZY_CLASSES = {
    "KGLNet": "kglnet",
    "KGLNetFeatures": "kglnet",
    "KGLNetSharedLowLevel": "kglnet",
    "KGLNetStandardizedInput": "kglnet",
}


def __getattr__(name: str):
    if name in _LAZY_CLASSES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODELS", "ModelInfo", "KGLNet", "KGLNetFeatures", "KGLNetSharedLowLevel", "KGLNetStandardizedInput",
           "count_parameters", "create_model", "list_models", "model_factory", "model_info", "register_model"]
