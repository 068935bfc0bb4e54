"""Which teacher layer each student layer learns from (and is initialised from)."""


def default_layer_map(teacher_layers, student_layers):
    """DistilBERT's own choice for 12->6 ([0, 2, 4, 7, 9, 11]); one layer of every k
    when the depths divide; otherwise evenly spaced from the first to the last layer."""
    if student_layers > teacher_layers:
        raise ValueError(
            f"The student has more layers ({student_layers}) than the teacher ({teacher_layers}); "
            "give an explicit layer_map."
        )
    if (teacher_layers, student_layers) == (12, 6):
        return [0, 2, 4, 7, 9, 11]
    if teacher_layers % student_layers == 0:
        stride = teacher_layers // student_layers
        return list(range(0, teacher_layers, stride))
    if student_layers == 1:
        return [teacher_layers - 1]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(i * step + 0.5) for i in range(student_layers)]


def check_layer_map(layer_map, teacher_layers, student_layers):
    layer_map = [int(i) for i in layer_map]
    if len(layer_map) != student_layers:
        raise ValueError(
            f"layer_map has {len(layer_map)} entries but the student has {student_layers} layers: {layer_map}."
        )
    bad = [i for i in layer_map if not 0 <= i < teacher_layers]
    if bad:
        raise ValueError(
            f"layer_map names teacher layers {bad} that do not exist: the teacher has layers "
            f"0..{teacher_layers - 1}. layer_map={layer_map}."
        )
    return layer_map
