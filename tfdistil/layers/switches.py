"""Trace-time settings: choices a layer reads while a `tf.function` is traced (or a call runs
eagerly), set for a block of code with a context manager."""
import contextlib
import threading


class TraceSetting:
    """A per-thread value with a default. `setting.value()` reads it; `with setting.set(v): ...`
    changes it for the block and restores it after."""

    def __init__(self, default):
        self.default = default
        self._state = threading.local()

    def value(self):
        return getattr(self._state, "value", self.default)

    @contextlib.contextmanager
    def set(self, value):
        before = self.value()
        self._state.value = value
        try:
            yield
        finally:
            self._state.value = before


class TraceSwitch(TraceSetting):
    """An on/off `TraceSetting`: `switch.enabled()` reads it; `with switch.set(False): ...`."""

    def __init__(self, default):
        super().__init__(bool(default))

    def enabled(self):
        return self.value()

    def set(self, enabled=True):
        return super().set(bool(enabled))
