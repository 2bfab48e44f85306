"""Models, registered by name (``kglnet models`` lists them)."""

from .registry import count_parameters, create_model, list_models, register_model
from . import kglnet as _kglnet  # noqa: F401  (registers "kglnet" and "kglnet_shared_lowlevel")
from .kglnet import KGLNet, KGLNetFeatures, KGLNetSharedLowLevel

__all__ = ["KGLNet", "KGLNetFeatures", "KGLNetSharedLowLevel", "count_parameters", "create_model", "list_models", "register_model"]
