"""kglnet.settings: the training settings are checked without torch, and agree with the code
that uses them (the objectives' arguments, the models' catalog)."""

import inspect
import subprocess
import sys

import pytest

from kglnet.objectives import OBJECTIVES
from kglnet.settings import _LOOP_ARGUMENTS, OBJECTIVE_OPTIONS, TrainConfig


def test_objective_options_are_the_objectives_arguments():
    """OBJECTIVE_OPTIONS is a torch-free copy of the objectives' signatures: it must not drift."""
    assert set(OBJECTIVE_OPTIONS) == set(OBJECTIVES)
    for name, objective in OBJECTIVES.items():
        arguments = tuple(p for p in inspect.signature(objective).parameters if p not in _LOOP_ARGUMENTS)
        assert OBJECTIVE_OPTIONS[name] == arguments, name


def test_the_workflow_config_check_imports_no_torch():
    """What workflow/rules/common.smk imports to check a config (every `snakemake` run pays it)."""
    code = ("import sys\n"
            "import kglnet.ablations, kglnet.zoo, kglnet.data.converters, kglnet.data.mini\n"
            "from kglnet.models import list_models\n"
            "from kglnet.settings import TrainConfig\n"
            "TrainConfig.from_dict({'model': 'qnet', 'optimizer': 'sgd', 'objective_options': {'negatives': 'cross'}})\n"
            "TrainConfig.from_dict({'model': 'kglnet', 'one_pass_shared_stack': True, 'loss': {'bce_weight': 0}})\n"
            "assert len(list_models()) > 20\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("settings, message", [
    # a model built by a factory function (no class attribute to read): its objective is the catalog's
    ({"model": "mfd_net2", "objective_options": {"margin": 1.0}}, "'bce_random_negatives' of model 'mfd_net2'"),
    ({"model": "mfd_net4", "one_pass_shared_stack": True}, "shared descriptor layers"),
    ({"model": "hardnet", "one_pass_shared_stack": True}, "shared descriptor layers"),
])
def test_model_facts_come_from_the_catalog(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(settings)
    assert TrainConfig.from_dict({"model": "kglnet_shared_lowlevel", "one_pass_shared_stack": True})
