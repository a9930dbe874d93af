"""What a simulation shows: the comparison table, plots (PNG) and a short Markdown report.

Plots (matplotlib, Agg backend, nothing on screen):
  accuracy.png  test accuracy against simulated time, one line per arm, the target dashed
  bytes.png     bytes moved per arm (down and up), and payload per update
  memory.png    the training arena each arm needs on a board, with the weakest board's budget
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ftte.sim.simulation import ArmResult, Fleet

TARGET_FRACTION = 0.9
TARGET_RULE = ("{fraction:.0%} of the way from the starting accuracy to the best accuracy the FedAvg arm "
               "reached (the first arm's when there is no FedAvg arm)")


def auto_target(results: Sequence[ArmResult], fraction: float = TARGET_FRACTION) -> float:
    """start + fraction x (best FedAvg accuracy - start): the synchronous baseline's end point,
    measured as a share of what it gained over the common starting model."""
    reference = next((r for r in results if r.strategy == "fedavg"), results[0])
    start = reference.curve[0][2]
    return start + fraction * (reference.best_accuracy - start)


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def _time(t: float | None) -> str:
    if t is None:
        return "not reached"
    return f"{t:,.1f} s" if t < 600 else f"{t / 60:,.1f} min"


def rows(results: Sequence[ArmResult], target: float) -> list[dict]:
    out = []
    for r in results:
        out.append({
            "arm": r.name, "trains": f"{r.trainable:,}/{r.parameters:,} ({r.spec_label})",
            "arena": _kb(r.arena_bytes) + ("" if r.fits_weakest else " (over budget)"),
            "payload": _kb(r.payload_per_update), "moved": f"{(r.bytes_down + r.bytes_up) / 2**20:,.1f} MB",
            "updates": f"{r.accepted:,}" + (f" (+{r.refused:,} refused)" if r.refused else ""),
            "versions": f"{r.versions:,}", "staleness": f"{r.staleness_mean:.1f}",
            "simulated": _time(r.sim_seconds), "to_target": _time(r.time_to(target)),
            "final": f"{r.final_accuracy:.1%}", "best": f"{r.best_accuracy:.1%}", "wall": f"{r.wall_seconds:.1f} s",
        })
    return out


COLUMNS = (("arm", "strategy"), ("trains", "trains (w*)"), ("arena", "arena/board"), ("payload", "payload/update"),
           ("moved", "bytes moved"), ("updates", "updates"), ("versions", "versions"),
           ("staleness", "mean staleness"), ("simulated", "simulated time"), ("to_target", "time to target"),
           ("final", "final acc."), ("best", "best acc."), ("wall", "wall time"))


TERMINAL = (("arm", "arm"), ("share", "w*"), ("arena", "arena KB"), ("payload", "KB/upd"),
            ("moved", "MB"), ("updates", "updates"), ("simulated", "sim. time"), ("to_target", "to target"),
            ("final", "acc."))


def rich_table(results: Sequence[ArmResult], target: float):
    """The comparison in a terminal (fits 80 columns; report.md has every column)."""
    from rich.table import Table

    table = Table(title=f"target: {target:.1%} test accuracy", pad_edge=False)
    for key, title in TERMINAL:
        table.add_column(title, justify="left" if key == "arm" else "right", no_wrap=True)
    for r, row in zip(results, rows(results, target)):
        row = {**row, "share": f"{r.trainable / r.parameters:.0%}", "arena": f"{r.arena_bytes / 1024:.1f}"
               + ("*" if not r.fits_weakest else ""), "payload": f"{r.payload_per_update / 1024:.1f}",
               "updates": f"{r.accepted:,}", "moved": f"{(r.bytes_down + r.bytes_up) / 2**20:,.1f}"}
        table.add_row(*(row[key] for key, _ in TERMINAL))
    table.caption = "* over the weakest board's budget; trains = share of the parameters in w*"
    return table


def markdown_table(results: Sequence[ArmResult], target: float) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(results, target):
        lines.append("| " + " | ".join(row[key] for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def plots(results: Sequence[ArmResult], fleet: Fleet, target: float, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    colors = {"ftte": "tab:red", "fedbuff": "tab:blue", "fedasync": "tab:green", "fedavg": "tab:gray"}

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in results:
        t = [p[0] for p in r.curve]
        a = [p[2] for p in r.curve]
        ax.step(t, a, where="post", label=f"{r.name} ({r.spec_label})", color=colors.get(r.strategy), lw=1.6)
    ax.axhline(target, ls="--", color="black", lw=0.8, label=f"target {target:.1%}")
    ax.set_xscale("log")  # the asynchronous arms work in seconds, FedAvg's rounds in minutes
    ax.set_xlabel("simulated time (s, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{fleet.model.name} on {fleet.data.name}: {fleet.config.boards} simulated boards")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(out / "accuracy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    names = [r.name for r in results]
    down = [r.bytes_down / 2**20 for r in results]
    up = [r.bytes_up / 2**20 for r in results]
    left.bar(names, down, label="down (values)", color="tab:blue")
    left.bar(names, up, bottom=down, label="up (deltas)", color="tab:orange")
    left.set_ylabel("MB moved in the run")
    left.legend(fontsize=8)
    left.set_title("bytes moved")
    right.bar(names, [r.payload_per_update / 1024 for r in results], color=[colors.get(r.strategy) for r in results])
    right.set_ylabel("KB per board update (down + up)")
    right.set_title("payload per update")
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    paths.append(out / "bytes.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, [r.arena_bytes / 1024 for r in results], color=[colors.get(r.strategy) for r in results])
    ax.axhline(fleet.budget / 1024, ls="--", color="black", lw=0.8,
               label=f"weakest board's budget ({fleet.budget / 1024:.1f} KB)")
    ax.set_ylabel("training arena per board (KB, C planner)")
    ax.set_title(f"on-device training memory (batch {fleet.config.batch})")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    paths.append(out / "memory.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def describe_fleet(fleet: Fleet) -> list[str]:
    c = fleet.config
    counts: dict[str, int] = {}
    for name in fleet.profiles:
        counts[name] = counts.get(name, 0) + 1
    mix = ", ".join(f"{n} x {name}" for name, n in counts.items())
    slow = int(round(c.stragglers * c.boards))
    availability = (f"FedScale-style traces from {c.traces}" if c.traces else
                    f"each board up {c.uptime:.0%} of every {c.period:g} s" if c.uptime < 1 else "always up")
    return [
        f"- model **{fleet.model.name}** ({fleet.model.parameter_count():,} parameters) on **{fleet.data.name}** "
        f"({len(fleet.data.y_train):,} training / {len(fleet.data.y_test):,} test samples; {fleet.data.source})",
        f"- {c.boards} boards: {mix}; links: {c.link or 'each profile’s first link'}; "
        f"training budget {'%d B each' % c.ram if c.ram else 'per profile'} → weakest after the {c.margin:.0%} "
        f"margin: {fleet.budget:,} B",
        f"- data: {c.partition}{f' (alpha {c.alpha:g})' if c.partition == 'dirichlet' else ''} over the boards, "
        f"{c.server_share:.0%} kept by the host",
        f"- stragglers: {slow} boards ({c.stragglers:.0%}) slowed by {c.slowdown}; availability: {availability}; "
        f"drop-out: {c.dropout:g} per task",
        f"- every arm starts from the same model: {fleet.start['mode']}, {fleet.start['detail']} "
        f"(test accuracy {fleet.start['accuracy']:.1%})",
        f"- tasks: {c.local_steps} local steps of batch {c.batch}, lr {c.lr:g}, momentum {c.momentum:g}; "
        f"K = {c.buffer_size} (FTTE, FedBuff); FTTE server lr {c.ftte_server_lr:g}; FedAvg cohort {c.fedavg_fraction:.0%} of the boards per round; "
        f"seed {c.seed}",
    ]


def write_report(results: Sequence[ArmResult], fleet: Fleet, target: float, out: Path, command: str = "") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    images = plots(results, fleet, target, out)
    c = fleet.config
    lines = [f"# Simulated fleet: {fleet.model.name} on {fleet.data.name}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += describe_fleet(fleet)
    stop = (f"every arm runs {c.horizon:g} simulated seconds" if c.horizon else
            f"the first asynchronous arm runs {c.updates:,} accepted updates; the other asynchronous arms stop "
            f"at the same simulated time; FedAvg runs {c.rounds} rounds")
    lines += [f"- stopping: {stop}",
              f"- target: {target:.1%} test accuracy = {TARGET_RULE.format(fraction=TARGET_FRACTION)}", "",
              markdown_table(results, target), "",
              "Simulated time and bytes come from the board profiles (docs/simulator.md); accuracy is measured: "
              "every update was trained through the C kernels and aggregated by the production strategies.", ""]
    by = {r.strategy: r for r in results}
    if "ftte" in by and "fedavg" in by:
        f, a = by["ftte"], by["fedavg"]
        tf, ta = f.time_to(target), a.time_to(target)
        if tf is not None and ta is not None:
            lines.append(f"- FTTE reaches the target in {_time(tf)}, FedAvg in {_time(ta)}: "
                         f"{1 - tf / ta:.0%} less simulated time.")
        lines.append(f"- training memory per board: FTTE {_kb(f.arena_bytes)}, FedAvg (full backprop) "
                     f"{_kb(a.arena_bytes)}: {1 - f.arena_bytes / a.arena_bytes:.0%} less.")
        lines.append(f"- payload per update: FTTE {_kb(f.payload_per_update)}, FedAvg {_kb(a.payload_per_update)}: "
                     f"{1 - f.payload_per_update / a.payload_per_update:.0%} less.")
    if "ftte" in by and "fedbuff" in by:
        f, b = by["ftte"], by["fedbuff"]
        lines.append(f"- final accuracy: FTTE {f.final_accuracy:.1%}, FedBuff {b.final_accuracy:.1%} "
                     f"({(f.final_accuracy - b.final_accuracy) * 100:+.1f} points).")
    over = [r.name for r in results if not r.fits_weakest]
    if over:
        lines.append(f"- over the weakest board's budget (simulated anyway, as the baselines of the paper are): "
                     f"{', '.join(over)}.")
    lines += ["", *[f"![{p.stem}]({p.name})" for p in images], ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps({"config": _plain(c), "start": fleet.start, "target": target,
                                                  "arms": [r.summary() for r in results]}, indent=1))
    return path


def _plain(config) -> dict:
    import dataclasses

    data = dataclasses.asdict(config)
    data["arms"] = [dataclasses.asdict(a) for a in config.arms]
    return data
