"""Hugging Face checkpoints in and out: `load_hf(folder)` and `save_hf(model, tokenizer, folder)`.

Our layer names meet Hugging Face's only in `mapping.py` (one table per architecture).
"""
from tfdistil.convert.hf import hf_label_names, load_hf, save_hf
from tfdistil.convert.mapping import TASKS

__all__ = ["load_hf", "save_hf", "hf_label_names", "TASKS"]
