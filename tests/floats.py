"""Float comparisons that hold on every x86 CPU: TensorFlow's kernels (oneDNN's AVX-512 or AVX2 code, or Eigen)
sum in different orders, so float32 results differ in their last bits between machines. A tolerance here is a
number of float32 units in the last place (ulps) of the largest magnitude compared, never numpy's defaults."""

import numpy as np
import pytest

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)

# Rounding a sum of n float32 products can be off by about n ulps of its largest term whatever the order; a
# network output carries that through every layer. Wider bounds say which case they cover.
SUM_ULPS = 4  # per summed term
NETWORK_ULPS = 128  # softmax outputs of a few-layer CNN computed by two code paths (1.5e-5 at probability 1)


def other_kernel_path() -> dict[str, str]:
    """The environment that makes TensorFlow take the CPU kernels this machine does not take by default: oneDNN's
    AVX2 code on an AVX-512 CPU, else Eigen's (oneDNN off). A model run under it computes what another CPU would."""
    with open("/proc/cpuinfo") as cpuinfo:
        avx512 = "avx512f" in cpuinfo.read()
    return {"ONEDNN_MAX_CPU_ISA": "AVX2"} if avx512 else {"TF_ENABLE_ONEDNN_OPTS": "0"}


def float32_tolerance(*arrays, ulps: float) -> float:
    """Absolute tolerance: ``ulps`` float32 ulps of the largest magnitude among ``arrays``."""
    scale = max(float(np.max(np.abs(np.asarray(a, dtype=np.float64)))) for a in arrays)
    return ulps * EPS32 * max(scale, np.finfo(np.float32).tiny)


def assert_float32_close(actual, expected, ulps: float):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=float32_tolerance(actual, expected, ulps=ulps))


def approx_float32(expected, ulps: float = 8):
    """pytest.approx for float32 quantities (a learning rate from a float32 schedule, say)."""
    return pytest.approx(expected, rel=ulps * EPS32, abs=float32_tolerance(expected, ulps=ulps))


def approx_float64(expected, ulps: float = 64):
    """pytest.approx for float64 quantities that numpy may sum in another order on another CPU."""
    return pytest.approx(expected, rel=ulps * EPS64, abs=ulps * EPS64 * float(np.max(np.abs(expected))))
