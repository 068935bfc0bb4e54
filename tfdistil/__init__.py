"""tfdistil: BERT and DistilBERT in Keras 3 with knowledge distillation.

Sub-packages load on first use (`tfdistil.models`, `from tfdistil import layers`), so that
`import tfdistil` and the command line's parser do not import TensorFlow.
"""
import importlib as _importlib
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_SUBPACKAGES = ("layers", "models", "text", "convert", "distillation", "training", "data", "export", "tasks", "jobs",
                "evaluation", "report")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
