"""Training recipes: optimizer and schedule, precision choice, callbacks."""
from tfdistil.training.callbacks import fit_verbosity, run_callbacks
from tfdistil.training.optimization import NO_DECAY, AdamW, LinearWarmupDecay, make_optimizer
from tfdistil.training.resume import fit_resumable, fit_run, read_backup
from tfdistil.training.precision import POLICIES, cpu_supports_bfloat16, precision_scope, resolve_precision
