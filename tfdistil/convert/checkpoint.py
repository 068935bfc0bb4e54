"""Reading and writing Hugging Face weight files as numpy arrays (no framework needed).

`model.safetensors` is read with `safetensors` (numpy). `pytorch_model.bin` is a
pickle: it is read only with `torch.load(..., weights_only=True)`, which refuses
to run code from the file, and only if torch is installed. A file that exists but
cannot be read whole raises `CorruptCheckpointError` (a `ValueError`) naming it.
"""
import json
import os
import pickle
from pathlib import Path

import numpy as np

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
PYTORCH_BIN_INDEX = "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN, PYTORCH_BIN_INDEX)
# Weight formats we recognise but do not read, to say so in the error.
UNSUPPORTED_WEIGHT_FILES = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")


class CorruptCheckpointError(ValueError):
    """A weight file that is there but truncated (an interrupted download or copy) or corrupt."""

    def __init__(self, path, reason):
        reason = " ".join(str(reason).split())  # one line
        super().__init__(
            f"The checkpoint file {str(path)!r} is truncated or corrupt ({reason}). "
            "Download or save it again."
        )
        self.path = str(path)


def find_weights(folder):
    """The weight file (or shard index) of `folder`, in HF's order of preference."""
    folder = Path(folder)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = [name for name in UNSUPPORTED_WEIGHT_FILES if (folder / name).exists()]
    hint = (
        f" It holds {', '.join(found)}, which load_hf does not read: save the model again with "
        "transformers' `save_pretrained` (PyTorch) to get model.safetensors."
        if found else ""
    )
    raise ValueError(
        f"No weights found in the folder {str(folder)!r}: looked for {', '.join(WEIGHT_FILES)}.{hint}"
    )


def read_weights(path):
    """All tensors of a weight file or shard index: {HF name: numpy array}."""
    path = Path(path)
    if path.name.endswith(".index.json"):
        with open(path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            tensors.update(read_weights(path.parent / shard))
        return tensors
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    return _read_torch_pickle(path)


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except SafetensorError as error:  # OSError (missing, unreadable) passes as it is
        raise CorruptCheckpointError(path, error) from None
    except TypeError:
        # numpy has no bfloat16: safetensors' numpy reader fails on BF16 checkpoints.
        return _read_safetensors_raw(path)  # load_file has checked the file whole by then


# safetensors dtype codes -> numpy dtypes (BF16 through ml_dtypes, which Keras/TF install).
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


def _read_safetensors_raw(path):
    """Minimal safetensors reader for dtypes numpy lacks: an 8-byte little-endian
    header size, a JSON header {name: {dtype, shape, data_offsets}}, then the data."""
    import ml_dtypes

    data = Path(path).read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_size])
    body = memoryview(data)[8 + header_size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        code = info["dtype"]
        dtype = ml_dtypes.bfloat16 if code == "BF16" else _SAFETENSORS_DTYPES.get(code)
        if dtype is None:
            raise ValueError(f"Tensor {name!r} of {path} has dtype {code}, which load_hf cannot read.")
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
        tensors[name] = array.astype("float32") if code == "BF16" else array
    return tensors


def _read_torch_pickle(path):
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading {path} needs PyTorch (`pip install torch`, the CPU build is enough); "
            "or convert the checkpoint to model.safetensors."
        ) from error
    with open(path, "rb"):  # a missing or unreadable file raises its own OSError here, not "corrupt"
        pass
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:
        # RuntimeError: a damaged zip (e.g. cut before its central directory); OSError: a zip cut a
        # few bytes short; EOFError: an empty file or a legacy pickle cut short.
        if isinstance(error, OSError):
            reason = f"its zip archive cannot be read: {error}"
        else:
            reason = str(error).split(". ")[0] or "the file ends early"  # torch adds paragraphs of advice
        raise CorruptCheckpointError(path, reason) from None
    except pickle.UnpicklingError as error:
        # torch wraps the unpickler's own message in advice; a class outside its allowlist is a
        # checkpoint holding more than tensors, any other failure (e.g. "Unsupported operand") damage.
        detail = str(error).split("WeightsUnpickler error:")[-1].strip().split(". ")[0]
        if detail.startswith("Unsupported global"):
            raise ValueError(
                f"{str(path)!r} holds objects other than tensors, which load_hf does not unpickle "
                f"(torch.load(weights_only=True): {detail})."
            ) from None
        raise CorruptCheckpointError(path, detail) from None
    tensors = {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        if tensor.is_floating_point() and tensor.dtype != torch.float64:
            tensor = tensor.float()  # bfloat16 has no numpy equivalent
        tensors[name] = tensor.numpy()
    return tensors


def write_safetensors(tensors, path):
    """Write {name: numpy array} as safetensors with the metadata transformers expects."""
    from safetensors.numpy import save_file

    tensors = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    # safetensors creates the file 0o600; give it the mode the umask gives any new file, so a
    # server running as another user can read the exported folder (as the SavedModel export does).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def normalize_names(tensors, arch):
    """HF names as the HF task model has them: old LayerNorm `gamma`/`beta` become
    `weight`/`bias`, and backbone tensors saved without the `bert.`/`distilbert.`
    prefix (a bare `BertModel` checkpoint) get it."""
    normalized = {}
    for name, array in tensors.items():
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
        if name.startswith(arch.base_modules):
            name = f"{arch.prefix}.{name}"
        normalized[name] = array
    return normalized
