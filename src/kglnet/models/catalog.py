"""What is known about each registered model without importing torch.

Every Snakemake run checks its config against the registered models, and every ``kglnet``
command reads the names. Importing the model modules costs torch's import (about 2.5 s on a
2-core CPU), paid by every ``snakemake -n`` and every config check. So the names live here with
the facts the checks need: the module that registers the model, its training objective and
whether it has KGL-Net's shared descriptor layers. :func:`kglnet.models.registry.register_model`
refuses a name that is missing here or disagrees with it, and ``create_model`` compares the built
model with its entry, so this list cannot drift from the classes.

To add a model: its line here, then ``@register_model(name)`` on its class or factory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: ``module`` (under ``kglnet.models``) registers it; ``objective`` is
    "kglnet" (KGL-Net's loss, set by ``TrainConfig.loss``) or a key of
    :data:`kglnet.objectives.OBJECTIVES` (a baseline's paper loss); ``shared_stack``: it has
    KGL-Net's shared descriptor layers (``TrainConfig.one_pass_shared_stack`` applies)."""

    module: str
    objective: str
    shared_stack: bool = False


_KGLNET = ModelInfo("kglnet", "kglnet", shared_stack=True)
_BCE = "bce_random_negatives"

MODELS: dict[str, ModelInfo] = {
    "kglnet": _KGLNET,
    "kglnet_shared_lowlevel": _KGLNET,
    "kglnet_standardized_input": _KGLNET,
    # descriptor learning (32x32 inputs)
    "l2net": ModelInfo("descriptors", "l2net"),
    "hardnet": ModelInfo("descriptors", "hardnet"),
    "sosnet": ModelInfo("descriptors", "sosnet"),
    "hynet": ModelInfo("descriptors", "hynet"),
    "tfeat": ModelInfo("descriptors", "tfeat"),
    # metric learning (Aguilera et al. 2016; MatchNet)
    "siamese": ModelInfo("metric_nets", "hinge_random_negatives"),
    "pseudo_siamese": ModelInfo("metric_nets", "hinge_random_negatives"),
    "two_channel": ModelInfo("metric_nets", "hinge_random_negatives"),
    "matchnet": ModelInfo("metric_nets", _BCE),
    # the cross-spectral networks of the paper's tables
    "pnnet": ModelInfo("pn_qnet", "softpn"),
    "qnet": ModelInfo("pn_qnet", "quadruplet"),
    "scfdm": ModelInfo("scfdm", _BCE),
    "afd_net": ModelInfo("afd_net", _BCE),
    "efr_net": ModelInfo("efr_net", _BCE),
    "fil_net": ModelInfo("fil_net", _BCE),
    "mfd_net2": ModelInfo("mfd_net", _BCE),
    "mfd_net4": ModelInfo("mfd_net", _BCE),
    "mfd_net6": ModelInfo("mfd_net", _BCE),
    "mfd_net8": ModelInfo("mfd_net", _BCE),
    "spimnet": ModelInfo("spimnet", _BCE),
}


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def model_info(name: str) -> ModelInfo:
    """The catalog entry of ``name``; an unknown name raises KeyError listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None
