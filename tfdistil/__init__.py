"""tfdistil: BERT and DistilBERT in Keras 3 with knowledge distillation."""
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfdistil import layers  # noqa: E402
from tfdistil import models  # noqa: E402
from tfdistil import text  # noqa: E402
from tfdistil import convert  # noqa: E402
from tfdistil import distillation  # noqa: E402
from tfdistil import training  # noqa: E402
from tfdistil import data  # noqa: E402
from tfdistil import export  # noqa: E402

__version__ = "0.1.0"
