"""Trace-time switches: choices a layer reads while a `tf.function` is traced (or a call runs
eagerly), set for a block of code with a context manager."""
import contextlib
import threading


class TraceSwitch:
    """A per-thread on/off setting with a default. `switch.enabled()` reads it; `with
    switch.set(False): ...` changes it for the block and restores it after."""

    def __init__(self, default):
        self.default = bool(default)
        self._state = threading.local()

    def enabled(self):
        return getattr(self._state, "enabled", self.default)

    @contextlib.contextmanager
    def set(self, enabled=True):
        before = self.enabled()
        self._state.enabled = bool(enabled)
        try:
            yield
        finally:
            self._state.enabled = before
