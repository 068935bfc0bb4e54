"""Choosing a dtype policy: the fast, safe one for the device unless told otherwise."""
import contextlib
import logging

import tensorflow as tf

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
logger = logging.getLogger(__name__)


def cpu_supports_bfloat16():
    """True when the CPU has native bfloat16 matmuls (AMX or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision=None):
    """`precision` if given (validated), else mixed_float16 on a GPU, mixed_bfloat16 on
    a CPU with AMX/AVX512-BF16, float32 otherwise. Returns (policy, reason)."""
    if precision not in (None, "auto"):
        if precision not in POLICIES:
            raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(POLICIES)} or 'auto'.")
        return precision, "requested"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", "auto: GPU present"
    if cpu_supports_bfloat16():
        return "mixed_bfloat16", "auto: CPU with AMX/AVX512-BF16"
    return "float32", "auto: no GPU and no bfloat16 CPU support"


@contextlib.contextmanager
def precision_scope(precision=None):
    """Set the resolved policy (printed) for a job; the caller's policy comes back after.
    Yields (policy, reason)."""
    import keras

    policy, reason = resolve_precision(precision)
    print(f"[tfdistil] precision: {policy} ({reason})")
    callers_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy, reason
    finally:
        keras.config.set_dtype_policy(callers_policy)
