"""Slow: the built-in problem is a real learning problem (run with `python -m pytest -m slow`).

Trains KGL-Net on the default built-in data for two CPU epochs (about 4 minutes on 2 cores) and
checks that it already beats raw-pixel NCC and SIFT on the held-out test image pairs.
"""

import pytest

from kglnet.data.synthetic import SyntheticConfig, build_synthetic_dataset
from kglnet.evaluation.runner import evaluate_checkpoint, evaluate_handcrafted
from kglnet.train import TrainConfig, train


@pytest.mark.slow
def test_kglnet_beats_ncc_and_sift_on_built_in_data(tmp_path):
    data = tmp_path / "data"
    build_synthetic_dataset(data, SyntheticConfig(), progress=False)
    train(data / "train.h5", data / "val.h5", tmp_path / "run", TrainConfig(epochs=2, batch_size=16), progress=False)
    test = [str(data / "test.h5")]
    kglnet, _ = evaluate_checkpoint(tmp_path / "run" / "best.pt", test, ["test"], device="cpu")
    ncc, _ = evaluate_handcrafted("ncc", test, ["test"])
    sift, _ = evaluate_handcrafted("sift", test, ["test"])
    ours = kglnet["test"]["fpr95_metric"]
    assert ours < ncc["test"]["fpr95_metric"] - 5
    assert ours < sift["test"]["fpr95_metric"] - 5
