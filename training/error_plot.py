"""The error distributions ``training.evaluate`` draws beside ``metrics.json`` (``errors.png``),
from the outputs and labels it collected (numpy), drawn by :func:`kpdata.preview.plots.write_error_plot`:

* keypoints (and KeyPose's stereo keypoints): PCK@0.1 per keypoint class, model and baseline
  (the mean keypoint position per class of the training split), over the visible keypoints;
* viewpoint: the cumulative distribution of the viewpoint error (geodesic angle between the predicted
  and true rotations, or Render for CNN's distance with ``r4cnn``), model and baseline (the most
  frequent bin);
* keypointnet: the cumulative distribution of the relative-rotation error (KeypointNet's angular
  distance of the Procrustes rotation of the predicted 3D keypoints).
"""
from __future__ import annotations

import numpy as np

from training import metrics

__all__ = ["PLOT_NAME", "ALPHA", "error_data", "write"]

PLOT_NAME = "errors.png"
ALPHA = 0.1


def _pck_by_class(pred, labels, names) -> dict:
    err = np.linalg.norm(np.asarray(pred, np.float64) - labels["uv"], axis=-1)
    hit = err < ALPHA * np.asarray(labels["box"], np.float64)[:, None]
    valid = np.asarray(labels["valid"]) > 0
    return {names[c] if c < len(names) else f"kp{c}": (float(hit[valid[:, c], c].mean()), int(valid[:, c].sum()))
            for c in range(valid.shape[1]) if valid[:, c].any()}


def error_data(task, outputs, labels, baseline, r4cnn: bool = False) -> dict:
    """``{"pck": {class: (model, baseline, n)}}`` or ``{"angle_errors": {label: (N,) degrees},
    "angle_name": str}`` for ``task``; {} when the task has neither."""
    if task.name == "keypoints":
        model = _pck_by_class(task.predict(outputs), labels, task.classes)
        mean = np.asarray(baseline["mean_uv"])[None].repeat(len(labels["uv"]), 0)
        base = _pck_by_class(mean, labels, task.classes)
        return {"pck": {k: (v[0], base.get(k, (None,))[0], v[1]) for k, v in model.items()}}
    if task.name == "viewpoint":
        cat = labels["category"]
        dist = metrics.r4cnn_distance if r4cnn else metrics.geodesic_distance

        def err(pred):
            p, g = np.radians(np.asarray(pred, np.float64)), np.radians(np.asarray(labels["angles"], np.float64))
            return np.degrees(dist(metrics.angle2dcm(*p.T), metrics.angle2dcm(*g.T)))
        mode = np.asarray(baseline["mode_bins"], np.float64)[np.maximum(cat, 0)]
        name = "Render for CNN viewpoint distance" if r4cnn else "viewpoint error (geodesic)"
        return {"angle_errors": {"model": err(task.predict(outputs, cat)), "baseline: most frequent bin": err(mode)},
                "angle_name": name}
    if task.name == "keypointnet":
        x = []
        for i in (0, 1):
            k, uv, z = labels[f"K{i}"], outputs[f"uv{i}"], outputs[f"z{i}"]
            x.append(np.stack([(uv[..., 0] - k[:, 0, 2, None]) / k[:, 0, 0, None] * z,
                               (uv[..., 1] - k[:, 1, 2, None]) / k[:, 1, 1, None] * z, z], -1))
        r_gt = (labels["T1"] @ np.linalg.inv(labels["T0"]))[:, :3, :3]
        ident = np.broadcast_to(np.eye(3), r_gt.shape)
        return {"angle_errors": {"model": np.degrees(metrics.angular_distance(metrics.procrustes_rotation(*x), r_gt)),
                                 "baseline: identity rotation": np.degrees(metrics.angular_distance(ident, r_gt))},
                "angle_name": "relative rotation error"}
    return {}


def write(path: str, task, outputs, labels, baseline, r4cnn: bool = False, title: str = "") -> str | None:
    """Draw :func:`error_data` into ``path``; None (nothing written) when the task has no such errors."""
    d = error_data(task, outputs, labels, baseline, r4cnn)
    if not d:
        return None
    from kpdata.preview import plots  # matplotlib, only here
    return plots.write_error_plot(path, d.get("pck"), d.get("angle_errors"), title or f"{task.name}: error distributions",
                                  alpha=ALPHA, angle_name=d.get("angle_name", "angle error"))
