"""Model sizes. Turc et al. (2019) for the small BERTs; Devlin et al. and Sanh et al. for the rest."""

_BERT_COMMON = dict(vocabulary_size=30522, max_sequence_length=512, num_segments=2, dropout=0.1)

PRESETS = {
    "bert_tiny": dict(_BERT_COMMON, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512),
    "bert_mini": dict(_BERT_COMMON, num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024),
    "bert_small": dict(_BERT_COMMON, num_layers=4, num_heads=8, hidden_dim=512, intermediate_dim=2048),
    "bert_medium": dict(_BERT_COMMON, num_layers=8, num_heads=8, hidden_dim=512, intermediate_dim=2048),
    "bert_base": dict(_BERT_COMMON, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072),
    "bert_large": dict(_BERT_COMMON, num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096),
    "distilbert_base": dict(
        vocabulary_size=30522, max_sequence_length=512, dropout=0.1,
        num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072,
    ),
}

# Which backbone class each preset belongs to.
PRESET_ARCHITECTURE = {name: ("distilbert" if name.startswith("distilbert") else "bert") for name in PRESETS}


# The Hugging Face checkpoint names of the same sizes (the design card's spelling).
PRESET_ALIASES = {
    "bert_base_uncased": "bert_base",
    "bert_large_uncased": "bert_large",
    "distilbert_base_uncased": "distilbert_base",
}


def preset_config(name, architecture):
    resolved = PRESET_ALIASES.get(name, name)
    if resolved not in PRESETS or PRESET_ARCHITECTURE[resolved] != architecture:
        valid = sorted(n for n, arch in PRESET_ARCHITECTURE.items() if arch == architecture)
        raise ValueError(f"Unknown {architecture} preset {name!r}. Valid presets: {', '.join(valid)}.")
    return dict(PRESETS[resolved])
