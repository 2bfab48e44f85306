"""Models, registered by name (``kglnet models`` lists them)."""

from .registry import count_parameters, create_model, list_models, register_model
from . import kglnet as _kglnet  # noqa: F401  (registers "kglnet")
from .kglnet import KGLNet, KGLNetFeatures

__all__ = ["KGLNet", "KGLNetFeatures", "count_parameters", "create_model", "list_models", "register_model"]
