"""Bad data files as a user meets them (issue 28): an unreadable file, a label column that mixes
integers and names, a dev set missing a class. Each is a one-line error or warning that names
the file, the line and the value."""
import errno
from pathlib import Path

import numpy as np
import pytest

from tfdistil.data import DataError, TextClassificationData, read_text_classification


def test_an_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    # Permission bits do not stop root (CI's user), so the OS refuses through a patched read.
    path = tmp_path / "train.tsv"
    path.write_text("label\tsentence\npositive\tgood .\n", encoding="utf-8")

    def refuse(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataError) as info:
        read_text_classification(path)
    message = str(info.value)
    assert str(path) in message and "cannot read it: Permission denied" in message


def test_integer_and_text_labels_in_one_column_are_refused(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("text,label\ngood,1\nbad,0\nfine,positive\ndull,negative\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_text_classification(path)
    message = str(info.value)
    assert str(path) in message and "line 4" in message and "'positive'" in message and "line 2" in message
    # One kind alone reads as before.
    path.write_text("text,label\ngood,1\nbad,0\nfine,10\n", encoding="utf-8")
    assert read_text_classification(path).label_names == ["0", "1", "10"]


def test_a_dev_set_missing_a_class_is_named(capsys):
    from tfdistil.jobs.pipeline import _warn_missing_classes

    dev = TextClassificationData(texts=["a", "b"], text_pairs=None, labels=np.array([0, 0], np.int32),
                                 label_names=["negative", "neutral", "positive"], path="dev.tsv")
    _warn_missing_classes(dev)
    assert capsys.readouterr().out.strip() == (
        "[tfdistil] warning: dev.tsv has no example of the classes ['neutral', 'positive']")
    _warn_missing_classes(TextClassificationData(texts=["a"], text_pairs=None, labels=np.array([0], np.int32),
                                                 label_names=["only"], path="dev.tsv"))
    assert capsys.readouterr().out == ""
