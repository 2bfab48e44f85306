"""Shared fixtures: small real pair files made by the project's own generator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Two threads everywhere, as on the project's CI machines: results and timings stay comparable.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """data dir with train.h5 / val.h5 / test.h5 from SyntheticConfig.tiny() (a few hundred pairs)."""
    from kglnet.data.synthetic import SyntheticConfig, build_synthetic_dataset

    out = tmp_path_factory.mktemp("tiny_data")
    build_synthetic_dataset(out, SyntheticConfig.tiny(image_size=160, keypoints_per_image=16), progress=False)
    return out


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory):
    """``make(name) -> Path``: a checkpoint of the registered model ``name`` with its seed-0
    initial weights (made once per session and name)."""
    from kglnet.checkpoint import save_checkpoint
    from kglnet.models import create_model

    folder = tmp_path_factory.mktemp("untrained_ckpt")

    def make(name: str) -> Path:
        path = folder / f"{name}.pt"
        if not path.exists():
            torch.manual_seed(0)
            save_checkpoint(path, create_model(name))
        return path

    return make


@pytest.fixture(scope="session")
def workflow_copy():
    """``make(dest) -> dest``: a copy of the workflow (Snakefile, workflow/, config/, params.yaml)
    at ``dest``, without data, checkpoints or results, for Snakemake runs in a scratch folder."""
    import shutil

    def make(dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("Snakefile", "workflow", "config", "params.yaml"):
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
        return dest

    return make


@pytest.fixture
def nan_loss(monkeypatch):
    """Every training loss of kglnet.train becomes NaN (the real loss times NaN, so the graph and
    its gradients exist): what a diverging run looks like to the training loop."""
    from kglnet import train as train_module

    real_loss = train_module.kglnet_loss

    def loss(*args, **kwargs):
        terms = real_loss(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(train_module, "kglnet_loss", loss)
