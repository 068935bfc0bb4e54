"""Quiet TensorFlow start-up: no C++ log lines (nor the cuInit error of a machine without a GPU)
unless the user sets TF_CPP_MIN_LOG_LEVEL. The lines TF prints while its libraries load ignore
that variable, so the first import runs with fd 2 piped through a filter process (a process, so
that a fatal abort's message still gets out)."""
import os
import re
import sys

# absl/glog records: `I0000 00:00:1796410182.042520    5353 port.cc:153] message`
_RECORD = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# The second line of cpu_feature_guard's record; other unprefixed lines are passed on.
_CONTINUATION = re.compile(rb"^To enable the following instructions: ")
_SEVERITIES = "IWEF"
_DEFAULT_LEVEL = "2"  # after the import: TF's INFO and WARNING records off, ERROR and FATAL shown
_QUIET_ENV = "TFDISTIL_QUIET_TF"  # marks TF_CPP_MIN_LOG_LEVEL as ours, for child processes


def filter_log_lines(lines, min_level):
    """Yield the lines (bytes) that are not TensorFlow log records below `min_level` (0 info,
    1 warning, 2 error, 3 fatal; as TF_CPP_MIN_LOG_LEVEL), nor the known second line of a
    dropped record, nor absl's pre-initialisation banner (dropped from level 1)."""
    dropping = False
    for line in lines:
        record = _RECORD.match(line)
        if record:
            dropping = _SEVERITIES.index(record.group(1).decode()) < min_level
        elif line.rstrip(b"\r\n") == _ABSL_BANNER:
            dropping = min_level >= 1
        elif dropping and _CONTINUATION.match(line):
            pass
        else:
            dropping = False
        if not dropping:
            yield line


def _filter_main(min_level):
    """The filter process: stdin to stdout, line by line, unbuffered, until stdin closes (Ctrl-C
    is for the parent, which closes it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    for line in filter_log_lines(iter(sys.stdin.buffer.readline, b""), min_level):
        try:
            out.write(line)
            out.flush()
        except OSError:
            pass  # stderr went away: keep draining, so the parent never blocks on a full pipe


class _FilteredStderr:
    """Within `with`: file descriptor 2 goes through `_filter_main` in a child process. Does
    nothing when fd 2 cannot be duplicated or the child cannot start."""

    def __init__(self, min_level):
        self.min_level = min_level
        self._saved = self._child = None

    def __enter__(self):
        import subprocess

        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
                f"from tfdistil._env import _filter_main; _filter_main({self.min_level})")
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            self._child = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=subprocess.PIPE,
                                           stdout=self._saved, stderr=self._saved)
            os.dup2(self._child.stdin.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self._restore()
        return self

    def __exit__(self, *exc):
        self._restore()
        return False

    def _restore(self):
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
        if self._child is not None:
            import subprocess

            self._child.stdin.close()  # the last write end: the filter sees EOF, passes the rest on
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass  # a process started during the import still holds fd 2; the filter ends with it
            self._child = None


class _QuietLoader:
    """Runs the real loader of the `tensorflow` package inside `_FilteredStderr`; puts the real
    loader back on the module once done."""

    def __init__(self, loader, min_level, probe_devices):
        self._loader, self._min_level, self._probe = loader, min_level, probe_devices

    def __getattr__(self, name):  # is_package, get_resource_reader, ... of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _FilteredStderr(self._min_level):
            try:
                self._loader.exec_module(module)
            finally:
                module.__loader__ = self._loader
                if module.__spec__ is not None:
                    module.__spec__.loader = self._loader
            if self._probe:
                # The CUDA probe (`failed call to cuInit` on a machine without a GPU) is an ERROR
                # record; run it here, inside the filter. Physical devices can still be configured.
                try:
                    module.config.list_physical_devices("GPU")
                except Exception:  # noqa: BLE001 - the same failure surfaces at TF's first real use
                    pass


class _QuietFinder:
    """A one-shot meta-path finder: wraps the loader of the first `import tensorflow`."""

    def __init__(self, min_level, probe_devices):
        self._min_level, self._probe = min_level, probe_devices

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        import importlib.util

        _remove_finder()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader, self._min_level, self._probe)
        return spec


def _remove_finder():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietFinder)]


def quiet_tensorflow():
    """Make the coming `import tensorflow` quiet; returns False if TensorFlow is already imported
    (too late to change its logging), True otherwise. Cheap: TensorFlow is not imported here.

    With `TF_CPP_MIN_LOG_LEVEL` unset, it becomes 2 (TF's info and warning records off), and the
    records TF prints while it loads (oneDNN notice, CUDA stub and cuInit messages, CPU-feature
    notice, absl's banner) are dropped whatever their severity; the GPU probe then runs within
    the import (devices can still be configured after it). A level the user has set is kept and
    also applied to those loading-time records; 0 shows everything."""
    if "tensorflow" in sys.modules:
        return False
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    ours = user_level is None or (user_level == _DEFAULT_LEVEL and os.environ.get(_QUIET_ENV) == "1")
    if ours:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = _DEFAULT_LEVEL
        os.environ[_QUIET_ENV] = "1"
        min_level, probe = 3, True
    else:
        try:
            min_level, probe = int(user_level), False
        except ValueError:
            min_level, probe = 0, False
    _remove_finder()
    if min_level > 0:
        sys.meta_path.insert(0, _QuietFinder(min_level, probe))
    return True
