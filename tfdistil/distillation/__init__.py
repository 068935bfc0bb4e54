"""Knowledge distillation: the Distiller, its loss terms, and student initialisation."""
from tfdistil.distillation import losses
from tfdistil.distillation.distiller import TEACHER_LOGITS, Distiller, cache_teacher_outputs
from tfdistil.distillation.layer_map import default_layer_map
from tfdistil.distillation.student_init import init_student_from_teacher
