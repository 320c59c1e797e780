"""Distribution plots (matplotlib, Agg backend; imported only by the commands that draw them, so
the pipelines' import time does not pay for matplotlib):

* :func:`write_fit_plot`: ``fit_viewpoints``' fitted distributions, per class the sampled against
  the input marginals of azimuth, elevation, tilt, distance and the four truncation box sides;
* :func:`write_viewpoint_plot`: the viewpoints a render actually rendered (azimuth, elevation,
  tilt, distance histograms, per category);
* :func:`write_error_plot`: a trained model's error distributions: per-keypoint PCK, and the
  cumulative distribution of angle errors where the layout has angles.

Inputs are numpy arrays (angles in degrees); every function writes one PNG and returns its path.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["VIEW_COLUMNS", "TRUNCATION_COLUMNS", "write_fit_plot", "write_viewpoint_plot", "write_error_plot"]

VIEW_COLUMNS = ("azimuth (deg)", "elevation (deg)", "tilt (deg)", "distance")
TRUNCATION_COLUMNS = ("truncation left", "truncation right", "truncation top", "truncation bottom")
_INPUT_COLOR = "#d62728"
_SAMPLE_COLOR = "#1f77b4"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _bins(*columns, n: int = 40) -> np.ndarray:
    vals = np.concatenate([np.asarray(c, np.float64).ravel() for c in columns if len(c)])
    vals = vals[np.isfinite(vals)]
    lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def _compare(ax, sampled, given, title: str) -> None:
    """Sampled (filled) against input (outline) densities of one column on ``ax``."""
    bins = _bins(sampled, given)
    if len(sampled):
        ax.hist(sampled, bins=bins, density=True, color=_SAMPLE_COLOR, alpha=0.45, label=f"sampled (n={len(sampled)})")
    if len(given):
        ax.hist(given, bins=bins, density=True, histtype="step", linewidth=1.6, color=_INPUT_COLOR,
                label=f"input (n={len(given)})")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_yticks([])


def write_fit_plot(path: str, classes: dict, title: str = "") -> str:
    """``classes``: {class: {"views": (N, 4) input az, el, tilt, distance, "view_samples": (M, 4),
    "truncations": (N', 4) input left, right, top, bottom, "truncation_samples": (M', 4) or absent}}.
    One row per class, eight columns (:data:`VIEW_COLUMNS` + :data:`TRUNCATION_COLUMNS`; truncation
    panels say "no truncations" when the class has none), densities, sampled filled in blue, input
    outlined in red."""
    plt = _pyplot()
    names = sorted(classes)
    cols = VIEW_COLUMNS + TRUNCATION_COLUMNS
    fig, axes = plt.subplots(len(names), len(cols), figsize=(2.3 * len(cols), 1.9 * len(names) + 0.9), squeeze=False)
    for r, cls in enumerate(names):
        c = classes[cls]
        empty = np.zeros((0, 4))
        views, vs = np.asarray(c.get("views", empty)).reshape(-1, 4), np.asarray(c.get("view_samples", empty)).reshape(-1, 4)
        tr, ts = (np.asarray(c.get("truncations", empty)).reshape(-1, 4),
                  np.asarray(c.get("truncation_samples", empty)).reshape(-1, 4))
        for j in range(4):
            _compare(axes[r, j], vs[:, j], views[:, j], f"{cls}: {cols[j]}")
            if len(ts):
                _compare(axes[r, 4 + j], ts[:, j], tr[:, j], f"{cls}: {cols[4 + j]}")
            else:
                axes[r, 4 + j].set_axis_off()
                axes[r, 4 + j].text(0.5, 0.5, f"{cls}: no truncations\n(fewer than 2 boxes)", ha="center",
                                    va="center", fontsize=8, transform=axes[r, 4 + j].transAxes)
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            key = lab.split(" (")[0]
            if key not in labels:
                handles.append(h)
                labels.append(key)
    fig.legend(handles, [f"{lab} (density)" for lab in labels], loc="upper right", fontsize=8, ncol=2)
    fig.suptitle(title or "fitted viewpoint and truncation distributions: sampled vs input", fontsize=10, x=0.01,
                 ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return _save(fig, path)


def write_viewpoint_plot(path: str, viewpoints, categories=None, title: str = "") -> str:
    """Histograms of the rendered viewpoints. ``viewpoints``: (N, 4) azimuth, elevation, tilt
    (degrees), distance; ``categories``: (N,) labels (e.g. synsets) stacked per category, or None."""
    plt = _pyplot()
    vp = np.asarray(viewpoints, np.float64).reshape(-1, 4)
    cats = np.asarray(categories if categories is not None else ["all"] * len(vp)).astype(str)
    names = sorted(set(cats.tolist()))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    for j, ax in enumerate(axes):
        ax.set_title(VIEW_COLUMNS[j], fontsize=9)
        col = vp[:, j]
        if not np.isfinite(col).any():
            ax.text(0.5, 0.5, "not stored in these records", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        data = [col[(cats == c) & np.isfinite(col)] for c in names]
        bins = np.arange(0, 361, 15) if j == 0 else _bins(col, n=24)
        ax.hist(data, bins=bins, stacked=True, label=[f"{c} ({len(d)})" for c, d in zip(names, data)])
        ax.set_ylabel("views" if j == 0 else "", fontsize=8)
        ax.tick_params(labelsize=7)
    if len(names) > 1 or names != ["all"]:
        axes[0].legend(fontsize=7, title="category (views)", title_fontsize=7)
    fig.suptitle(title or f"rendered viewpoints ({len(vp)} views)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def write_error_plot(path: str, pck: dict | None = None, angle_errors: dict | None = None, title: str = "",
                     alpha: float = 0.1, angle_name: str = "angle error") -> str:
    """A trained model's error distributions.

    ``pck``: {keypoint class: (model PCK, baseline PCK or None, keypoints evaluated)} at ``alpha``
    of the box size, one horizontal bar pair per class; ``angle_errors``: {curve label: (N,) errors
    in degrees} drawn as cumulative distributions, with the pi/6 (30 degree) accuracy threshold
    marked. Either may be None (its panel is left out)."""
    plt = _pyplot()
    panels = [p for p in (pck, angle_errors) if p]
    if not panels:
        raise ValueError(f"{path}: nothing to plot (no per-keypoint PCK and no angle errors)")
    rows = max(1, len(pck or {}))
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), max(3.2, 0.22 * rows + 1.4)), squeeze=False)
    axes = list(axes[0])
    if pck:
        ax = axes.pop(0)
        names = sorted(pck)
        y = np.arange(len(names))
        model = [pck[n][0] for n in names]
        base = [pck[n][1] if pck[n][1] is not None else np.nan for n in names]
        ax.barh(y - 0.2, model, height=0.4, color=_SAMPLE_COLOR, label="model")
        ax.barh(y + 0.2, base, height=0.4, color="#aaaaaa", label="baseline")
        ax.set_yticks(y, [f"{n} (n={pck[n][2]})" for n in names], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"PCK@{alpha:g} (fraction of visible keypoints within {alpha:g} x box size)", fontsize=8)
        ax.set_title("per-keypoint PCK", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    if angle_errors:
        ax = axes.pop(0)
        for label, err in sorted(angle_errors.items()):
            e = np.sort(np.asarray(err, np.float64).ravel())
            if len(e):
                ax.step(e, np.arange(1, len(e) + 1) / len(e), where="post",
                        label=f"{label} (median {np.median(e):.1f} deg, n={len(e)})")
        ax.axvline(30.0, color="k", linestyle=":", linewidth=1, label="pi/6 = 30 deg (acc_pi6 threshold)")
        ax.set_xlim(0, 180)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"{angle_name} (deg)", fontsize=8)
        ax.set_ylabel("fraction with error <= x", fontsize=8)
        ax.set_title(f"cumulative distribution of the {angle_name}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
