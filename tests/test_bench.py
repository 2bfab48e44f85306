"""`kglnet bench`: the reference re-enactment computes what KGL-Net computes, the record has the
keys the issue asks for, and the schedule arithmetic is right."""

import json

import pytest
import torch

from kglnet.bench import (SPEC_REFERENCE_AUGMENT_MS, BenchConfig, ReferenceKGLNet, full_schedule_minutes,
                          kernel_category, profile_steps, run_benchmark)
from kglnet.cli import main
from kglnet.models import create_model


def test_reference_model_is_kglnet_with_the_duplicate_pass():
    torch.manual_seed(0)
    model = create_model("kglnet").eval()
    reference = ReferenceKGLNet().eval()
    reference.load_state_dict(model.state_dict())
    vis, other = torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64)
    calls = []
    hook = reference.low_vis.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        for a, b in zip(model(vis, other), reference(vis, other)):
            assert torch.allclose(a, b, atol=1e-6)
    hook.remove()
    assert len(calls) == 2  # layers 1-4 ran twice, as in the reference


def test_full_schedule_arithmetic():
    out = full_schedule_minutes(1000.0)
    assert out["per_dataset"]["os"] == pytest.approx(98_940 * 200 / 1000 / 60)
    assert out["per_dataset"]["vislwir"] == pytest.approx(17_096 * 100 / 1000 / 60)
    assert out["total"] == pytest.approx(sum(out["per_dataset"].values()))
    assert out["missing"] and "visnir" in out["missing"][0]
    with_visnir = full_schedule_minutes(1000.0, {"visnir": [60_000, 100]})
    assert with_visnir["per_dataset"]["visnir"] == pytest.approx(100.0) and not with_visnir["missing"]
    with pytest.raises(ValueError, match="expected \\[pairs per epoch, epochs\\]"):
        full_schedule_minutes(1000.0, {"visnir": [0, 100]})


def test_cpu_benchmark_record_has_the_issue_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--out", str(out), "--batch-size", "2", "--steps", "1", "--warmup", "0",
                 "--eval-pairs", "8", "--eval-batch-size", "4", "--schedule", "visnir=1000:10"]) == 0
    record = json.loads(out.read_text())
    for key in ("device", "torch", "train_pairs_per_s", "reference_train_pairs_per_s", "eval_pairs_per_s",
                "reference_eval_pairs_per_s", "peak_memory_gb", "fp32_train_pairs_per_s", "train_speedup",
                "full_schedule_minutes", "config", "git_commit", "gflop_per_pair", "achieved_tflops"):
        assert key in record, key
    assert record["achieved_tflops"]["eval"] == pytest.approx(
        record["eval_pairs_per_s"] * record["gflop_per_pair"]["eval"] / 1e3)
    assert record["device"].startswith("CPU") and record["peak_memory_gb"] is None
    # the host's state, to tell a slow machine or other work from a slow path
    assert record["cpu_model"] and isinstance(record["cpu_model"], str)
    assert all(isinstance(record[k], float) and record[k] >= 0
               for k in ("load_average_1m_before", "load_average_1m_after"))
    assert all(record[k] > 0 for k in ("train_pairs_per_s", "reference_train_pairs_per_s", "eval_pairs_per_s"))
    assert record["full_schedule_minutes"]["schedule"]["visnir"] == {"pairs_per_epoch": 1000, "epochs": 10}
    assert json.loads(capsys.readouterr().out)["train_pairs_per_s"] == record["train_pairs_per_s"]
    # the end-to-end rate with the reference's own augmentation cost (SPEC 10: 122.7 ms per 256
    # pairs) in place of the re-enactment's: per pair, the step's time plus 122.7 / 256 ms
    per_pair = 1 / record["reference_train_step_only_pairs_per_s"] + SPEC_REFERENCE_AUGMENT_MS / 1000 / 256
    assert record["reference_train_pairs_per_s_spec_augment"] == pytest.approx(1 / per_pair)
    assert record["train_speedup_spec_augment"] == pytest.approx(
        record["train_pairs_per_s"] / record["reference_train_pairs_per_s_spec_augment"])
    assert "OpenCV" in record["reference_augment"] and record["reference_augment_ms_per_batch"] > 0


def test_phases_and_profile_break_the_step_down(tmp_path):
    """--phases: each phase of the project's step timed on both clocks; on the CPU (synchronous)
    the phases add up to about the step's time. --profile (in the same run: each costs a benchmark
    of KGL-Net): the steps under torch.profiler; on the CPU the entries are operators on the host's
    clock, sorted, the categories add up to the total, and both convolution directions show."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--out", str(out), "--batch-size", "4", "--steps", "2", "--warmup", "1", "--eval-pairs", "4",
                 "--eval-batch-size", "4", "--no-reference", "--no-fp32", "--phases", "--profile",
                 "--fused-optimizer", "--one-pass-shared-stack"]) == 0
    record = json.loads(out.read_text())
    assert record["config"]["one_pass_shared_stack"] is True and record["config"]["fused_optimizer"] is True
    phases = record["train_phases_ms"]
    assert set(phases["host"]) == {"draw", "forward", "backward", "optimizer", "bookkeeping"}
    assert phases["device"] == phases["host"] and all(v > 0 for v in phases["host"].values())
    # the forward and backward passes of KGL-Net dwarf the draws and the bookkeeping
    assert phases["host"]["forward"] + phases["host"]["backward"] > 5 * phases["host"]["draw"]

    prof = record["train_profile"]
    assert prof["clock"] == "host" and prof["steps"] == 2 and prof["total_ms_per_step"] > 0
    assert sum(prof["by_category_ms_per_step"].values()) == pytest.approx(prof["total_ms_per_step"])
    top = prof["top"]
    assert 0 < len(top) <= 25 and all(row["category"] == kernel_category(row["name"]) for row in top)
    assert [row["ms_per_step"] for row in top] == sorted((row["ms_per_step"] for row in top), reverse=True)
    assert sum(row["share"] for row in top) <= 1 + 1e-9
    # at 4 pairs per batch elementwise work weighs as much as the convolutions; both directions show
    assert prof["by_category_ms_per_step"]["convolution, forward"] > 0
    assert prof["by_category_ms_per_step"]["convolution, backward"] > 0


def test_any_registered_model_is_benchmarked_with_its_own_objective(tmp_path):
    """--model: a baseline's training and evaluation rates (no reference path: that is KGL-Net's
    code); its FLOPs are its own network's and objective's."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--out", str(out), "--model", "hardnet", "--batch-size", "4", "--steps", "1",
                 "--warmup", "0", "--eval-pairs", "4", "--eval-batch-size", "4", "--no-fp32"]) == 0
    record = json.loads(out.read_text())
    assert record["model"] == "hardnet" and record["parameters"] == 1_334_560
    assert record["train_pairs_per_s"] > 0 and record["eval_pairs_per_s"] > 0
    assert "reference_train_pairs_per_s" not in record
    from kglnet.bench import flops_per_pair

    assert record["gflop_per_pair"]["eval"] * 1e9 == pytest.approx(flops_per_pair("hardnet")["eval"])
    assert record["gflop_per_pair"]["eval"] < 0.5 * flops_per_pair("kglnet")["eval"] / 1e9
    with pytest.raises(ValueError, match="unknown model 'nonet'; registered models: afd_net"):
        run_benchmark(BenchConfig(model="nonet"))


def test_bad_benchmark_settings_are_named(capsys):
    with pytest.raises(ValueError, match="batch_size >= 2"):
        run_benchmark(BenchConfig(batch_size=1))
    with pytest.raises(SystemExit):
        main(["bench", "--schedule", "visnir=lots"])
    assert "expected DATASET=PAIRS:EPOCHS" in capsys.readouterr().err


def test_flops_per_pair_match_a_count_of_the_layers():
    from kglnet.bench import flops_per_pair

    flops = flops_per_pair(pairs=2)
    # Hand count of KGL-Net's forward pass from its layers' output sizes: a convolution does
    # 2 * outputs * (in_channels / groups) * kernel area, a linear layer 2 * outputs * in_features.
    counted = []

    def hook(module, _, out):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            counted.append(2 * out.numel() * module.in_channels // module.groups * kh * kw)
        else:
            counted.append(2 * out.numel() * module.in_features)

    model = create_model("kglnet").eval()
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))
    assert flops["eval"] == pytest.approx(sum(counted) / 2, rel=0.02)
    assert 2.5 < flops["train"] / flops["eval"] < 3.5  # backward costs about twice the forward pass


@pytest.mark.parametrize("name, category", [
    ("sm90_xmma_wgrad_implicit_gemm_indexed_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", "convolution, weight gradient"),
    ("sm90_xmma_dgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nchw", "convolution, input gradient"),
    ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", "convolution, forward"),
    ("triton_poi_fused_convolution_backward_native_layer_norm_3", "inductor (fused)"),
    ("aten::convolution_backward", "convolution, backward"),
    ("aten::mkldnn_convolution", "convolution, forward"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matrix product"),
    ("Memcpy DtoD (Device -> Device)", "copy or fill"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
    ("void at::native::reduce_kernel<512, 1>", "reduction"),
    ("void at::native::vectorized_elementwise_kernel<4, GeluFunctor>", "other"),
])
def test_kernel_categories(name, category):
    """--profile's categories: Inductor's kernels first (their names list the operators they fused,
    convolutions too), then cuDNN's convolution kernels by direction, then the rest."""
    assert kernel_category(name) == category


def test_profile_needs_a_step():
    with pytest.raises(ValueError, match="steps >= 1, got 0"):
        profile_steps(lambda k: None, 0, torch.device("cpu"))


def test_one_pass_shared_stack_is_refused_for_a_model_without_shared_layers(tmp_path, capsys):
    assert main(["bench", "--model", "tfeat", "--out", str(tmp_path / "b.json"), "--batch-size", "4", "--steps", "1",
                 "--warmup", "0", "--eval-pairs", "4", "--eval-batch-size", "4", "--no-fp32",
                 "--one-pass-shared-stack"]) != 0
    # refused by the model preparation that the training path shares, before any step is timed
    assert "one_pass_shared_stack: TFeat has no shared descriptor layers" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
