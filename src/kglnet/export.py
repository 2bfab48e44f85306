"""Export a checkpoint's trained networks to TorchScript, for inference without the kglnet package.

``export_checkpoint(checkpoint, out_dir)`` loads the model with :func:`kglnet.checkpoint.load_model`
and writes into ``out_dir``:

- KGL-Net (``kglnet``, ``kglnet_shared_lowlevel``, ``kglnet_standardized_input``): ``descriptor_vis.pt``
  and ``descriptor_other.pt``
  (one modality's patches float32 [B,1,64,64] in [0,1] -> L2-normalised descriptors float32 [B,128];
  ``vis`` is the visible patch, ``other`` the NIR / thermal / SAR patch) and ``metric.pt``
  (``vis``, ``other`` float32 [B,1,64,64] -> match probability float32 [B]);
- a descriptor-only model (:class:`~kglnet.models.descriptors.DescriptorModel`: l2net, hardnet,
  sosnet, hynet, tfeat, pnnet, qnet): ``descriptor.pt`` (one network for both spectra, [B,1,64,64]
  -> [B,D], D = 128, 256 for pnnet / qnet);
- a metric-only model (:class:`~kglnet.models.metric_nets.MetricModel`): ``metric.pt``;
- ``export.json``: model name, checkpoint path and sha256, every file's inputs / outputs (shapes,
  dtypes), sha256, the torch version and the format.

Each network is traced (``torch.jit.trace``) at batch size 2 and wrapped in a small scripted
module that checks its inputs (shape [B,1,64,64], float32, equal batch sizes for pairs) and raises
an error naming the input, which a bare trace would not do. Before a file is renamed into place it
is loaded back with ``torch.jit.load`` and its outputs are compared with the PyTorch model's at batch
sizes 1, 3 and 7 (atol 1e-5); a mismatch aborts the export. Every file is written to a temporary
name and renamed only when all files are complete and verified; ``export.json`` is removed at the
start and written last, so its presence marks a complete export.

Only TorchScript is built: the ``onnx`` package is not installed in this project's environment,
so ONNX export could not be built or tested (``fmt="onnx"`` raises a ValueError saying so).
The exported files run on the CPU; ``torch.jit.load(path, map_location="cuda")`` moves them to a GPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from . import __version__
from .checkpoint import load_model
from .models.descriptors import DescriptorModel
from .models.kglnet import PATCH_SIZE, KGLNet
from .models.layers import l2_normalize
from .models.metric_nets import MetricModel
from .utils.io import atomic_path, atomic_write_json, sha256_file

FORMATS = ("torchscript",)
MANIFEST = "export.json"
TRACE_BATCH_SIZE = 2
VERIFY_BATCH_SIZES = (1, 3, 7)
VERIFY_ATOL = 1e-5


class ExportError(ValueError):
    """An export that cannot be done; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def onnx_available() -> bool:
    """Whether the ``onnx`` package is importable (it is not in this project's environment)."""
    return importlib.util.find_spec("onnx") is not None


# --- the networks that are traced -------------------------------------------------------------

class KGLNetDescriptor(nn.Module):
    """One modality's KGL-Net descriptor branch: [B,1,64,64] -> L2-normalised [B,128].

    The same computation as ``KGLNet.features(...).desc_vis`` / ``desc_other``: low-level stack of
    the modality, shared layers 5-8, conv 8x8 -> 128, BatchNorm, L2 normalisation.
    """

    def __init__(self, model: KGLNet, modality: str) -> None:
        super().__init__()
        self.low = model.low if model.shared_low_level else getattr(model, f"low_{modality}")
        self.high = model.desc_high
        self.proj = model.desc_proj
        self.bn = model.desc_bn

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.bn(self.proj(self.high(self.low(patches)))).flatten(1))


class KGLNetMetric(nn.Module):
    """KGL-Net's metric branch alone: (vis, other) [B,1,64,64] -> match probability [B].

    The low-level stacks, the metric branch's layers 5-8 per modality and the metric head; the
    descriptor branch is not run. (In ``kglnet_shared_lowlevel`` the shared stack runs on each
    modality separately, which is what the model's single concatenated pass computes.)
    """

    def __init__(self, model: KGLNet) -> None:
        super().__init__()
        self.low_vis = model.low if model.shared_low_level else model.low_vis
        self.low_other = model.low if model.shared_low_level else model.low_other
        self.high_vis = model.metric_high_vis
        self.high_other = model.metric_high_other
        self.head = model.metric_head

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        diff_vis = self.high_vis(self.low_vis(vis))
        diff_other = self.high_other(self.low_other(other))
        return torch.sigmoid(self.head(diff_vis, diff_other))


class DescriptorNetwork(nn.Module):
    """A descriptor-only model's tower: [B,1,64,64] -> L2-normalised [B,D] (either spectrum)."""

    def __init__(self, model: DescriptorModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.model.embed(patches))


class MetricNetwork(nn.Module):
    """A metric-only model: (vis, other) [B,1,64,64] -> match probability [B]."""

    def __init__(self, model: MetricModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.pair_logits(vis, other))


# --- scripted input checks around the traced networks -----------------------------------------

def check_exported_patches(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``x`` is float32 [B,1,64,64] with B >= 1 (compiled into the export)."""
    if x.dim() != 4 or x.size(0) < 1 or x.size(1) != 1 or x.size(2) != 64 or x.size(3) != 64:
        raise ValueError(name + ": expected shape [B,1,64,64], got " + str(x.shape))
    if x.dtype != torch.float32:
        raise ValueError(name + ": expected a float32 tensor in [0,1] (uint8 patches / 255)")


class CheckedPatches(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        check_exported_patches(patches, "patches")
        return self.net(patches)


class CheckedPair(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        check_exported_patches(vis, "vis")
        check_exported_patches(other, "other")
        if vis.size(0) != other.size(0):
            raise ValueError("vis and other batches differ in size: " + str(vis.size(0)) + " vs " + str(other.size(0)))
        return self.net(vis, other)


# --- what each file is --------------------------------------------------------------------------

def _patch_spec(name: str) -> dict[str, Any]:
    return {"name": name, "shape": ["B", 1, PATCH_SIZE, PATCH_SIZE], "dtype": "float32", "range": [0.0, 1.0]}


class _Target:
    """One exported file: the eager network, its inputs, and which model outputs it must equal.

    ``expect`` lists (input names, index into ``model(vis, other)``'s output): the file run on those
    inputs must give that output.
    """

    def __init__(self, filename: str, net: nn.Module, inputs: tuple[str, ...],
                 expect: list[tuple[tuple[str, ...], int]], description: str) -> None:
        self.filename, self.net, self.inputs, self.expect, self.description = filename, net, inputs, expect, description

    def manifest(self, output_dim: int | None) -> dict[str, Any]:
        if output_dim is None:
            outputs = [{"name": "probability", "shape": ["B"], "dtype": "float32", "range": [0.0, 1.0]}]
        else:
            outputs = [{"name": "descriptor", "shape": ["B", output_dim], "dtype": "float32", "l2_normalized": True}]
        return {"description": self.description, "inputs": [_patch_spec(n) for n in self.inputs], "outputs": outputs}


def _targets(model: nn.Module, name: str, checkpoint: Path) -> tuple[str, list[_Target]]:
    """(kind, files) for ``model``; kind is "kglnet", "descriptor" or "metric"."""
    desc_vis, desc_other, prob = 0, 1, 2
    if isinstance(model, KGLNet):
        return "kglnet", [
            _Target("descriptor_vis.pt", KGLNetDescriptor(model, "vis"), ("patches",), [(("vis",), desc_vis)],
                    "KGL-Net descriptor of visible patches"),
            _Target("descriptor_other.pt", KGLNetDescriptor(model, "other"), ("patches",), [(("other",), desc_other)],
                    "KGL-Net descriptor of the other modality's (NIR / thermal / SAR) patches"),
            _Target("metric.pt", KGLNetMetric(model), ("vis", "other"), [(("vis", "other"), prob)],
                    "KGL-Net metric branch: match probability of aligned (vis, other) pairs"),
        ]
    if isinstance(model, DescriptorModel):
        return "descriptor", [
            _Target("descriptor.pt", DescriptorNetwork(model), ("patches",),
                    [(("vis",), desc_vis), (("other",), desc_other)],
                    f"{name} descriptor (one network for both spectra)"),
        ]
    if isinstance(model, MetricModel):
        return "metric", [
            _Target("metric.pt", MetricNetwork(model), ("vis", "other"), [(("vis", "other"), prob)],
                    f"{name}: match probability of aligned (vis, other) pairs"),
        ]
    raise ExportError(checkpoint, f"model {name!r} is neither KGL-Net, a descriptor model nor a metric model: "
                                  "no export recipe")


# --- export -------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_jit():
    """Silence torch.jit's deprecation warnings (TorchScript is what is asked for) and the tracer's
    warnings (every export is verified at several batch sizes instead)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _random_pairs(batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch_size, 1, PATCH_SIZE, PATCH_SIZE)
    return {"vis": torch.rand(shape, generator=g), "other": torch.rand(shape, generator=g)}


def _build(target: _Target) -> torch.jit.ScriptModule:
    example = _random_pairs(TRACE_BATCH_SIZE, seed=0)
    traced = torch.jit.trace(target.net, tuple(example[n] for n in target.expect[0][0]), check_trace=False)
    wrapper = CheckedPatches(traced) if target.inputs == ("patches",) else CheckedPair(traced)
    return torch.jit.script(wrapper)


def _references(model: nn.Module) -> dict[int, tuple[dict[str, torch.Tensor], tuple]]:
    """For each verified batch size: random (vis, other) pairs and ``model(vis, other)`` on them."""
    refs = {}
    for batch_size in VERIFY_BATCH_SIZES:
        pairs = _random_pairs(batch_size, seed=batch_size)
        refs[batch_size] = (pairs, model(pairs["vis"], pairs["other"]))
    return refs


def _verify(references: dict[int, tuple[dict[str, torch.Tensor], tuple]], exported: Callable[..., torch.Tensor],
            target: _Target, path: Path) -> int | None:
    """Compare ``exported`` with the model's outputs at every batch size; return the descriptor dim
    (None for a probability)."""
    dim = None
    for batch_size, (pairs, reference) in references.items():
        for input_names, index in target.expect:
            expected = reference[index]
            got = exported(*(pairs[n] for n in input_names))
            if got.shape != expected.shape or got.dtype != torch.float32:
                raise ExportError(path, f"exported output at batch size {batch_size} has shape {list(got.shape)} "
                                        f"{got.dtype}, PyTorch's {list(expected.shape)} {expected.dtype}")
            diff = (got - expected).abs().max().item()
            if not diff <= VERIFY_ATOL:
                raise ExportError(path, f"exported output differs from PyTorch's at batch size {batch_size} "
                                        f"(max abs difference {diff:.3g} > {VERIFY_ATOL})")
            dim = None if expected.dim() == 1 else int(expected.shape[1])
    return dim


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                      fmt: str = "torchscript") -> dict[str, Any]:
    """Export the networks of ``checkpoint`` into ``out_dir`` (created if needed) as ``fmt``.

    Returns the manifest written to ``out_dir/export.json``. Raises ValueError naming the file
    for a missing or unreadable checkpoint (:class:`~kglnet.checkpoint.CheckpointError`), an
    unknown format, an ``out_dir`` that is a file, or an export whose outputs differ from PyTorch's
    (:class:`ExportError`).
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if fmt not in FORMATS:
        if fmt == "onnx":
            why = ("ONNX export is not available: the 'onnx' package is not installed in this environment"
                   if not onnx_available() else "ONNX export is not implemented")
            raise ExportError(checkpoint, f"{why}; supported formats: {', '.join(FORMATS)}")
        raise ExportError(checkpoint, f"unknown export format {fmt!r}; supported formats: {', '.join(FORMATS)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(out_dir, "output directory is an existing file")

    model, state = load_model(checkpoint, "cpu")   # CheckpointError (a ValueError) names the file
    model.requires_grad_(False)
    name = state["model_name"]
    kind, targets = _targets(model, name, checkpoint)
    digest = sha256_file(checkpoint)

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    manifest_path.unlink(missing_ok=True)   # present again only once this export is complete
    files: dict[str, Any] = {}
    with torch.no_grad(), _quiet_jit(), contextlib.ExitStack() as renames:
        references = _references(model)
        for target in targets:
            final = out_dir / target.filename
            tmp = renames.enter_context(atomic_path(final))   # renamed onto ``final`` when all succeed
            try:
                module = _build(target)
            except Exception as exc:  # noqa: BLE001 - tracing errors come in many types
                raise ExportError(final, f"cannot trace model {name!r}: {type(exc).__name__}: {exc}") from exc
            module.save(str(tmp))
            dim = _verify(references, torch.jit.load(str(tmp)), target, final)
            files[target.filename] = {**target.manifest(dim), "sha256": sha256_file(tmp)}

    manifest = {
        "format": fmt,
        "model_name": name,
        "model_kwargs": state.get("model_kwargs", {}),
        "model_kind": kind,
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": digest,
        "torch_version": torch.__version__,
        "kglnet_version": __version__,
        "load_with": "torch.jit.load",
        "trace_batch_size": TRACE_BATCH_SIZE,
        "verified_batch_sizes": list(VERIFY_BATCH_SIZES),
        "verified_atol": VERIFY_ATOL,
        "files": files,
    }
    atomic_write_json(manifest_path, manifest)
    return manifest


def main_args(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "torchscript") -> int:
    """Command-line entry: export, print one JSON line (out_dir, model, files), return 0.

    Errors are raised as ValueError (naming the file) for the CLI to report.
    """
    manifest = export_checkpoint(checkpoint, out_dir, fmt)
    print(json.dumps({"out_dir": str(out_dir), "model_name": manifest["model_name"], "format": manifest["format"],
                      "files": [*manifest["files"], MANIFEST]}))
    return 0


__all__ = ["ExportError", "FORMATS", "MANIFEST", "export_checkpoint", "main_args", "onnx_available"]
