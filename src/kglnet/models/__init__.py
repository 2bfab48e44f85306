"""Models, registered by name (``kglnet models`` lists them)."""

from .registry import count_parameters, create_model, list_models, register_model
from . import kglnet as _kglnet  # noqa: F401  (registers "kglnet" and "kglnet_shared_lowlevel")
from . import descriptors as _descriptors  # noqa: F401  (l2net, hardnet, sosnet, hynet, tfeat)
from . import metric_nets as _metric_nets  # noqa: F401  (siamese, pseudo_siamese, two_channel, matchnet)
from .kglnet import KGLNet, KGLNetFeatures, KGLNetSharedLowLevel

__all__ = ["KGLNet", "KGLNetFeatures", "KGLNetSharedLowLevel", "count_parameters", "create_model", "list_models", "register_model"]
