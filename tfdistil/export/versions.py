"""TF Serving version folders: pick the version, write it whole or not at all.

A version is written to a temporary folder beside the model's folder and moved into place
with one `os.rename`, so TF Serving never sees a half-written version and a failed export
leaves nothing behind (not even the folders it created). A version is never overwritten.
"""
import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path


def choose_version(root, version):
    """Check that `root` is a TF Serving model folder (or missing) and pick the version to write:
    `version` if free, or the next one after the largest present when it is None."""
    existing = []
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"`path` {str(root)!r} exists and is not a folder.")
        others = []
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and re.fullmatch(r"[0-9]+", entry.name):
                existing.append(int(entry.name))
            else:
                others.append(entry.name)
        if others:
            raise ValueError(
                f"`path` {str(root)!r} is not a TF Serving model folder: besides integer "
                f"version folders it holds {others}. Pass the model's own folder "
                "(e.g. saved_models/<name>)."
            )
    if version is None:
        return max(existing, default=0) + 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"`version` must be a positive int or None, got {version!r}.")
    if version in existing:
        raise ValueError(
            f"Version {version} already exists in {str(root)!r}; a version is never "
            f"overwritten. Pass version=None for the next one ({max(existing) + 1})."
        )
    return version


def missing_ancestors(root):
    """`root` and its ancestors that do not exist yet, deepest first."""
    missing = []
    folder = root.absolute()
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def new_version(root, version):
    """Yield an empty temporary folder; when the block ends without error it becomes
    `root/<version>`. On any error it is removed, with the folders this call created.

    Args:
        root: the model's folder, a `Path` (created if missing).
        version: the version number, from `choose_version`.
    """
    created = missing_ancestors(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-v{version}-", dir=root.parent))
    try:
        yield staging
        root.mkdir(exist_ok=True)
        final = root / str(version)
        if final.exists():  # another export took this version meanwhile
            raise ValueError(f"Version {version} already exists in {root}.")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # folders this call made, deepest first, if still empty
            if folder.exists():
                try:
                    folder.rmdir()
                except OSError:  # not empty: someone else wrote there meanwhile
                    break
        raise
