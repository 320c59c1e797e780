"""The seeds' metrics, in numpy (no TensorFlow: usable and tested anywhere).

- Keypoints: PCK@alpha of the object box size (a keypoint is correct when its pixel error is below
  ``alpha * box_size``, box size = the longer side of the object's tight box) and the mean pixel
  error, over visible ground-truth keypoints.
- Viewpoint (formats §3.9): ``R = angle2dcm(az, el, tilt)`` (MATLAB 'ZYX', passive:
  ``Rx(tilt) Ry(el) Rz(az)``); distance = the geodesic angle of ``R_pred^T R_gt``, or with
  ``r4cnn=True`` Render for CNN's ``norm(logm(R_pred^T R_gt), 2) / sqrt(2)`` (= angle / sqrt(2),
  for comparison with published numbers); ``Acc_pi/6`` = fraction with distance < pi/6,
  ``MedErr`` = median distance in degrees; both per object class, then averaged over classes.
- KeypointNet (formats §1.7): weighted-Procrustes rotation between the two views' 3D keypoints;
  angular distance ``2 asin(min(1, ||R_hat - R||_F / (2 sqrt 2)))``, mean over pairs (degrees).
"""
from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------------------------------
# keypoints
# ------------------------------------------------------------------------------------------

def decode_heatmaps(logits: np.ndarray, stride: float, window: int = 2) -> np.ndarray:
    """(B, h, w, C) heatmap logits -> (B, C, 2) keypoints (u, v) in input pixels.

    The argmax cell, refined by the probability-weighted mean of the cells within ``window``
    of it; heatmap cell (i, j) covers input pixels whose centre maps to
    ``((j + 0.5) * stride - 0.5, (i + 0.5) * stride - 0.5)``."""
    logits = np.asarray(logits, dtype=np.float64)
    b, h, w, c = logits.shape
    flat = logits.transpose(0, 3, 1, 2).reshape(b, c, h * w)
    prob = np.exp(flat - flat.max(axis=-1, keepdims=True))
    prob = prob.reshape(b, c, h, w)
    arg = flat.argmax(axis=-1)
    ai, aj = arg // w, arg % w
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    near = (np.abs(ii[None, None] - ai[..., None, None]) <= window) & (np.abs(jj[None, None] - aj[..., None, None]) <= window)
    p = prob * near
    p = p / p.sum(axis=(-2, -1), keepdims=True)
    i = (p * ii).sum(axis=(-2, -1))
    j = (p * jj).sum(axis=(-2, -1))
    return np.stack([(j + 0.5) * stride - 0.5, (i + 0.5) * stride - 0.5], axis=-1)


def keypoint_metrics(pred_uv, gt_uv, valid, box_size, pixel_scale=None, alphas=(0.05, 0.1)) -> dict:
    """pred_uv, gt_uv (N, C, 2) pixels; valid (N, C) bool (visible GT keypoints); box_size (N,)
    in the same pixels; pixel_scale (N,) original-image pixels per pixel (for ``mean_px_error``
    in the original image; default 1)."""
    pred_uv, gt_uv = np.asarray(pred_uv, np.float64), np.asarray(gt_uv, np.float64)
    valid = np.asarray(valid, bool)
    box = np.asarray(box_size, np.float64)[:, None]
    scale = np.ones(len(box)) if pixel_scale is None else np.asarray(pixel_scale, np.float64)
    err = np.linalg.norm(pred_uv - gt_uv, axis=-1)
    n = int(valid.sum())
    out = {"keypoints_evaluated": n}
    if n == 0:
        return out
    for a in alphas:
        out[f"pck@{a:g}"] = float((err < a * box)[valid].mean())
    out["mean_px_error"] = float((err * scale[:, None])[valid].mean())
    return out


# ------------------------------------------------------------------------------------------
# viewpoint
# ------------------------------------------------------------------------------------------

def angle2dcm(azimuth, elevation, tilt) -> np.ndarray:
    """MATLAB ``angle2dcm(az, el, tilt, 'ZYX')`` (radians): (..., 3, 3) passive rotation
    ``Rx(tilt) @ Ry(el) @ Rz(az)``."""
    az, el, ti = (np.asarray(x, np.float64) for x in (azimuth, elevation, tilt))
    ca, sa, ce, se, ct, st = np.cos(az), np.sin(az), np.cos(el), np.sin(el), np.cos(ti), np.sin(ti)
    one, zero = np.ones_like(ca), np.zeros_like(ca)
    rz = np.stack([np.stack([ca, sa, zero], -1), np.stack([-sa, ca, zero], -1), np.stack([zero, zero, one], -1)], -2)
    ry = np.stack([np.stack([ce, zero, -se], -1), np.stack([zero, one, zero], -1), np.stack([se, zero, ce], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, ct, st], -1), np.stack([zero, -st, ct], -1)], -2)
    return rx @ ry @ rz


def geodesic_distance(r1, r2) -> np.ndarray:
    """Rotation angle of ``r1^T r2`` (radians), (..., 3, 3) -> (...)."""
    m = np.swapaxes(np.asarray(r1, np.float64), -1, -2) @ np.asarray(r2, np.float64)
    cos = (np.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def r4cnn_distance(r1, r2) -> np.ndarray:
    """Render for CNN's ``norm(logm(R1^T R2), 2) / sqrt(2)`` (the matrix 2-norm: angle / sqrt 2)."""
    from scipy.linalg import logm

    r1, r2 = np.asarray(r1, np.float64).reshape(-1, 3, 3), np.asarray(r2, np.float64).reshape(-1, 3, 3)
    out = np.empty(len(r1))
    for i, (a, b) in enumerate(zip(r1, r2)):
        out[i] = np.linalg.norm(np.real(logm(a.T @ b)), 2) / np.sqrt(2.0)
    return out


def viewpoint_metrics(pred_deg, gt_deg, categories, r4cnn: bool = False) -> dict:
    """pred_deg, gt_deg (N, 3) azimuth, elevation, tilt in degrees; categories (N,) labels.

    Returns ``acc_pi6`` and ``med_err`` (degrees) averaged over categories (as §3.9), the same
    over all instances (``*_all``) and per category."""
    pred, gt = np.radians(np.asarray(pred_deg, np.float64)), np.radians(np.asarray(gt_deg, np.float64))
    rp, rg = angle2dcm(*pred.T), angle2dcm(*gt.T)
    dist = r4cnn_distance(rp, rg) if r4cnn else geodesic_distance(rp, rg)
    cats = np.asarray(categories)
    out = {"distance": "r4cnn_matrix_2norm" if r4cnn else "geodesic", "instances": len(dist)}
    if not len(dist):
        return out
    by = {}
    for c in sorted(set(cats.tolist())):
        d = dist[cats == c]
        by[str(c)] = {"acc_pi6": float((d < np.pi / 6).mean()), "med_err": float(np.degrees(np.median(d))), "n": len(d)}
    out["acc_pi6"] = float(np.mean([v["acc_pi6"] for v in by.values()]))
    out["med_err"] = float(np.mean([v["med_err"] for v in by.values()]))
    out["acc_pi6_all"] = float((dist < np.pi / 6).mean())
    out["med_err_all"] = float(np.degrees(np.median(dist)))
    out["by_category"] = by
    return out


# ------------------------------------------------------------------------------------------
# KeypointNet relative pose
# ------------------------------------------------------------------------------------------

def procrustes_rotation(x0, x1, weights=None) -> np.ndarray:
    """Rotation R (..., 3, 3) minimising sum_i w_i ||R (x0_i - c0) - (x1_i - c1)||^2 over
    (..., N, 3) point sets (weighted centroids c); a proper rotation (det +1)."""
    x0, x1 = np.asarray(x0, np.float64), np.asarray(x1, np.float64)
    w = np.ones(x0.shape[:-1]) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum(axis=-1, keepdims=True)
    a = x0 - (w[..., None] * x0).sum(-2, keepdims=True)
    b = x1 - (w[..., None] * x1).sum(-2, keepdims=True)
    h = np.swapaxes(a * w[..., None], -1, -2) @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    diag = np.zeros(h.shape)
    diag[..., 0, 0] = 1
    diag[..., 1, 1] = 1
    diag[..., 2, 2] = d
    return np.swapaxes(vt, -1, -2) @ diag @ np.swapaxes(u, -1, -2)


def angular_distance(r_hat, r) -> np.ndarray:
    """KeypointNet's angular distance (radians): ``2 asin(min(1, ||R_hat - R||_F / (2 sqrt 2)))``."""
    f = np.linalg.norm(np.asarray(r_hat, np.float64) - np.asarray(r, np.float64), axis=(-2, -1))
    return 2.0 * np.arcsin(np.minimum(1.0, f / (2.0 * np.sqrt(2.0))))


def relative_pose_metrics(r_hat, r_gt) -> dict:
    """(N, 3, 3) estimated and true relative rotations -> mean / median angular error (degrees)."""
    d = np.degrees(angular_distance(r_hat, r_gt))
    if not len(d):
        return {"pairs": 0}
    return {"pairs": len(d), "angular_error_mean": float(d.mean()), "angular_error_median": float(np.median(d))}


# ------------------------------------------------------------------------------------------
# KeyPose (formats §2.8), for the KeyPose layout's keypoints
# ------------------------------------------------------------------------------------------

def uvd_to_world(to_world, uvd) -> np.ndarray:
    """(N, 4, 4) ``to_world_L`` and (N, K, >=3) u, v, disparity -> (N, K, 3) world points
    (homogeneous divide, as KeyPose's ``project``)."""
    uvd = np.asarray(uvd, np.float64)[..., :3]
    h = np.concatenate([uvd, np.ones(uvd.shape[:-1] + (1,))], -1)
    p = np.einsum("nij,nkj->nki", np.asarray(to_world, np.float64), h)
    return p[..., :3] / p[..., 3:]


def keypose_metrics(uvd_pred, uvd_gt, to_world) -> dict:
    """KeyPose's metrics over (N, K, >=3) predicted and true ``u, v, disparity`` of the left image
    and its (N, 4, 4) ``to_world_L``: ``mae_uv`` (pixels), ``mae_disp`` (pixels), ``mae_world``
    (metres, per keypoint) and ``mae_2cm`` (per sample: 100 * #keypoints with 3D error < 0.02 m / K,
    then averaged), all averaged over the evaluated set as KeyPose's ``Mean`` metrics."""
    pred, gt = np.asarray(uvd_pred, np.float64), np.asarray(uvd_gt, np.float64)
    err3 = np.linalg.norm(uvd_to_world(to_world, pred) - uvd_to_world(to_world, gt), axis=-1)
    return {"mae_uv": float(np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1).mean()),
            "mae_disp": float(np.abs(pred[..., 2] - gt[..., 2]).mean()),
            "mae_world": float(err3.mean()),
            "mae_2cm": float((100.0 * (err3 < 0.02).sum(-1) / err3.shape[-1]).mean())}
