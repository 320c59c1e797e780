"""Record-level invariants of the datasets kpdata writes, as pure checks (numpy / OpenCV only).

Each ``check_*`` function takes one decoded record (a dict of numpy values, flat as the schema's
``decode`` returns them) and returns a list of problems, each a one-line string saying what is
wrong; an empty list means the record is consistent. They recompute what the writer derived from
independent stored values (a projection, an inverse, a map) and compare, so a damaged or
hand-edited record is caught. ``pipelines.validate`` runs them over a produced dataset.
"""
from __future__ import annotations

import re

import cv2
import numpy as np

from kpdata import camera, geometry

from kpdata.clickhere import keypoint_maps
from kpdata import clickhere as ch
from kpdata.kp2d import homography as hg
PIXEL_TOLERANCE = 0.02  # px: stored float32 pixels against their recomputation
MAX_LISTED = 3  # problems of one kind named per record before "and N more"

VIEW_KEY = re.compile(r"^(?P<synset>[^/]+)/(?P<model_id>[^/]+)/v(?P<index>\d{6})$")
PAIR_KEY = re.compile(r"^(?P<synset>[^/]+)/(?P<model_id>[^/]+)/p(?P<index>\d{6})$")
KP2D_KEY = re.compile(r"^(?P<image_path>.+)/p(?P<index>\d{4})$")
KEYPOSE_KEY = re.compile(r"^[^/]+/[^/]+/\d+$")
CLICKHERE_KEY = re.compile(
    r"^(?P<prefix>\d{8})_(?P<synset>[^_]+)_(?P<model_id>.+)_v(?P<index>\d{6})_a(?P<a>\d{3})_e(?P<e>\d{3})"
    r"_t(?P<t>\d{3})_d(?P<d>\d{3})_obj0_objc(?P<objc>\d+)_kp(?P<kp>\d+)(?P<r>_r)?$")


def _listed(items: list[str], what: str) -> list[str]:
    """At most MAX_LISTED items, then one line counting the rest."""
    out = items[:MAX_LISTED]
    if len(items) > MAX_LISTED:
        out.append(f"... and {len(items) - MAX_LISTED} more {what}")
    return out


def _fmt(v) -> str:
    return "(" + ", ".join(f"{float(x):.4g}" for x in np.asarray(v).reshape(-1)) + ")"


def check_intrinsics(k, name: str) -> list[str]:
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    out = []
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        out.append(f"{name}: focal lengths must be > 0, got fx={k[0, 0]:.6g} fy={k[1, 1]:.6g}")
    if not np.allclose(k[2], [0.0, 0.0, 1.0]) or k[1, 0] != 0:
        out.append(f"{name}: not a camera matrix (last row {_fmt(k[2])}, K[1,0] = {k[1, 0]:.4g})")
    return out


def check_rigid(t, name: str, tol: float = 1e-4) -> list[str]:
    """A 4x4 rigid transform: last row (0, 0, 0, 1), rotation orthonormal with det +1."""
    t = np.asarray(t, dtype=np.float64).reshape(4, 4)
    out = []
    if not np.allclose(t[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        out.append(f"{name}: last row is {_fmt(t[3])}, expected (0, 0, 0, 1)")
    r = t[:3, :3]
    err = float(np.abs(r @ r.T - np.eye(3)).max())
    if err > tol or not np.linalg.det(r) > 0:
        out.append(f"{name}: rotation part is not a rotation (|R R^T - I| = {err:.3g}, det {np.linalg.det(r):.4g})")
    return out


def check_inverse(m, mi, name: str, tol: float = 1e-5) -> list[str]:
    """``m @ mi = I`` up to float32 rounding of entries as large as the matrices'."""
    m = np.asarray(m, dtype=np.float64).reshape(4, 4)
    mi = np.asarray(mi, dtype=np.float64).reshape(4, 4)
    scale = max(1.0, float(np.abs(m).max()), float(np.abs(mi).max()))
    err = float(np.abs(m @ mi - np.eye(4)).max())
    if not err <= tol * scale:
        return [f"{name}: the product is not the identity (largest difference {err:.3g})"]
    return []


def _pixels(uv) -> np.ndarray:
    """OpenCV pixel (col, row) of each point: the pixel whose centre is nearest."""
    return np.floor(np.asarray(uv, dtype=np.float64) + 0.5).astype(np.int64)


def check_projection(uv_stored, uv, names, what: str, tol: float = PIXEL_TOLERANCE) -> list[str]:
    """Stored pixels against recomputed ones (both (K, 2))."""
    uv_stored = np.asarray(uv_stored, dtype=np.float64).reshape(-1, 2)
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    err = np.abs(uv_stored - uv).max(axis=1) if len(uv) else np.zeros(0)
    limit = tol + 1e-6 * np.abs(uv).max(axis=1) if len(uv) else np.zeros(0)
    bad = [f"keypoint {i} ({names[i] if i < len(names) else '?'}): stored uv {_fmt(uv_stored[i])} but {what} "
           f"gives {_fmt(uv[i])} ({err[i]:.3g} px off)" for i in np.flatnonzero(~(err <= limit))]
    return _listed(bad, "keypoints off their projection")


def check_binary(values, name: str, allowed=(0, 1)) -> list[str]:
    v = np.asarray(values)
    bad = ~np.isin(v, allowed)
    if bad.any():
        return [f"{name}: values must be in {set(allowed)}, found {sorted(set(v[bad].tolist()))[:5]}"]
    return []


# ------------------------------------------------------------------------------------------ view


def check_view(rec: dict, visibility_tolerance: float = 0.01) -> list[str]:
    """A ``view`` record (:data:`schemas.view.VIEW`, as decoded): image / mask / depth sizes agree,
    mask = 255 exactly where depth > 0, K and cam_T_obj are a camera, cam_T_obj is the stored
    viewpoint's, stored uv and z are xyz projected through K and cam_T_obj, and a visible keypoint
    is inside the image with the rendered surface at its pixel at its depth."""
    out = []
    img = rec["image/encoded"]
    h, w = img.shape[:2]
    if (int(rec["image/height"]), int(rec["image/width"])) != (h, w):
        out.append(f"image/height, image/width say {rec['image/height']}x{rec['image/width']} (HxW), "
                   f"the image is {h}x{w}")
    mask, codes = rec["mask/encoded"], rec["depth/encoded"]
    if mask.shape != (h, w) or codes.shape != (h, w):
        return out + [f"image {img.shape[:2]}, mask {mask.shape} and depth {codes.shape} differ in size"]
    diff = mask != np.where(codes > 0, 255, 0)
    if diff.any():
        r, c = np.argwhere(diff)[0]
        out.append(f"mask differs from depth > 0 at {int(diff.sum())} pixels (first at x={c}, y={r}: "
                   f"mask {mask[r, c]}, depth code {codes[r, c]})")
    scale = float(rec["depth/scale"])
    if not scale > 0:
        out.append(f"depth/scale must be > 0, got {scale}")
    k = np.asarray(rec["camera/K"], dtype=np.float64).reshape(3, 3)
    t = np.asarray(rec["camera/cam_T_obj"], dtype=np.float64).reshape(4, 4)
    out += check_intrinsics(k, "camera/K") + check_rigid(t, "camera/cam_T_obj")
    vp = np.asarray(rec["viewpoint"], dtype=np.float64)
    if vp[3] > 0:
        expected = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(*vp))
        err = float(np.abs(expected - t).max())
        if err > 1e-4 * max(1.0, vp[3]):
            out.append(f"camera/cam_T_obj is not the camera of the stored viewpoint {_fmt(vp)} "
                       f"(largest difference {err:.3g})")
    else:
        out.append(f"viewpoint distance must be > 0, got {vp[3]}")
    names = list(rec["keypoints/names"])
    xyz = np.asarray(rec["keypoints/xyz"], dtype=np.float64).reshape(-1, 3)
    uv_stored = np.asarray(rec["keypoints/uv"], dtype=np.float64).reshape(-1, 2)
    z_stored = np.asarray(rec["keypoints/z"], dtype=np.float64).reshape(-1)
    vis = np.asarray(rec["keypoints/visible"]).reshape(-1)
    uv, z = camera.project(k, t, xyz)
    out += check_projection(uv_stored, uv, names, "xyz through K and cam_T_obj")
    zbad = [f"keypoint {i} ({names[i]}): stored z {z_stored[i]:.6g} but xyz gives {z[i]:.6g}"
            for i in np.flatnonzero(~(np.abs(z_stored - z) <= 1e-5 * np.abs(z) + 1e-6))]
    out += _listed(zbad, "keypoints with a wrong z")
    out += check_binary(vis, "keypoints/visible")
    px = _pixels(uv_stored)
    bad = []
    for i in np.flatnonzero(vis == 1):
        col, row = px[i]
        if not (z_stored[i] > 0 and 0 <= col < w and 0 <= row < h):
            bad.append(f"keypoint {i} ({names[i]}) is visible but at {_fmt(uv_stored[i])}, outside the {w}x{h} "
                       f"image or behind the camera")
            continue
        d = float(codes[row, col]) * scale
        if not (d > 0 and abs(z_stored[i] - d) <= visibility_tolerance * z_stored[i] + 2 * scale + 1e-5 * z_stored[i]):
            bad.append(f"keypoint {i} ({names[i]}) is visible but the depth at its pixel ({col}, {row}) is {d:.6g}, "
                       f"its z is {z_stored[i]:.6g}")
    return out + _listed(bad, "visible keypoints failing the depth test")


# ----------------------------------------------------------------------------------- keypointnet


def check_keypointnet_pair(rec: dict, image_size=None, intrinsics=None) -> list[str]:
    """A ``keypointnet_pair`` record: mv @ mvi = I and mv rigid for both views, images of
    ``image_size`` (W, H) with alpha 0 or 255 and black where alpha is 0; with the extras and
    ``intrinsics`` (fx, fy, cx, cy): uv = xyz projected through mv (OpenGL -> OpenCV) and the
    intrinsics, a visible keypoint inside the silhouette."""
    out = []
    extras = "keypoints/xyz" in rec
    xyz = np.asarray(rec["keypoints/xyz"], dtype=np.float64).reshape(-1, 3) if extras else None
    names = list(rec.get("keypoints/names", []))
    for v in (0, 1):
        mv = np.asarray(rec[f"mv{v}"], dtype=np.float64).reshape(4, 4)
        mvi = np.asarray(rec[f"mvi{v}"], dtype=np.float64).reshape(4, 4)
        out += check_inverse(mv, mvi, f"mv{v} @ mvi{v}") + check_rigid(mv, f"mv{v}")
        img = rec[f"img{v}"]
        if image_size is not None and img.shape[:2] != (image_size[1], image_size[0]):
            out.append(f"img{v} is {img.shape[1]}x{img.shape[0]}, the dataset's image size is "
                       f"{image_size[0]}x{image_size[1]}")
        alpha = img[..., 3]
        out += check_binary(alpha, f"img{v} alpha", (0, 255))
        if np.any(img[..., :3][alpha == 0]):
            out.append(f"img{v}: colour is not black where alpha is 0")
        if not extras or intrinsics is None:
            continue
        fx, fy, cx, cy = intrinsics
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        uv_stored = np.asarray(rec[f"keypoints/uv{v}"], dtype=np.float64).reshape(-1, 2)
        uv, z = camera.project(k, geometry.gl_to_cv(mv), xyz)
        out += [f"view {v}: {p}" for p in check_projection(uv_stored, uv, names, f"xyz through mv{v}")]
        vis = np.asarray(rec[f"keypoints/visible{v}"]).reshape(-1)
        out += check_binary(vis, f"keypoints/visible{v}")
        px = _pixels(uv_stored)
        bad = []
        for i in np.flatnonzero(vis == 1):
            col, row = px[i]
            if not (z[i] > 0 and 0 <= col < img.shape[1] and 0 <= row < img.shape[0] and alpha[row, col] == 255):
                bad.append(f"view {v}: keypoint {i} ({names[i]}) is visible but its pixel ({col}, {row}) is "
                           f"outside the image or the silhouette")
        out += _listed(bad, "visible keypoints outside the silhouette")
    return out


# ------------------------------------------------------------------------------------- clickhere


def check_clickhere_view(rec: dict, flipped_split: bool, num_classes: int | None = None) -> list[str]:
    """A compact ``clickhere_view`` record: the JPEG is the stated size (227x227 for a ``box`` record), the crop box has that
    size, keypoint pixels are ``crop_pixels(uv)``, classes are in range, the viewpoint label is the
    stored viewpoint's, and every instance key names this view's stem, object class and keypoint
    class (``_r`` copies with the original class too, as Click-Here's ``get_job_key``; present
    exactly in flipped splits)."""
    out = []
    w, h = int(rec["image/width"]), int(rec["image/height"])
    mode = rec["render/crop_render"]
    size = (h, w) if mode == "full" else (keypoint_maps.CROP_SIZE,) * 2
    if mode not in ("full", "box"):
        out.append(f"render/crop_render is {mode!r}, not 'full' or 'box'")
    img = cv2.imdecode(np.frombuffer(rec["image/jpeg"], np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        out.append(f"image/jpeg does not decode ({len(rec['image/jpeg'])} bytes)")
    elif img.shape[:2] != size or img.ndim != 3 or img.shape[2] != 3:
        out.append(f"image/jpeg is {img.shape}, expected {size[0]}x{size[1]}x3 (render/crop_render {mode!r}, "
                   f"image/height x width {h}x{w})")
    x0, y0, x1, y1 = (int(v) for v in rec["render/crop_box"])
    if (x1 - x0 + 1, y1 - y0 + 1) != (w, h):
        out.append(f"render/crop_box {x0, y0, x1, y1} is {x1 - x0 + 1}x{y1 - y0 + 1}, the crop is {w}x{h}")
    names = list(rec["keypoints/names"])
    n = len(names)
    if n == 0:
        out.append("a view without instances")
    uv = np.asarray(rec["keypoints/uv"], dtype=np.float64).reshape(-1, 2)
    pixel = np.asarray(rec["keypoints/pixel"]).reshape(-1, 2)
    if n and not keypoint_maps.in_crop(uv, w, h).all():
        i = int(np.flatnonzero(~keypoint_maps.in_crop(uv, w, h))[0])
        out.append(f"keypoints/uv {_fmt(uv[i])} of keypoint {i} ({names[i]}) outside the {w}x{h} crop (its nearest "
                   "pixel is not one of the crop's)")
    if n and not np.array_equal(pixel, ch.crop_pixels(uv, w, h)):
        i = int(np.flatnonzero(np.any(pixel != ch.crop_pixels(uv, w, h), axis=1))[0])
        out.append(f"keypoints/pixel {pixel[i].tolist()} of keypoint {i} ({names[i]}) is not uv {_fmt(uv[i])} "
                   f"scaled to 227x227 ({ch.crop_pixels(uv, w, h)[i].tolist()})")
    c = int(rec["num_keypoint_classes"])
    if num_classes is not None and c != num_classes:
        out.append(f"num_keypoint_classes is {c}, the dataset's class table has {num_classes}")
    classes = np.asarray(rec["keypoints/class"]).reshape(-1)
    flip_classes = np.asarray(rec["keypoints/flip_class"]).reshape(-1)
    for name, v in (("keypoints/class", classes), ("keypoints/flip_class", flip_classes)):
        if np.any((v < 0) | (v >= c)):
            out.append(f"{name} outside [0, {c}): {v.tolist()}")
    obj = int(rec["object_class"])
    vp = np.asarray(rec["viewpoint"], dtype=np.float64)
    angles = keypoint_maps.label_angles(*vp[:3])
    label = np.asarray(rec["viewpoint_label"]).reshape(-1)
    if not np.array_equal(label, keypoint_maps.viewpoint_label(obj, *angles)):
        out.append(f"viewpoint_label {label.tolist()} is not the label of object class {obj} at viewpoint "
                   f"{_fmt(vp[:3])} ({keypoint_maps.viewpoint_label(obj, *angles).tolist()})")
    m = VIEW_KEY.match(rec["key"])
    stem = None
    if m and vp[3] > 0:
        stem = ch.view_stem(m["synset"], m["model_id"], int(m["index"]), angles, vp[3])
    keys, flip_keys = list(rec["instances/key"]), list(rec["instances/flip_key"])
    if flipped_split and len(flip_keys) != n:
        out.append(f"a flipped split, but {len(flip_keys)} _r copies for {n} instances")
    if not flipped_split and flip_keys:
        out.append(f"{len(flip_keys)} _r copies in a split that is not flipped")
    bad = []
    for i, key in enumerate(keys + flip_keys):
        flip = i >= len(keys)
        j = i - len(keys) if flip else i
        km = CLICKHERE_KEY.match(key)
        want_kp = classes[j] if j < n else None  # an _r key keeps the original class (get_job_key)
        if not km:
            bad.append(f"instance key {key!r} is not <8 digits>_<synset>_<model>_v<i>_a_e_t_d_obj0_objc<c>_kp<k>[_r]")
        elif (stem is not None and key[9:].split("_obj0_")[0] != stem) or int(km["objc"]) != obj or \
                bool(km["r"]) != flip or want_kp is None or int(km["kp"]) != int(want_kp):
            bad.append(f"instance key {key!r} does not match this view (stem {stem}, objc{obj}, "
                       f"kp{want_kp}{'_r' if flip else ''})")
    return out + _listed(bad, "instance keys")


def check_clickhere_instance(inst: dict, num_classes: int | None = None, flip_class=None) -> list[str]:
    """One Click-Here instance (arrays as :func:`schemas.clickhere.instance_arrays` names them,
    from the instance TFRecords or the Caffe LMDBs): the key's format, keypoint_loc 255 exactly at
    the keypoint pixel, the Gaussian and distance maps those of that pixel, a one-hot class equal
    to the key's ``kp`` (an ``_r`` copy's key keeps the original class, its one-hot is
    ``flip_class[kp]``, the left/right-swapped one; unchecked for ``_r`` copies when
    ``flip_class`` is None), and a viewpoint label whose class and angles are the key's (mirrored
    for ``_r`` copies)."""
    out = []
    key = inst["key"]
    m = CLICKHERE_KEY.match(key)
    if not m:
        return [f"key {key!r} is not <8 digits>_<synset>_<model>_v<i>_a_e_t_d_obj0_objc<c>_kp<k>[_r]"]
    flipped = bool(m["r"])
    if "flipped" in inst and int(inst["flipped"]) != int(flipped):
        out.append(f"flipped is {int(inst['flipped'])} but the key {'ends' if flipped else 'does not end'} in _r")
    s = keypoint_maps.CROP_SIZE
    img = np.asarray(inst["image"])
    if img.shape != (s, s, 3) or img.dtype != np.uint8:
        out.append(f"image is {img.shape} {img.dtype}, expected ({s}, {s}, 3) uint8")
    xy = np.asarray(inst["keypoint_pixel"]).reshape(-1)
    if xy.shape != (2,) or not (0 <= xy[0] < s and 0 <= xy[1] < s):
        return out + [f"keypoint pixel {xy.tolist()} is not inside the {s}x{s} crop"]
    expected = {
        "keypoint_loc": keypoint_maps.keypoint_loc(xy), "gaussian_keypoint_map": keypoint_maps.gaussian_map_uint8(xy),
        "chessboard_dt_map": keypoint_maps.chessboard_map(xy), "manhattan_dt_map": keypoint_maps.manhattan_map(xy),
        "euclidean_dt_map": keypoint_maps.euclidean_map(xy)}
    for name, want in expected.items():
        got = np.asarray(inst[name]).reshape(-1)
        want = want.reshape(-1)
        if got.shape != want.shape:
            out.append(f"{name} has {got.size} values, expected {want.size}")
        elif not np.allclose(got, want, atol=1e-4, rtol=1e-6):
            n = int(np.sum(~np.isclose(got, want, atol=1e-4, rtol=1e-6)))
            out.append(f"{name} is not the map of the keypoint at {xy.tolist()} ({n} pixels differ)")
    onehot = np.asarray(inst["keypoint_class"]).reshape(-1)
    if num_classes is not None and onehot.size != num_classes:
        out.append(f"keypoint_class has {onehot.size} classes, the dataset has {num_classes}")
    if np.sum(onehot == 1) != 1 or np.sum(onehot != 0) != 1:
        out.append(f"keypoint_class is not one-hot ({int(np.sum(onehot != 0))} non-zero entries)")
    elif not flipped and int(np.argmax(onehot)) != int(m["kp"]):
        out.append(f"keypoint_class is class {int(np.argmax(onehot))}, the key says kp{m['kp']}")
    elif flipped and flip_class is not None and int(np.argmax(onehot)) != flip_class.get(int(m["kp"])):
        out.append(f"keypoint_class is class {int(np.argmax(onehot))}, but the _r copy of kp{m['kp']} has the "
                   f"left/right-swapped class {flip_class.get(int(m['kp']))}")
    cls = int(m["objc"])
    angles = (int(m["a"]), int(m["e"]), int(m["t"]))
    want = keypoint_maps.viewpoint_label(cls, *(keypoint_maps.flip_angles(*angles) if flipped else angles))
    label = np.asarray(inst["viewpoint_label"]).reshape(-1)
    if label.shape != (4,) or not np.array_equal(label.astype(np.int64), want):
        out.append(f"viewpoint_label {label.tolist()} is not the key's (objc{cls}, a/e/t {angles}"
                   f"{', mirrored' if flipped else ''}: {want.tolist()})")
    return out


# ---------------------------------------------------------------------------------------- keypose


def check_keypose(rec: dict, num_kp: int | None = None, size=None, baseline: float | None = None) -> list[str]:
    """A ``keypose`` record: per side, to_world @ to_uvd = I (up to scale), keys_uvd rows
    ``[u, v, d > 0, 1]``, num_kp as the set's data_params, images and camera of the set's size
    (``size`` = (W, H, F)) (that they are opaque 3-channel images, without alpha, the record
    decoder checks: :data:`schemas.keypose.KEYPOSE`), a visible keypoint on the image, padding of
    the proj targets; across sides, each left keypoint reprojected through to_world_L and to_uvd_R
    is the right one, and each proj target's keypoints are the left ones reprojected through its
    to_uvd."""
    out = []
    for pf in ("L", "R"):
        img = rec[f"img_{pf}"]
        cam = np.asarray(rec[f"camera_{pf}"], dtype=np.float64)
        keys = np.asarray(rec[f"keys_uvd_{pf}"], dtype=np.float64).reshape(-1, 4)
        k = int(rec[f"num_kp_{pf}"])
        if k != len(keys):
            out.append(f"num_kp_{pf} is {k}, keys_uvd_{pf} has {len(keys)} keypoints")
        if num_kp is not None and k != num_kp:
            out.append(f"num_kp_{pf} is {k}, data_params.pbtxt says num_kp = {num_kp}")
        if size is not None:
            w, h, f = size
            if img.shape[:2] != (h, w):
                out.append(f"img_{pf} is {img.shape[1]}x{img.shape[0]}, the set's size is {w}x{h}")
            if (cam[5], cam[6]) != (w, h) or abs(cam[0] - f) > 1e-3 * f:
                out.append(f"camera_{pf} {_fmt(cam)} is not of the set's {w}x{h}_fl{f:g}")
        if baseline is not None and abs(cam[4] - baseline) > 1e-6 + 1e-5 * abs(baseline):
            out.append(f"camera_{pf} baseline {cam[4]:.6g}, data_params.pbtxt says {baseline:.6g}")
        m = np.asarray(rec[f"to_world_{pf}"], dtype=np.float64).reshape(4, 4) @ \
            np.asarray(rec[f"to_uvd_{pf}"], dtype=np.float64).reshape(4, 4)
        if not (abs(m[3, 3]) > 0 and np.abs(m / m[3, 3] - np.eye(4)).max() <= 1e-3):
            out.append(f"to_world_{pf} @ to_uvd_{pf} is not the identity (up to scale)")
        if len(keys) and not (np.allclose(keys[:, 3], 1.0) and np.all(keys[:, 2] > 0)):
            out.append(f"keys_uvd_{pf} rows must be [u, v, disparity > 0, 1]")
        vis = np.asarray(rec[f"visible_{pf}"]).reshape(-1)
        out += check_binary(vis, f"visible_{pf}")
        off = [i for i in np.flatnonzero(vis == 1)
               if not (0 <= keys[i, 0] < img.shape[1] and 0 <= keys[i, 1] < img.shape[0])]
        if off:
            out.append(f"visible_{pf}: keypoints {off[:5]} are visible but off the {img.shape[1]}x{img.shape[0]} image")
        n_t = int(rec[f"num_targets_{pf}"])
        t_uvd = np.asarray(rec[f"targets_to_uvd_{pf}"], dtype=np.float64).reshape(-1, 4, 4)
        t_keys = np.asarray(rec[f"targets_keys_uvd_{pf}"], dtype=np.float64).reshape(len(t_uvd), -1, 4)
        if not 0 <= n_t <= len(t_uvd):
            out.append(f"num_targets_{pf} is {n_t}, outside [0, {len(t_uvd)}]")
            continue
        pad = np.zeros((4, 4))
        pad[3, 3] = 1.0
        for j in range(n_t, len(t_uvd)):
            if not (np.array_equal(t_uvd[j], pad) and np.allclose(t_keys[j][:, :3], 0) and np.allclose(t_keys[j][:, 3], 1)):
                out.append(f"targets_{pf}[{j}] is past num_targets_{pf} = {n_t} but not padding")
                break
        to_world = np.asarray(rec[f"to_world_{pf}"], dtype=np.float64).reshape(4, 4)
        for j in range(n_t):
            got = t_keys[j][:, :2]
            want = _through(t_uvd[j] @ to_world, keys)[:, :2]
            err = np.abs(got - want).max() if len(keys) else 0.0
            if err > 0.05 + 1e-5 * np.abs(want).max(initial=0):
                out.append(f"targets_keys_uvd_{pf}[{j}] is not keys_uvd_{pf} reprojected through "
                           f"targets_to_uvd_{pf}[{j}] ({err:.3g} px off)")
    kl = np.asarray(rec["keys_uvd_L"], dtype=np.float64).reshape(-1, 4)
    kr = np.asarray(rec["keys_uvd_R"], dtype=np.float64).reshape(-1, 4)
    if len(kl) == len(kr) and len(kl):
        want = _through(np.asarray(rec["to_uvd_R"], dtype=np.float64).reshape(4, 4)
                        @ np.asarray(rec["to_world_L"], dtype=np.float64).reshape(4, 4), kl)
        err = np.abs(want[:, :2] - kr[:, :2]).max(axis=1)
        bad = [f"keypoint {i}: keys_uvd_R {_fmt(kr[i, :3])} but the left keypoint reprojects to {_fmt(want[i, :3])}"
               for i in np.flatnonzero(~(err <= 0.05 + 1e-5 * np.abs(want[:, :2]).max(axis=1)))]
        out += _listed(bad, "right keypoints off the left ones' reprojection")
    if int(rec["mirrored"]) not in (0, 1):
        out.append(f"mirrored must be 0 or 1, got {rec['mirrored']}")
    return out


def _through(mat, uvd1) -> np.ndarray:
    p = np.asarray(uvd1, dtype=np.float64).reshape(-1, 4) @ np.asarray(mat, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return p / p[:, 3:4]


# ------------------------------------------------------------------------------------------ kp2d


def check_kp2d_pair(rec: dict, image_size=None) -> list[str]:
    """A ``kp2d_pair`` record: both images of the stated size (and the dataset's), ``H[2, 2] = 1``,
    the normalised and pixel homographies the same map (``Hp = N^-1 Hn N``), the patch the warped
    image shows inside the photo, and the key ``<image_path>/p<pair_index:04d>``."""
    out = []
    img, aug = rec["image/encoded"], rec["image_aug/encoded"]
    h, w = int(rec["image/height"]), int(rec["image/width"])
    for name, a in (("image/encoded", img), ("image_aug/encoded", aug)):
        if a.shape[:2] != (h, w):
            out.append(f"{name} is {a.shape[1]}x{a.shape[0]}, image/width x height say {w}x{h}")
    if image_size is not None and (w, h) != tuple(image_size):
        out.append(f"the images are {w}x{h}, the dataset's image size is {image_size[0]}x{image_size[1]}")
    hn = np.asarray(rec["homography"], dtype=np.float64).reshape(3, 3)
    hp = np.asarray(rec["homography/pixels"], dtype=np.float64).reshape(3, 3)
    for name, m in (("homography", hn), ("homography/pixels", hp)):
        if abs(m[2, 2] - 1.0) > 1e-6:
            out.append(f"{name}[2, 2] is {m[2, 2]:.6g}, expected 1")
        if abs(np.linalg.det(m)) < 1e-12:
            out.append(f"{name} is singular")
    if w >= 2 and h >= 2 and not out:
        # Compare as maps: the pixel corners through Hp against the normalised map, in pixels.
        corners = np.array([[0.0, 0.0], [w - 1, 0.0], [w - 1, h - 1], [0.0, h - 1], [(w - 1) / 2, (h - 1) / 2]])
        err = float(np.abs(hg.apply(hg.to_pixels(hn, w, h), corners) - hg.apply(hp, corners)).max())
        if err > 0.01:
            out.append(f"homography and homography/pixels are different maps (corners {err:.3g} px apart)")
        pc = hg.patch_corners(hn)
        if np.any(np.abs(pc) > 1.0 + 1e-4):
            out.append(f"the patch the warped image shows leaves the photo (normalised corners {_fmt(pc)})")
    m = KP2D_KEY.match(rec["key"])
    if not m or m["image_path"] != rec["image_path"] or int(m["index"]) != int(rec["pair_index"]):
        out.append(f"key {rec['key']!r} is not <image_path>/p<pair_index:04d> "
                   f"({rec['image_path']!r}, {int(rec['pair_index'])})")
    if not (int(rec["source/height"]) > 0 and int(rec["source/width"]) > 0):
        out.append("source/height and source/width must be > 0")
    return out


# --------------------------------------------------------------------------------------- hpatches


def check_hpatches_warp(image1, image_k, h_1k, max_mean_diff: float = 2.0) -> str | None:
    """A viewpoint sequence's image k should be image 1 warped by ``H_1_k`` (pixels of 1 -> k).
    Returns a problem or None. Compares the mean absolute difference over the part of image k that
    image 1 covers."""
    h, w = image_k.shape[:2]
    warped = cv2.warpPerspective(image1, np.asarray(h_1k, dtype=np.float64), (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.full(image1.shape[:2], 255, np.uint8), np.asarray(h_1k, dtype=np.float64), (w, h),
                                flags=cv2.INTER_NEAREST) == 255
    cover = cv2.erode(cover.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if cover.sum() < 0.05 * h * w:
        return f"H_1_k maps image 1 almost entirely outside image k ({int(cover.sum())} pixels overlap)"
    diff = float(np.abs(warped.astype(np.float64) - image_k.astype(np.float64))[cover].mean())
    if diff > max_mean_diff:
        return f"image k is not image 1 warped by H_1_k (mean difference {diff:.3g} grey levels)"
    return None
