"""Plots of the paper benchmark (matplotlib, Agg backend), from the rows `run_setting` returns.

  paper_curves.png   test accuracy against simulated time (log scale) of FTTE, FedBuff, FedAsync
                     and FedAvg, one panel per setting, every seed (the first seed solid, the
                     others faint), each setting's first-seed target dashed; the accuracy axis
                     spans the other arms, so FedAsync's collapses run off the bottom
  paper_summary.png  per setting: the time, memory and payload reductions against FedAvg (mean
                     over seeds, the spread as a bar) with the paper's figures dashed; and
                     FTTE's final accuracy minus FedBuff's, every seed a dot
"""

from __future__ import annotations

import statistics
from pathlib import Path

COLORS = {"ftte": "tab:red", "fedbuff": "tab:blue", "fedasync": "tab:green", "fedavg": "tab:gray"}
NAMES = {"ftte": "FTTE", "fedbuff": "FedBuff", "fedasync": "FedAsync", "fedavg": "FedAvg"}


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        s = row["setting"]
        groups.setdefault((s["data"], s["boards"], s["stragglers"]), []).append(row)
    return {key: sorted(group, key=lambda r: r["setting"]["seed"]) for key, group in sorted(groups.items())}


def _label(key: tuple) -> str:
    data, boards, stragglers = key
    return f"{data}, {boards} boards, {stragglers:.0%} stragglers"


def curves(rows: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    groups = _groups(rows)
    columns = max(1, (len(groups) + 1) // 2)
    fig, axes = plt.subplots(2 if len(groups) > 1 else 1, columns, figsize=(4.2 * columns, 7), squeeze=False)
    for ax, (key, group) in zip(axes.flat, groups.items()):
        for i, row in enumerate(group):
            for strategy, curve in row["curves"].items():
                t, accuracy = [p[0] for p in curve], [p[1] for p in curve]
                ax.step(t, accuracy, where="post", color=COLORS.get(strategy), lw=1.4 if i == 0 else 0.6,
                        alpha=1.0 if i == 0 else 0.3, label=NAMES.get(strategy, strategy) if i == 0 else None)
        ax.axhline(group[0]["target"], ls="--", color="black", lw=0.7, label="target (first seed)")
        ax.set_ylim(*_span(group))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 10, 100 rather than 10^1, and no crowded minor labels
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(_label(key), fontsize=9)
        ax.set_xlabel("simulated time (s, log scale)", fontsize=8)
        ax.set_ylabel("test accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = out / "paper_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _span(group: list[dict]) -> tuple[float, float]:
    """Accuracy range of the arms other than FedAsync, whose collapses would squash the rest
    (they run off the bottom of the panel)."""
    values = [a for row in group for strategy, curve in row["curves"].items() if strategy != "fedasync"
              for _, a in curve]
    return min(values) - 0.01, max(values) + 0.01


def summary(rows: list[dict], paper: dict[str, float], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(rows)
    labels = [f"{d[:5]}\n{b}/{s:.0%}" for d, b, s in groups]
    x = list(range(len(groups)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    measures = (("time_reduction", "time to target", "tab:red"), ("memory_reduction", "memory", "tab:purple"),
                ("payload_reduction", "payload/update", "tab:orange"))
    width = 0.26
    for k, (field, name, color) in enumerate(measures):
        means, spreads = [], []
        for group in groups.values():
            values = [r[field] for r in group if r[field] is not None]
            means.append(statistics.mean(values) if values else 0.0)
            spreads.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        left.bar([i + (k - 1) * width for i in x], means, width, yerr=spreads, color=color, label=name, capsize=2)
        left.axhline(paper[field.split("_")[0]], ls="--", color=color, lw=0.8)
    left.set_xticks(x, labels, fontsize=7)
    left.set_ylim(0.5, 1.0)
    left.set_ylabel("reduction against FedAvg (dashed: the paper's)")
    left.set_title("time to target, memory and payload per update")
    left.legend(fontsize=8, loc="lower left")
    for i, group in enumerate(groups.values()):
        gaps = [100 * r["acc_gap"] for r in group]
        right.scatter([i] * len(gaps), gaps, color="tab:red", s=12, alpha=0.6)
        right.errorbar([i], [statistics.mean(gaps)], yerr=[statistics.stdev(gaps) if len(gaps) > 1 else 0.0],
                       fmt="s", color="black", capsize=3, ms=5)
    right.axhline(0.0, color="black", lw=0.8)
    right.set_xticks(x, labels, fontsize=7)
    right.set_ylabel("FTTE − FedBuff final accuracy (points)")
    right.set_title("accuracy against FedBuff (dots: seeds; squares: mean ± sd)")
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path = out / "paper_summary.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
