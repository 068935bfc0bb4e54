"""Run reports: report.json, report.md and PNG plots in the run folder."""
import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(histories, path):
    """One panel per metric (loss, accuracy, ...), one line per model and split."""
    plt = _plt()
    metrics = sorted({k.removeprefix("val_") for h in histories.values() for k in h if k != "learning_rate"})
    metrics = [m for m in metrics if m in ("loss", "accuracy", "pearson")] or metrics[:2]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            for split, key in (("train", metric), ("dev", f"val_{metric}")):
                if key in history:
                    values = history[key]
                    ax.plot(range(1, len(values) + 1), values, marker="o", ms=3,
                            ls="-" if split == "train" else "--", label=f"{name} ({split})")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_latency(rows, path, batch_size=32):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for row in rows:
        x, y = row[f"latency_ms_batch{batch_size}"], 100 * row["accuracy"]
        ax.scatter([x], [y], s=40)
        ax.annotate(row["model"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f"latency at batch {batch_size} (ms)")
    ax.set_ylabel("dev accuracy (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion_matrix(y_true, y_pred, label_names, path, title=""):
    from sklearn.metrics import confusion_matrix

    plt = _plt()
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(label_names))))
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks(range(len(label_names)), label_names, rotation=30)
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(rows, columns):
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])
