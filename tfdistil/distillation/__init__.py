"""Knowledge distillation: the Distiller, its loss terms, and student initialisation."""
from tfdistil.distillation import losses
from tfdistil.distillation.comparisons import (
    LogitPair,
    OutputComparison,
    PerExample,
    PerExampleScore,
    PerLabelledToken,
    SpanPositions,
)
from tfdistil.distillation.distiller import TEACHER_LOGITS, Distiller, cache_teacher_outputs, weighted_terms
from tfdistil.distillation.layer_map import default_layer_map
from tfdistil.distillation.student_init import init_student_from_teacher
from tfdistil.distillation.terms import (
    AttentionKL,
    DistillationTerm,
    HardLabels,
    HiddenCosine,
    HiddenMSE,
    LossInputs,
    ScoreMSE,
    SoftTargets,
)
