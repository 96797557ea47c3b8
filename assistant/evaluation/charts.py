"""PNG charts of an evaluation report, drawn with matplotlib's Agg canvas (no display, no pyplot state).

    from assistant.evaluation.charts import write_charts
    paths = write_charts(summarize(records), out_dir, sweep=None)   # accuracy.png, accuracy_latency.png, ...

Each chart takes `StrategySummary` rows (see evaluation.summary) or sweep entries and a target path, and
draws something sensible on degenerate input (one strategy, everything right, no latency, no retrieval):
a report must never fail because a chart had nothing to show. matplotlib is imported inside the
functions so that importing the evaluation package stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.evaluation.buckets import BUCKETS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from assistant.evaluation.summary import StrategySummary

# one fixed colour per bucket, so the same bucket looks the same in every report
_BUCKET_COLORS = {
    "error": "#d62728",
    "refusal": "#9467bd",
    "repetitive": "#8c564b",
    "too_long": "#e377c2",
    "format": "#7f7f7f",
    "retrieval_miss": "#ff7f0e",
    "wrong_with_gold": "#bcbd22",
    "wrong": "#1f77b4",
}


def _figure(width: float = 7.0, height: float = 4.2) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555")


def _strategy_axis(ax: Axes, names: Sequence[str]) -> None:
    ax.set_xticks(range(len(names)))
    rotate = max((len(n) for n in names), default=0) > 8 or len(names) > 5
    ax.set_xticklabels(names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)


def accuracy_chart(summaries: Sequence[StrategySummary], path: Path) -> Path:
    """A bar per strategy with its 95% bootstrap confidence interval as error bars."""
    fig, ax = _figure()
    names = [s.strategy for s in summaries]
    acc = [s.accuracy for s in summaries]
    err = [[max(0.0, s.accuracy - s.ci_low) for s in summaries], [max(0.0, s.ci_high - s.accuracy) for s in summaries]]
    ax.bar(range(len(names)), acc, yerr=err, capsize=4, color="#4c72b0", ecolor="#222222")
    for i, a in enumerate(acc):
        ax.text(i, min(a + 0.02, 1.02), f"{a:.3f}", ha="center", va="bottom", fontsize=8)
    _strategy_axis(ax, names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title("Accuracy per strategy")
    if not names:
        _note(ax, "no records")
    return _save(fig, path)


def accuracy_latency_chart(summaries: Sequence[StrategySummary], path: Path) -> Path:
    """Accuracy against p50 latency, one labelled point per strategy (up and to the left is better)."""
    fig, ax = _figure()
    timed = [s for s in summaries if s.latency_p50 is not None]
    for s in timed:
        assert s.latency_p50 is not None
        ax.errorbar([s.latency_p50], [s.accuracy], yerr=[[s.accuracy - s.ci_low], [s.ci_high - s.accuracy]],
                    fmt="o", capsize=3)
        ax.annotate(s.strategy, (s.latency_p50, s.accuracy), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.set_ylim(0, 1.08)
    top = max((s.latency_p50 or 0.0 for s in timed), default=0.0)
    ax.set_xlim(0, top * 1.25 if top > 0 else 1.0)
    ax.set_xlabel("p50 latency (s)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs latency")
    if not timed:
        _note(ax, "no latency recorded")
    return _save(fig, path)


def errors_chart(summaries: Sequence[StrategySummary], path: Path) -> Path:
    """Stacked bars: wrong answers of each strategy split by error bucket."""
    fig, ax = _figure()
    names = [s.strategy for s in summaries]
    bottom = [0.0] * len(names)
    for bucket in BUCKETS:
        counts = [float(s.errors.get(bucket, 0)) for s in summaries]
        if not any(counts):
            continue
        ax.bar(range(len(names)), counts, bottom=bottom, label=bucket, color=_BUCKET_COLORS.get(bucket))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _strategy_axis(ax, names)
    ax.set_ylim(0, max(max(bottom, default=0.0) * 1.1, 1.0))
    ax.set_ylabel("wrong answers")
    ax.set_title("Error analysis")
    if any(bottom):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        _note(ax, "no wrong answers")
    return _save(fig, path)


def _points(sweep: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, Any]]] = {}
    for entry in sweep:
        if "reference" in entry or entry.get("examples") is None or entry.get("accuracy") is None:
            continue
        lines.setdefault(str(entry.get("recipe") or entry.get("strategy", "adapter")), []).append(entry)
    return {name: sorted(pts, key=lambda e: float(e["examples"])) for name, pts in lines.items()}


def data_size_chart(sweep: Sequence[dict[str, Any]], path: Path) -> Path:
    """Accuracy (with CI) against the number of training examples, one line per adapter recipe, on a
    log x axis, with horizontal reference lines for strategies that need no training data (e.g. RAG)."""
    fig, ax = _figure(7.5, 4.5)
    lines = _points(sweep)
    xs = [float(e["examples"]) for pts in lines.values() for e in pts]
    for name, pts in lines.items():
        x = [float(e["examples"]) for e in pts]
        y = [float(e["accuracy"]) for e in pts]
        low = [max(0.0, a - float(e.get("ci_low", a))) for a, e in zip(y, pts, strict=True)]
        high = [max(0.0, float(e.get("ci_high", a)) - a) for a, e in zip(y, pts, strict=True)]
        ax.errorbar(x, y, yerr=[low, high], fmt="-o", capsize=3, label=name)
    styles = ["--", ":", "-.", (0, (5, 1))]
    for i, entry in enumerate(e for e in sweep if "reference" in e and e.get("accuracy") is not None):
        acc = float(entry["accuracy"])
        ax.axhline(acc, linestyle=styles[i % len(styles)], color=f"C{(i + len(lines)) % 10}",
                   label=f"{entry['reference']} ({acc:.3f})")
    if xs and min(xs) > 0:
        ax.set_xscale("log")
    elif xs:
        ax.set_xscale("symlog", linthresh=max(1.0, min((x for x in xs if x > 0), default=1.0)))
    if xs:
        span = (min(xs), max(xs))
        if span[0] == span[1]:  # one training size: widen so the log axis has a range to draw
            ax.set_xlim(*((span[0] / 2, span[0] * 2) if span[0] > 0 else (-1.0, 1.0)))
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title("Accuracy vs training data")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    if not xs and not any("reference" in e for e in sweep):
        _note(ax, "no sweep points")
    return _save(fig, path)


def write_charts(
    summaries: Sequence[StrategySummary], out_dir: Path, *, sweep: Sequence[dict[str, Any]] | None = None
) -> dict[str, Path]:
    """Write every chart into `out_dir`; returns {title: path}, the data-size chart only with a sweep."""
    charts = {
        "Accuracy per strategy": accuracy_chart(summaries, out_dir / "accuracy.png"),
        "Accuracy vs latency": accuracy_latency_chart(summaries, out_dir / "accuracy_latency.png"),
        "Error analysis": errors_chart(summaries, out_dir / "errors.png"),
    }
    if sweep is not None:
        charts["Accuracy vs training data"] = data_size_chart(sweep, out_dir / "data_size.png")
    return charts


__all__ = ["accuracy_chart", "accuracy_latency_chart", "data_size_chart", "errors_chart", "write_charts"]
