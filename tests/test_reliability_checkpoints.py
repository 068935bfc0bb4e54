"""A Hugging Face folder whose weight file is cut short or garbled: a `ValueError` naming the file
from `load_hf`, and one line with exit code 2 from `tfdistil finetune --hf` (issue 28, item 3).

The weight files are real ones written from a tiny transformers BERT (`save_pretrained`, which
writes safetensors; `torch.save` of its state dict for `pytorch_model.bin`), then damaged the
way an interrupted download or copy damages them.
"""
import contextlib
import csv
import io

import pytest
import torch
import transformers

from tfdistil import cli
from tfdistil.convert import load_hf

transformers.logging.set_verbosity_error()

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "dull", "fine", "the"]
# "pytorch_legacy": the pickle format torch wrote before 1.6 (no zip archive), still on the Hub.
WEIGHT_FILE = {"safetensors": "model.safetensors", "pytorch": "pytorch_model.bin",
               "pytorch_legacy": "pytorch_model.bin"}


def damage(data, how):
    if how == "half":
        return data[: len(data) // 2]
    if how == "last_bytes":  # a copy stopped just before the end
        return data[:-10]
    if how == "empty":
        return b""
    if how == "garbled":  # right length, bytes overwritten near the start (header / zip entries)
        return data[:12] + b"\xff" * 256 + data[12 + 256:]
    raise AssertionError(how)


def hf_folder(path, fmt):
    """A tiny BertModel saved by transformers (or torch), with a vocab.txt."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    hf_model = transformers.BertModel(config)
    if fmt == "safetensors":
        hf_model.save_pretrained(path)
    else:
        hf_model.config.architectures = ["BertModel"]
        hf_model.config.save_pretrained(path)
        torch.save(hf_model.state_dict(), path / WEIGHT_FILE[fmt],
                   _use_new_zipfile_serialization=fmt == "pytorch")
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    weights = path / WEIGHT_FILE[fmt]
    assert weights.is_file() and sorted(p.name for p in path.iterdir()) == sorted(
        ["config.json", "vocab.txt", WEIGHT_FILE[fmt]])
    return weights


@pytest.fixture(scope="module", params=list(WEIGHT_FILE))
def intact(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    weights = hf_folder(folder, request.param)
    model, tokenizer = load_hf(folder)  # the folder loads before it is damaged
    assert tokenizer is not None and len(model.weights) > 0
    return folder, weights


def damaged_copy(intact, tmp_path, how):
    folder, weights = intact
    copy = tmp_path / "hf"
    copy.mkdir()
    for entry in folder.iterdir():
        data = entry.read_bytes()
        (copy / entry.name).write_bytes(damage(data, how) if entry == weights else data)
    return copy, copy / weights.name


@pytest.mark.parametrize("how", ["half", "last_bytes", "empty", "garbled"])
def test_load_hf_names_a_truncated_or_corrupt_weight_file(intact, tmp_path, how):
    folder, weights = damaged_copy(intact, tmp_path, how)
    with pytest.raises(ValueError) as info:
        load_hf(folder)
    message = str(info.value)
    assert "truncated or corrupt" in message and str(weights) in message
    assert "\n" not in message
    assert type(info.value).__name__ == "CorruptCheckpointError"


def write_data(folder):
    rows = [("a good film", "positive"), ("a bad film", "negative"), ("the film is fine", "positive"),
            ("dull", "negative")] * 3
    for name in ("train.csv", "dev.csv"):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return folder / "train.csv", folder / "dev.csv"


@pytest.mark.parametrize("how", ["half", "garbled"])
def test_finetune_hf_with_a_damaged_checkpoint_is_a_user_error(intact, tmp_path, how):
    folder, weights = damaged_copy(intact, tmp_path, how)
    train, dev = write_data(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["finetune", "--hf", str(folder), "--train", str(train), "--dev", str(dev),
                         "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--name", "broken",
                         "--precision", "float32", "--verbose", "0"])
    assert code == 2, (out.getvalue(), err.getvalue())
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
    assert lines[0].startswith("tfdistil finetune: error:")
    assert "truncated or corrupt" in lines[0] and str(weights) in lines[0], lines[0]


class NotATensor:
    """Pickled into a checkpoint: torch's weights-only loader refuses it."""


@pytest.mark.parametrize("fmt", ["pytorch", "pytorch_legacy"])
def test_a_bin_holding_other_objects_is_not_called_corrupt(tmp_path, fmt):
    weights = hf_folder(tmp_path, fmt)
    torch.save({"extra": NotATensor()}, weights, _use_new_zipfile_serialization=fmt == "pytorch")
    with pytest.raises(ValueError, match="holds objects other than tensors.*NotATensor") as info:
        load_hf(tmp_path)
    assert str(weights) in str(info.value) and "corrupt" not in str(info.value)
