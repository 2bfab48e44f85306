"""Portable CPU numerics: the same floating-point results on any x86-64 processor with AVX2.

PyTorch's CPU kernels pick their code path by processor: oneDNN's convolutions (by instruction set
and cache sizes), MKL's matrix products (its own choice per processor family) and ATen's
vectorised kernels (AVX2 or AVX-512). Each path sums in its own order, and training (Adam at
5e-3, augmentation) amplifies the last-bit differences: from byte-identical pair files, the main
job's KGL-Net reached test FPR95 83.30 % on the machine that made the committed results and
83.79 % on an AMD EPYC with AVX-512, and the CI config's HardNet 62.76 % against 78.65 %.

The portable mode fixes one path that every x86-64 processor with AVX2 (Intel since Haswell, AMD
since Zen) runs the same way:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels, not its AVX-512 ones;
- ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility on its AVX2 code path, its
  documented setting for identical results on Intel and compatible processors that have AVX2
  (``COMPATIBLE`` would also cover older processors; it made a training step 1.6x slower still);
- ``KGLNET_PORTABLE_CPU=1``: the ``kglnet`` command turns off oneDNN (mkldnn) and NNPACK, so
  convolutions run as ATen's im2col + MKL GEMM (oneDNN also blocks its loops by cache size).

The first two are read when the libraries load, so they must be in a process's environment
before it starts: :func:`portable_cpu_environment` builds that environment for a child process
(``kglnet regression-check`` runs its pipeline with it), and :func:`apply_portable_cpu_backends`
applies the third inside ``kglnet``. The thread count must also be the same (it fixes how work is
split). A KGL-Net training step of 8 pairs took 1.5x as long as with the native kernels on the
2-core machine (both timed while two other trainings shared its cores); the mode is for runs
compared across machines, not for speed.
"""

from __future__ import annotations

import os
from typing import Mapping

__all__ = ["PORTABLE_CPU_ENV", "portable_cpu_environment", "portable_cpu_requested", "apply_portable_cpu_backends"]

PORTABLE_CPU_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "KGLNET_PORTABLE_CPU": "1",
}


def portable_cpu_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) with :data:`PORTABLE_CPU_ENV` set."""
    env = dict(os.environ if base is None else base)
    env.update(PORTABLE_CPU_ENV)
    return env


def portable_cpu_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``KGLNET_PORTABLE_CPU`` is set to 1 in ``env`` (default: this process's environment)."""
    return (os.environ if env is None else env).get("KGLNET_PORTABLE_CPU", "") == "1"


def apply_portable_cpu_backends() -> bool:
    """Turn off oneDNN and NNPACK when the portable mode is requested; returns whether it was."""
    if not portable_cpu_requested():
        return False
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    return True
