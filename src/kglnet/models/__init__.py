"""Models, registered by name (``kglnet models`` lists them)."""

from .registry import count_parameters, create_model, list_models, model_factory, register_model
from . import kglnet as _kglnet  # noqa: F401  (kglnet, kglnet_shared_lowlevel, kglnet_standardized_input)
from . import descriptors as _descriptors  # noqa: F401  (l2net, hardnet, sosnet, hynet, tfeat)
from . import metric_nets as _metric_nets  # noqa: F401  (siamese, pseudo_siamese, two_channel, matchnet)
# The cross-spectral networks of the paper's tables, one module each.
from . import pn_qnet as _pn_qnet  # noqa: F401  (pnnet, qnet)
from . import scfdm as _scfdm  # noqa: F401
from . import afd_net as _afd_net  # noqa: F401
from . import mfd_net as _mfd_net  # noqa: F401  (mfd_net2, mfd_net4, mfd_net6, mfd_net8)
from . import efr_net as _efr_net  # noqa: F401
from . import fil_net as _fil_net  # noqa: F401
from . import spimnet as _spimnet  # noqa: F401
from .kglnet import KGLNet, KGLNetFeatures, KGLNetSharedLowLevel, KGLNetStandardizedInput

__all__ = ["KGLNet", "KGLNetFeatures", "KGLNetSharedLowLevel", "KGLNetStandardizedInput", "count_parameters", "create_model", "list_models", "model_factory", "register_model"]
