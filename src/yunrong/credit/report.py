"""A self-contained HTML report of a cross-validation: ROC, KS, calibration and score distribution.

Charts are inline SVG generated here (no JavaScript, no CDN, no plotting library), so the file
opens anywhere, offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from yunrong.credit.evaluate import Evaluation

W, H, PAD = 420, 300, 40
COLOURS = {
    "scorecard": "#1f77b4",
    "gbm": "#d62728",
    "ensemble": "#2ca02c",
    "bad": "#d62728",
    "good": "#1f77b4",
}


def _xy(x: float, y: float, xmax: float = 1.0, ymax: float = 1.0, xmin: float = 0.0) -> tuple[float, float]:
    px = PAD + (x - xmin) / ((xmax - xmin) or 1) * (W - 2 * PAD)
    py = H - PAD - y / (ymax or 1) * (H - 2 * PAD)
    return px, py


def _svg(title: str, body: str, xlabel: str, ylabel: str, legend: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<rect x="{W - 130}" y="{12 + 16 * i}" width="10" height="10" fill="{c}"/>'
        f'<text x="{W - 115}" y="{21 + 16 * i}" font-size="11">{html.escape(n)}</text>'
        for i, (n, c) in enumerate(legend)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
        f'aria-label="{html.escape(title)}">'
        f'<rect width="{W}" height="{H}" fill="white"/>'
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>'
        f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{html.escape(title)}</text>"
        f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{html.escape(xlabel)}</text>'
        f'<text x="12" y="{H / 2}" font-size="11" transform="rotate(-90 12 {H / 2})" '
        f'text-anchor="middle">{html.escape(ylabel)}</text>'
        f"{body}{items}</svg>"
    )


def _line(points: Sequence[tuple[float, float]], colour: str, dash: str = "") -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{extra} points="{path}"/>'


def _thin(a: np.ndarray, b: np.ndarray, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    if len(a) <= n:
        return a, b
    idx = np.unique(np.linspace(0, len(a) - 1, n).astype(int))
    return a[idx], b[idx]


def roc_chart(ev: Evaluation) -> str:
    from sklearn.metrics import roc_curve

    body = _line([_xy(0, 0), _xy(1, 1)], "#999", "4 3")
    for name, p in ev.oof.items():
        fpr, tpr, _ = roc_curve(ev.y, p)
        fpr, tpr = _thin(fpr, tpr)
        body += _line([_xy(x, y) for x, y in zip(fpr, tpr, strict=True)], COLOURS.get(name, "#000"))
    models = ev.models
    legend = [(f"{n} AUC {models[n]['auc']:.3f}", COLOURS.get(n, "#000")) for n in ev.oof]
    return _svg("ROC (out of fold)", body, "false positive rate", "true positive rate", legend)


def ks_chart(ev: Evaluation, model: str) -> str:
    p = ev.oof[model]
    order = np.argsort(-p)
    y = ev.y[order]
    cum_bad = np.concatenate([[0], np.cumsum(y) / max(y.sum(), 1)])
    cum_good = np.concatenate([[0], np.cumsum(1 - y) / max((1 - y).sum(), 1)])
    share = np.linspace(0, 1, len(cum_bad))
    s1, b1 = _thin(share, cum_bad)
    s2, g1 = _thin(share, cum_good)
    gap = np.abs(cum_bad - cum_good)
    k = int(np.argmax(gap))
    x0, ya = _xy(share[k], cum_bad[k])
    _, yb = _xy(share[k], cum_good[k])
    body = _line([_xy(a, b) for a, b in zip(s1, b1, strict=True)], COLOURS["bad"])
    body += _line([_xy(a, b) for a, b in zip(s2, g1, strict=True)], COLOURS["good"])
    body += (
        f'<line x1="{x0:.1f}" y1="{ya:.1f}" x2="{x0:.1f}" y2="{yb:.1f}" '
        'stroke="#000" stroke-dasharray="3 2"/>'
    )
    legend = [
        ("bads (cumulative)", COLOURS["bad"]),
        ("goods (cumulative)", COLOURS["good"]),
        (f"KS {gap[k]:.3f}", "#000"),
    ]
    return _svg(f"KS — {model}", body, "share of rows, riskiest first", "cumulative share", legend)


def calibration_chart(ev: Evaluation, bins: int = 10) -> str:
    body = _line([_xy(0, 0), _xy(1, 1)], "#999", "4 3")
    top = 0.0
    curves = {}
    for name, p in ev.oof.items():
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        xs = [float(p[which == b].mean()) for b in range(len(edges) - 1) if (which == b).any()]
        ys = [float(ev.y[which == b].mean()) for b in range(len(edges) - 1) if (which == b).any()]
        curves[name] = (xs, ys)
        top = max(top, *xs, *ys)
    top = min(1.0, top * 1.05 or 1.0)
    body = _line([_xy(0, 0, top, top), _xy(top, top, top, top)], "#999", "4 3")
    for name, (xs, ys) in curves.items():
        pts = [_xy(x, y, top, top) for x, y in zip(xs, ys, strict=True)]
        body += _line(pts, COLOURS.get(name, "#000"))
        body += "".join(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{COLOURS.get(name, "#000")}"/>' for x, y in pts
        )
    return _svg(
        f"Calibration (deciles; axes 0–{top:.2f})",
        body,
        "mean predicted PD",
        "observed bad rate",
        [(n, COLOURS.get(n, "#000")) for n in curves],
    )


def score_chart(ev: Evaluation, bins: int = 30) -> str:
    s = ev.scores
    edges = np.linspace(float(np.min(s)), float(np.max(s)) + 1e-9, bins + 1)
    body = ""
    hist = {}
    for label, mask in (("good", ev.y == 0), ("bad", ev.y == 1)):
        counts, _ = np.histogram(s[mask], edges)
        hist[label] = counts / max(mask.sum(), 1)
    top = max(float(h.max()) for h in hist.values()) or 1.0
    for label, share in hist.items():
        pts = [
            _xy(float(e), float(v), float(edges[-1]), top, float(edges[0]))
            for e, v in zip(edges[:-1], share, strict=True)
        ]
        body += _line(pts, COLOURS[label])
    return _svg(
        "Scorecard points (out of fold)",
        body,
        f"score ({edges[0]:.0f}–{edges[-1]:.0f})",
        "share of class",
        [("goods", COLOURS["good"]), ("bads", COLOURS["bad"])],
    )


def render(ev: Evaluation, title: str = "Credit model evaluation") -> str:
    models = ev.models
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td>"
        + "".join(f"<td>{m[k]:.4f}</td>" for k in ("auc", "ks", "gini", "brier"))
        + "</tr>"
        for n, m in models.items()
    )
    charts = [roc_chart(ev), ks_chart(ev, ev.best), calibration_chart(ev), score_chart(ev)]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
.charts{{display:flex;flex-wrap:wrap;gap:16px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Data: {html.escape(ev.source or "(table)")} — sha256 <code>{html.escape(ev.sha256[:16])}…</code>;
{ev.rows} rows, bad rate {ev.bad_rate:.2%}; stratified {ev.folds}-fold cross-validation, seed {ev.seed}.
Metrics on pooled out-of-fold predictions. Best model: <b>{html.escape(ev.best)}</b>.</p>
<table><tr><th>model</th><th>AUC</th><th>KS</th><th>Gini</th><th>Brier</th></tr>{rows}</table>
<div class="charts">{"".join(charts)}</div>
</body></html>
"""
