"""TorchScript export of a checkpoint's networks (kglnet.export): outputs equal PyTorch's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from kglnet import export as export_mod
from kglnet.checkpoint import CheckpointError, save_checkpoint
from kglnet.export import ExportError, export_checkpoint, main_args
from kglnet.models import create_model

# torch 2.13 marks torch.jit as deprecated; TorchScript is what this module exports.
pytestmark = pytest.mark.filterwarnings(r"ignore:.*torch\.jit.*:DeprecationWarning")

BATCH_SIZES = (1, 3, 7)
ATOL = 1e-5
PATCH = [1, 64, 64]


def trained_like(name: str, seed: int) -> torch.nn.Module:
    """A model whose weights and BatchNorm statistics are not the initial ones (a trained
    checkpoint's would not be either: eval-mode BatchNorm must use the saved statistics)."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_pairs(batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.rand(batch_size, *PATCH, generator=g), torch.rand(batch_size, *PATCH, generator=g)


def exported(name: str, seed: int, tmp_path_factory) -> tuple[torch.nn.Module, Path, Path, dict]:
    model = trained_like(name, seed)
    root = tmp_path_factory.mktemp(f"export_{name}")
    ckpt = root / "best.pt"
    save_checkpoint(ckpt, model, epoch=3)
    out = root / "exported"
    manifest = export_checkpoint(ckpt, out)
    return model, ckpt, out, manifest


@pytest.fixture(scope="module")
def kglnet_export(tmp_path_factory):
    return exported("kglnet", 0, tmp_path_factory)


@pytest.fixture(scope="module")
def hardnet_export(tmp_path_factory):
    return exported("hardnet", 1, tmp_path_factory)


@pytest.fixture(scope="module")
def two_channel_export(tmp_path_factory):
    return exported("two_channel", 2, tmp_path_factory)


def load(path: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path))


# --- outputs equal PyTorch's -------------------------------------------------------------------

def test_kglnet_exports_equal_pytorch_at_batch_sizes_1_3_7(kglnet_export):
    model, _, out, _ = kglnet_export
    assert sorted(p.name for p in out.iterdir()) == ["descriptor_other.pt", "descriptor_vis.pt", "export.json",
                                                     "metric.pt"]
    desc_vis, desc_other, metric = (load(out / f) for f in ("descriptor_vis.pt", "descriptor_other.pt", "metric.pt"))
    with torch.no_grad():
        for b in BATCH_SIZES:
            vis, other = random_pairs(b, b)
            ref_vis, ref_other, ref_prob = model(vis, other)
            got_vis, got_other, got_prob = desc_vis(vis), desc_other(other), metric(vis, other)
            assert got_vis.shape == (b, 128) and got_other.shape == (b, 128) and got_prob.shape == (b,)
            torch.testing.assert_close(got_vis, ref_vis, atol=ATOL, rtol=0)
            torch.testing.assert_close(got_other, ref_other, atol=ATOL, rtol=0)
            torch.testing.assert_close(got_prob, ref_prob, atol=ATOL, rtol=0)
            torch.testing.assert_close(got_vis.norm(dim=1), torch.ones(b), atol=1e-5, rtol=0)
    # the two low-level stacks differ, so the two descriptor files are different networks
    vis, _ = random_pairs(3, 0)
    assert not torch.allclose(desc_vis(vis), desc_other(vis))


def test_hardnet_descriptor_equals_pytorch_for_both_spectra(hardnet_export):
    model, _, out, _ = hardnet_export
    assert sorted(p.name for p in out.iterdir()) == ["descriptor.pt", "export.json"]
    desc = load(out / "descriptor.pt")
    with torch.no_grad():
        for b in BATCH_SIZES:
            vis, other = random_pairs(b, b)
            ref_vis, ref_other, ref_prob = model(vis, other)
            assert ref_prob is None
            torch.testing.assert_close(desc(vis), ref_vis, atol=ATOL, rtol=0)
            torch.testing.assert_close(desc(other), ref_other, atol=ATOL, rtol=0)
            assert desc(vis).shape == (b, 128)


def test_two_channel_metric_equals_pytorch(two_channel_export):
    model, _, out, _ = two_channel_export
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metric.pt"]
    metric = load(out / "metric.pt")
    with torch.no_grad():
        for b in BATCH_SIZES:
            vis, other = random_pairs(b, b)
            _, _, ref_prob = model(vis, other)
            got = metric(vis, other)
            assert got.shape == (b,) and got.dtype == torch.float32
            torch.testing.assert_close(got, ref_prob, atol=ATOL, rtol=0)
            assert bool(((got >= 0) & (got <= 1)).all())


# --- export.json ---------------------------------------------------------------------------------

def test_manifest_fields(kglnet_export, hardnet_export, two_channel_export):
    for (_, ckpt, out, returned), name, files in [
        (kglnet_export, "kglnet", {"descriptor_vis.pt", "descriptor_other.pt", "metric.pt"}),
        (hardnet_export, "hardnet", {"descriptor.pt"}),
        (two_channel_export, "two_channel", {"metric.pt"}),
    ]:
        manifest = json.loads((out / "export.json").read_text())
        assert manifest == returned
        assert manifest["model_name"] == name
        assert manifest["format"] == "torchscript"
        assert manifest["checkpoint_sha256"] == sha256(ckpt)
        assert manifest["checkpoint"] == str(ckpt.resolve())
        assert manifest["torch_version"] == torch.__version__
        assert manifest["verified_batch_sizes"] == [1, 3, 7]
        assert set(manifest["files"]) == files
        for filename, entry in manifest["files"].items():
            assert entry["sha256"] == sha256(out / filename)
            for spec in entry["inputs"]:
                assert spec["shape"] == ["B", 1, 64, 64] and spec["dtype"] == "float32"
            (output,) = entry["outputs"]
            assert output["dtype"] == "float32"
            if filename == "metric.pt":
                assert [s["name"] for s in entry["inputs"]] == ["vis", "other"]
                assert output["shape"] == ["B"] and output["name"] == "probability"
            else:
                assert [s["name"] for s in entry["inputs"]] == ["patches"]
                assert output["shape"] == ["B", 128] and output["l2_normalized"] is True


# --- bad inputs ----------------------------------------------------------------------------------

def test_exported_modules_reject_bad_inputs(kglnet_export, two_channel_export):
    desc = load(kglnet_export[2] / "descriptor_vis.pt")
    metric = load(two_channel_export[2] / "metric.pt")
    good = torch.rand(2, 1, 64, 64)
    with pytest.raises(torch.jit.Error, match=r"patches: expected shape \[B,1,64,64\]"):
        desc(torch.rand(2, 1, 32, 32))
    with pytest.raises(torch.jit.Error, match="patches: expected a float32"):
        desc(good.double())
    with pytest.raises(torch.jit.Error, match="other: expected shape"):
        metric(good, torch.rand(2, 3, 64, 64))
    with pytest.raises(torch.jit.Error, match="batches differ in size: 2 vs 3"):
        metric(good, torch.rand(3, 1, 64, 64))


def test_missing_or_bad_checkpoint_raises_value_error_naming_it(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match="does not exist") as info:
        export_checkpoint(missing, tmp_path / "out")
    assert str(missing) in str(info.value) and isinstance(info.value, CheckpointError)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint") as info:
        export_checkpoint(garbage, tmp_path / "out")
    assert str(garbage) in str(info.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a kglnet checkpoint") as info:
        export_checkpoint(foreign, tmp_path / "out")
    assert str(foreign) in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.fixture()
def small_checkpoint(tmp_path) -> Path:
    path = tmp_path / "two_channel.pt"
    save_checkpoint(path, create_model("two_channel"))
    return path


@pytest.mark.parametrize("fmt, message", [
    ("tflite", "unknown export format 'tflite'"),
    ("onnx", "ONNX export is not"),
])
def test_unknown_or_unavailable_format_raises_value_error_naming_checkpoint(small_checkpoint, tmp_path, fmt, message):
    with pytest.raises(ValueError, match=message) as info:
        export_checkpoint(small_checkpoint, tmp_path / "out", fmt=fmt)
    assert str(small_checkpoint) in str(info.value) and "torchscript" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_raises(small_checkpoint, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(ValueError, match="existing file") as info:
        export_checkpoint(small_checkpoint, target)
    assert str(target) in str(info.value)


def test_failed_verification_leaves_no_files(small_checkpoint, tmp_path, monkeypatch):
    """A verification failure aborts before any rename: no .pt, no temporary file, no export.json
    (a stale export.json from an earlier export is removed too)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "export.json").write_text("{}")
    monkeypatch.setattr(export_mod, "VERIFY_ATOL", -1.0)   # every comparison fails
    with pytest.raises(ExportError, match=r"metric\.pt: exported output differs"):
        export_checkpoint(small_checkpoint, out)
    assert list(out.iterdir()) == []


def test_reexport_replaces_files_and_main_args_prints_summary(small_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main_args(small_checkpoint, out, "torchscript") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"out_dir": str(out), "model_name": "two_channel", "format": "torchscript",
                       "files": ["metric.pt", "export.json"]}
    first = sha256(out / "metric.pt")
    other_ckpt = tmp_path / "other.pt"
    save_checkpoint(other_ckpt, trained_like("two_channel", 5))
    assert main_args(other_ckpt, out, "torchscript") == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metric.pt"]   # no temporary files left
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["checkpoint_sha256"] == sha256(other_ckpt)
    assert manifest["files"]["metric.pt"]["sha256"] == sha256(out / "metric.pt") != first


def test_export_command_line(untrained_checkpoint, tmp_path, capsys):
    from kglnet.cli import main

    out = tmp_path / "exported"
    assert main(["export", "--checkpoint", str(untrained_checkpoint("hardnet")), "--out-dir", str(out)]) == 0
    assert (out / "descriptor.pt").is_file() and (out / "export.json").is_file()
    assert main(["export", "--checkpoint", str(untrained_checkpoint("hardnet")), "--out-dir", str(out),
                 "--format", "pickle"]) == 2
    assert "kglnet export: error:" in capsys.readouterr().err


def test_standardized_input_variant_exports_with_its_standardisation(tmp_path_factory):
    """The standardisation lives in the low-level stacks, so the exported descriptor and metric
    files carry it: they equal the PyTorch model and ignore each spectrum's brightness and contrast."""
    model, _, out, manifest = exported("kglnet_standardized_input", 3, tmp_path_factory)
    assert manifest["model_name"] == "kglnet_standardized_input"
    desc_vis, desc_other, metric = (load(out / f) for f in ("descriptor_vis.pt", "descriptor_other.pt", "metric.pt"))
    vis, other = random_pairs(3, 3)
    with torch.no_grad():
        ref_vis, ref_other, ref_prob = model(vis, other)
        torch.testing.assert_close(desc_vis(vis), ref_vis, atol=ATOL, rtol=0)
        torch.testing.assert_close(desc_other(other), ref_other, atol=ATOL, rtol=0)
        torch.testing.assert_close(metric(vis, other), ref_prob, atol=ATOL, rtol=0)
        torch.testing.assert_close(desc_vis(0.5 * vis + 0.25), ref_vis, atol=1e-4, rtol=0)
        torch.testing.assert_close(metric(0.5 * vis + 0.25, 0.8 * other + 0.1), ref_prob, atol=1e-4, rtol=0)
