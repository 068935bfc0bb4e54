"""TF Serving version folders: pick the version, write it whole or not at all.

A version is written to a hidden staging folder beside the model's folder (where TF Serving,
which scans only the model's folder for integer names, never looks) and moved into place with
one `os.rename`: TF Serving never sees a half-written version, a failed export leaves nothing
behind (not even the folders it created), and a version is never overwritten. The version gets
the permissions the umask gives any folder and file, so a server running as another user can
read it. A staging folder names the process writing it; one whose process is gone (a killed
export) is removed by the next export into the same model folder.
"""
import contextlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat

logger = logging.getLogger(__name__)


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


def _pid_space():
    """Where this process's pid means something: the host name, and on Linux the pid namespace
    (containers sharing the host's name and a volume each have their own pids)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
    try:
        namespace = re.search(r"[0-9]+", os.readlink("/proc/self/ns/pid"))  # "pid:[4026531836]"
    except OSError:
        return host
    return f"{host}-pidns{namespace.group()}" if namespace else host


def _staging_pattern(root):
    """`.<name>-v<version>-<pid>@<pid space>-<8 hex digits>`: the staging folders of `root`."""
    return re.compile(rf"\.{re.escape(root.name)}-v[0-9]+-(?P<pid>[0-9]+)@(?P<space>.+)-[0-9a-f]{{8}}")


def _process_alive(pid):
    """False only when no process `pid` exists here; a reused pid keeps a stale folder until the next try."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: assume alive
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or a pid beyond any real one)
        return True
    return True


def remove_stale_staging(root):
    """Remove the staging folders of `root` left by exports whose process has died (killed midway);
    those of live processes, and of other machines or containers sharing the disk, are kept.
    Returns the removed paths."""
    parent = root.absolute().parent
    if not parent.is_dir():
        return []
    pattern, space, removed = _staging_pattern(root), _pid_space(), []
    for entry in parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if (match and match["space"] == space and entry.is_dir() and not entry.is_symlink()
                and not _process_alive(int(match["pid"]))):
            shutil.rmtree(entry, ignore_errors=True)
            logger.info("Removed %s, left by an export that was killed (process %s).", entry, match["pid"])
            removed.append(entry)
    return removed


def _match_umask(folder):
    """Give every folder inside `folder` the mode of `folder` itself (made by `mkdir`, so what the
    umask gives a folder) and every file that mode without execute bits, as `open` gives files.
    TensorFlow makes its subfolders 0o755 whatever the umask; setuid/setgid/sticky bits are kept."""
    folder_mode = stat.S_IMODE(folder.stat().st_mode) & 0o777
    file_mode = folder_mode & 0o666
    for path, folders, files in os.walk(folder):
        for name, mode in [(name, folder_mode) for name in folders] + [(name, file_mode) for name in files]:
            entry = os.path.join(path, name)
            current = os.lstat(entry).st_mode
            if not stat.S_ISLNK(current):
                os.chmod(entry, (stat.S_IMODE(current) & ~0o777) | mode)


@contextlib.contextmanager
def new_version(root, version):
    """Yield an empty staging folder; when the block ends without error it becomes
    `root/<version>`, readable as the umask allows. On any error it is removed, with the
    folders this call created. Stale staging folders of `root` are removed first.

    Args:
        root: the model's folder, a `Path` (created if missing).
        version: the version number, from `choose_version`.
    """
    remove_stale_staging(root)
    created = missing_ancestors(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not tempfile.mkdtemp: mkdtemp makes folders 0o700, which TF Serving running as
    # another user cannot read. The name says which process writes it, for `remove_stale_staging`.
    staging = root.parent / f".{root.name}-v{version}-{os.getpid()}@{_pid_space()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        _match_umask(staging)
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
