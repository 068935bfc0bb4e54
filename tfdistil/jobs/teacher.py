"""The teacher a job starts from: a local Hugging Face checkpoint with a new head, or a preset
size at random init with a given or learned vocabulary."""
import os

from tfdistil.jobs.runs import RunError


def check_teacher_source(hf, preset, vocabulary):
    """Exactly one of `hf` / `preset`; a vocabulary file only with a preset."""
    if (hf is None) == (preset is None):
        raise RunError("give either --hf PATH or --preset NAME")
    if hf is not None and vocabulary is not None:
        raise RunError("--vocabulary goes with --preset; a Hugging Face folder brings its own")


def build_teacher(task, num_classes, texts, *, hf=None, preset=None, vocabulary=None, vocabulary_size=1000,
                  num_layers=None, sequence_length=128):
    """(the task's model named "teacher", tokenizer with per-batch padding). `task` is a
    declaration (`tfdistil.tasks`); `texts` (strings) are what a vocabulary is learned from when a
    preset comes without `vocabulary`."""
    from tfdistil.models import BertBackbone, DistilBertBackbone
    from tfdistil.models.presets import PRESET_ARCHITECTURE
    from tfdistil.text import WordPieceTokenizer, learn_vocabulary, load_vocabulary

    check_teacher_source(hf, preset, vocabulary)
    if hf is not None:
        from tfdistil.convert import load_hf

        if not os.path.isdir(hf):
            raise RunError(f"Hugging Face folder not found: {hf}")
        try:
            model, tokenizer = load_hf(
                hf, task=task.hf_task, num_classes=num_classes,
                tokenizer_kwargs={"sequence_length": sequence_length, "pad_to_sequence_length": False},
            )
        except (FileNotFoundError, ValueError) as error:
            raise RunError(f"cannot load the Hugging Face checkpoint {hf}: {error}") from None
        if tokenizer is None:
            raise RunError(f"{hf} has no vocabulary (vocab.txt or a WordPiece tokenizer.json)")
        return model, tokenizer
    if preset not in PRESET_ARCHITECTURE:
        raise RunError(f"unknown preset {preset!r}; presets: {sorted(PRESET_ARCHITECTURE)}")
    if vocabulary is not None:
        if not os.path.isfile(vocabulary):
            raise RunError(f"vocabulary file not found: {vocabulary}")
        vocab = load_vocabulary(vocabulary)
    else:
        vocab = learn_vocabulary(texts, vocabulary_size, progress=False)
    try:
        tokenizer = WordPieceTokenizer(vocab, sequence_length=sequence_length, pad_to_sequence_length=False)
    except ValueError as error:
        raise RunError(f"vocabulary {vocabulary or '(learned)'}: {error}") from None
    backbone_class = DistilBertBackbone if PRESET_ARCHITECTURE[preset] == "distilbert" else BertBackbone
    overrides = dict(vocabulary_size=len(vocab), max_sequence_length=sequence_length)
    if num_layers is not None:
        overrides["num_layers"] = num_layers
    backbone = backbone_class.from_preset(preset, **overrides)
    return task.build_head(backbone, num_classes, name="teacher"), tokenizer
