"""Initialise a student from a teacher's weights (Sanh et al.: take one layer in two)."""
import numpy as np

from tfdistil.distillation.layer_map import check_layer_map, default_layer_map
from tfdistil.models.backbone import BertBackbone
from tfdistil.models.tasks import Task

_EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "embeddings_layer_norm")


def _backbone(model):
    return model.backbone if isinstance(model, Task) else model


def _copy_layer(src, dst, what):
    src_w, dst_w = src.get_weights(), dst.get_weights()
    shapes_src = [w.shape for w in src_w]
    shapes_dst = [w.shape for w in dst_w]
    if shapes_src != shapes_dst:
        raise ValueError(
            f"Cannot copy {what}: teacher weights have shapes {shapes_src}, student {shapes_dst}. "
            "The student must have the teacher's hidden_dim, num_heads and intermediate_dim."
        )
    dst.set_weights(src_w)


def init_student_from_teacher(student, teacher, layer_map=None):
    """Copy embeddings, embedding LayerNorm, the mapped encoder layers and a compatible
    task head from `teacher` into `student`. Returns the layer map used.

    Args:
        student: a DistilBertBackbone/BertBackbone or a task model on one.
        teacher: a BertBackbone (or DistilBertBackbone) or a task model on one.
        layer_map: teacher layer index for each student layer; default
            `default_layer_map` (DistilBERT's [0, 2, 4, 7, 9, 11] for 12 -> 6).
    """
    s_bb, t_bb = _backbone(student), _backbone(teacher)
    if s_bb.hidden_dim != t_bb.hidden_dim:
        raise ValueError(
            f"Student hidden_dim={s_bb.hidden_dim} differs from teacher hidden_dim={t_bb.hidden_dim}: "
            "weights cannot be copied. Use a random init and the hidden-state MSE loss instead."
        )
    if s_bb.num_heads != t_bb.num_heads:
        # The fused QKV kernel has the same shape for any head count, so the copy would
        # succeed and silently split the teacher's projections into other heads.
        raise ValueError(
            f"Student num_heads={s_bb.num_heads} differs from teacher num_heads={t_bb.num_heads}: "
            "copied attention layers would compute a different function."
        )
    if s_bb.vocabulary_size != t_bb.vocabulary_size:
        raise ValueError(
            f"Student vocabulary_size={s_bb.vocabulary_size} differs from teacher's {t_bb.vocabulary_size}."
        )
    layer_map = check_layer_map(
        layer_map if layer_map is not None else default_layer_map(t_bb.num_layers, s_bb.num_layers),
        t_bb.num_layers, s_bb.num_layers,
    )
    names = list(_EMBEDDING_LAYERS)
    if isinstance(s_bb, BertBackbone) and isinstance(t_bb, BertBackbone):
        names += ["segment_embedding", "pooler"]
    for name in names:
        t_layer, s_layer = t_bb.get_layer(name), s_bb.get_layer(name)
        if name == "position_embedding":
            # A student may take fewer positions than the teacher: copy the first rows.
            t_table = t_layer.get_weights()[0]
            s_len = s_layer.get_weights()[0].shape[0]
            if s_len > t_table.shape[0]:
                raise ValueError(
                    f"Student max_sequence_length={s_len} exceeds the teacher's {t_table.shape[0]}."
                )
            s_layer.set_weights([t_table[:s_len]])
            continue
        _copy_layer(t_layer, s_layer, name)
    for s_i, t_i in enumerate(layer_map):
        _copy_layer(
            t_bb.get_layer(f"transformer_layer_{t_i}"), s_bb.get_layer(f"transformer_layer_{s_i}"),
            f"teacher layer {t_i} into student layer {s_i}",
        )
    if (
        isinstance(student, Task) and isinstance(teacher, Task) and type(student) is type(teacher)
        and type(s_bb) is type(t_bb)
    ):
        _copy_head(student, teacher)
    return layer_map


def _copy_head(student, teacher):
    """Copy the head layers that exist in both with the same shapes (e.g. a BERT
    teacher's classifier into a BERT student); skip the rest silently — a DistilBERT
    student's `pre_classifier` has no counterpart in a BERT teacher."""
    s_layers, t_layers = student.head_layers, teacher.head_layers
    for name, s_layer in s_layers.items():
        t_layer = t_layers.get(name)
        if t_layer is None or not s_layer.weights:
            continue
        t_w, s_w = t_layer.get_weights(), s_layer.get_weights()
        if [w.shape for w in t_w] == [w.shape for w in s_w]:
            s_layer.set_weights([np.array(w) for w in t_w])
