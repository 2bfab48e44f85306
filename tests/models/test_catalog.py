"""kglnet.models.catalog and the registry: the torch-free list of models agrees with the code."""

import importlib

import pytest
import torch.nn as nn

from kglnet.models import MODELS, create_model, list_models, model_factory, model_info, register_model
from kglnet.models import catalog, registry


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_catalog_entry_is_registered_by_its_module(name):
    info = model_info(name)
    factory = model_factory(name)
    assert factory.__module__ == f"kglnet.models.{info.module}"
    if isinstance(factory, type):  # a factory function's model is compared in create_model
        assert getattr(factory, "objective", "kglnet") == info.objective
        assert hasattr(factory, "one_pass_shared_stack") == info.shared_stack


def test_the_modules_register_nothing_outside_the_catalog():
    for module in {info.module for info in MODELS.values()}:
        importlib.import_module(f"kglnet.models.{module}")
    assert sorted(registry._REGISTRY) == list_models() == sorted(MODELS)


def test_unknown_names_list_the_known_ones():
    for lookup in (model_info, model_factory, create_model):
        with pytest.raises(KeyError, match="unknown model 'kglnet2'; registered models: afd_net, "):
            lookup("kglnet2")


class _Tiny(nn.Module):
    objective = "hardnet"


def test_registering_refuses_what_the_catalog_does_not_say(monkeypatch):
    with pytest.raises(KeyError, match="unknown model 'my_net'"):
        register_model("my_net")(_Tiny)
    # this test module is not where the catalog places the model
    monkeypatch.setitem(catalog.MODELS, "my_net", catalog.ModelInfo("descriptors", "hardnet"))
    with pytest.raises(ValueError, match="is registered in .*test_catalog, but the catalog"):
        register_model("my_net")(_Tiny)
    monkeypatch.setattr(_Tiny, "__module__", "kglnet.models.descriptors")
    monkeypatch.setitem(catalog.MODELS, "my_net", catalog.ModelInfo("descriptors", "sosnet"))
    with pytest.raises(ValueError, match="trains with objective 'hardnet', but the catalog .* says 'sosnet'"):
        register_model("my_net")(_Tiny)
    monkeypatch.setitem(catalog.MODELS, "my_net", catalog.ModelInfo("descriptors", "hardnet", shared_stack=True))
    with pytest.raises(ValueError, match="shared_stack"):
        register_model("my_net")(_Tiny)
    assert "my_net" not in registry._REGISTRY


def test_a_built_model_that_disagrees_with_its_entry_is_refused(monkeypatch):
    """A factory function (MFD-Net's) can only be compared once it has built its model."""
    monkeypatch.setitem(catalog.MODELS, "mfd_net2", catalog.ModelInfo("mfd_net", "hinge_random_negatives"))
    with pytest.raises(ValueError, match="'mfd_net2' trains with objective 'bce_random_negatives'"):
        create_model("mfd_net2")
