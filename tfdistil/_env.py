"""Placeholder until the quiet-start branch merges."""
import os


def quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
