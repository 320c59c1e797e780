"""The preview registry: which contact sheet a written dataset folder gets, and what it shows.

A folder's kind (:func:`dataset_kind`) is its ``kpdata_info.json`` ``record`` (``view`` when it
names none), or ``keypose_sequences`` for a tree of KeyPose sequence folders without one. Each kind
has a drawer ``(dataset_dir, n, path) -> path`` that selects up to ``n`` items from the folder,
spread over models (or photos, sequences), and draws them with :mod:`kpdata.preview`:

==================================================  =========================================================
``view``                                            rendered views cropped to their content, keypoints, mask
``clickhere_view``, ``clickhere_instance``,         Click-Here instances (any layout): the crop, its keypoint,
``caffe_datum``                                     class name and viewpoint label
``keypointnet_pair``                                the two views of a pair and their relative rotation
``kp2d_pair``                                       the photo with the warped patch outlined, the warped image
``keypose``, ``keypose_sequences``                  left | right pairs with keypoints and disparity lines
``hpatches`` (an HPatches-layout folder)            per sequence its 6 images, image 1's border mapped by H_1_k
``viewpoint_distributions`` (fit_viewpoints output) per class the sampled az, el, tilt, distance and truncation
                                                    histograms (the input marginals: fit_distributions.png)
==================================================  =========================================================

:func:`write_preview` draws a folder's sheet (default ``<dataset_dir>/preview.png``); pipelines call
it at the end of a run, ``python -m pipelines.preview DIR`` from the command line. Folders are local.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

import cv2

from kpdata import clickhere as ch
from kpdata.clickhere import kde
from kpdata.errors import InputError
from kpdata.kp2d import hpatches
from kpdata.preview import hpatches as hpatches_sheet
from kpdata.preview import crop_to_content, write_contact_sheet
from kpdata.preview import keypointnet as keypointnet_sheet
from kpdata.preview import pairs as pairs_sheet
from kpdata.preview import stereo as stereo_sheet
from kpdata.preview.stereo import pair_view
from schemas.clickhere import CLICKHERE_INSTANCE, CLICKHERE_VIEW
from schemas.dataset import caffe_lmdb, names, records
from schemas.dataset.validation.hpatches import looks_like_hpatches
from schemas.keypointnet import KEYPOINTNET_PAIR
from schemas.keypose import KEYPOSE
from schemas.kp2d import KP2D_PAIR
from schemas.view import VIEW

__all__ = ["SEQUENCES_RECORD", "HPATCHES_KIND", "DISTRIBUTIONS_KIND", "FIT_INFO",
           "SCAN_LIMIT", "INSTANCE_SCAN_LIMIT", "UnknownKind", "register", "kinds",
           "dataset_kind", "write_preview", "select_preview", "select_instances", "spread", "view_tiles",
           "clickhere_tiles", "keypointnet_pairs", "kp2d_pairs", "keypose_record_tiles", "sequence_tiles",
           "VIEWPOINT_PLOT", "rendered_viewpoints", "write_viewpoint_plot"]

SEQUENCES_RECORD = records.SEQUENCES_RECORD
HPATCHES_KIND = "hpatches"  # gen_homography_pairs --hpatches_out: v_*/ i_*/ sequence folders
DISTRIBUTIONS_KIND = "viewpoint_distributions"  # fit_viewpoints output: fit_info.json, *_distribution/<cls>.txt
FIT_INFO = "fit_info.json"
SCAN_LIMIT = 512  # records (KeyPose: records or frames) looked at to choose from
INSTANCE_SCAN_LIMIT = 4096  # Click-Here instances looked at (several per view)

Drawer = Callable[[str, int, str], str]
_DRAWERS: dict[str, Drawer] = {}


class UnknownKind(ValueError):
    """A folder whose kind has no drawer (the message names the folder, its kind and the known ones)."""


def register(*kinds_: str):
    """Decorator: ``fn(dataset_dir, n, path) -> path`` draws the sheet of the record kinds ``kinds_``."""
    def deco(fn: Drawer) -> Drawer:
        for kind in kinds_:
            if kind in _DRAWERS:
                raise ValueError(f"record kind {kind!r} already has a preview ({_DRAWERS[kind].__name__})")
            _DRAWERS[kind] = fn
        return fn
    return deco


def kinds() -> list[str]:
    """The record kinds that have a preview, sorted."""
    return sorted(_DRAWERS)


def dataset_kind(dataset_dir: str) -> str | None:
    """The kind of the folder: ``kpdata_info.json``'s ``record`` (``view`` when it names none,
    :data:`SEQUENCES_RECORD` when it names none and the folder holds KeyPose sequences);
    :data:`SEQUENCES_RECORD` for a tree of KeyPose sequence folders without ``kpdata_info.json``,
    :data:`DISTRIBUTIONS_KIND` for a fit_viewpoints output (``fit_info.json``), :data:`HPATCHES_KIND`
    for an HPatches-layout folder; None for any other folder."""
    try:
        record = records.load_info(dataset_dir).get("record")
    except FileNotFoundError:
        if records.is_sequence_tree(dataset_dir):
            return SEQUENCES_RECORD
        if os.path.isfile(os.path.join(dataset_dir, FIT_INFO)):
            return DISTRIBUTIONS_KIND
        return HPATCHES_KIND if looks_like_hpatches(dataset_dir) else None
    if record is None and records.is_sequence_tree(dataset_dir):
        return SEQUENCES_RECORD
    return record or VIEW.name


def write_preview(dataset_dir: str, n: int, path: str | None = None) -> str:
    """Draw up to ``n`` items of ``dataset_dir`` into ``path`` (default ``<dataset_dir>/preview.png``)
    with the drawer of its kind; returns the path. FileNotFoundError for a folder that is neither a
    kpdata dataset nor KeyPose sequences, :class:`UnknownKind` for a kind without a preview."""
    kind = dataset_kind(dataset_dir)
    if kind is None:
        raise FileNotFoundError(f"{os.path.join(dataset_dir, names.KPDATA_INFO)}: no {names.KPDATA_INFO} and no "
                                f"KeyPose sequence folder (*_L.pbtxt); is {dataset_dir} a kpdata dataset?")
    if kind not in _DRAWERS:
        raise UnknownKind(f"{dataset_dir}: no preview for record kind {kind!r} (known: {', '.join(kinds())})")
    return _DRAWERS[kind](dataset_dir, n, path or os.path.join(dataset_dir, names.PREVIEW))


# ----------------------------------------------------------------------------- selection


def select_preview(recs, n: int, group=lambda key: key.rsplit("/", 1)[0], scan_limit: int = SCAN_LIMIT) -> list:
    """Up to ``n`` decoded records (dicts with a ``key``) spread over models: round-robin across
    the groups (``group(key)``, default the key up to its last ``/``) met among the first
    ``scan_limit`` records, each group in reading order."""
    groups: dict = {}
    for i, rec in enumerate(recs):
        if i >= scan_limit:
            break
        groups.setdefault(group(rec["key"]), []).append(rec)
    out = []
    while len(out) < n and any(groups.values()):
        for g in sorted(groups):
            if groups[g] and len(out) < n:
                out.append(groups[g].pop(0))
    return out


def _view_stem(key: str) -> str:
    """``<synset>_<model>_v<index>_...`` of a Click-Here instance key (``<prefix>_<stem>_obj0_...``)."""
    return key.split("_", 1)[1].split("_obj0_")[0]


def select_instances(instances, n: int, scan_limit: int = INSTANCE_SCAN_LIMIT) -> list[dict]:
    """Up to ``n`` Click-Here instances spread over models and views: round robin over models,
    each turn taking the next view of that model (alternating originals and ``_r`` copies)."""
    by_model: dict = {}
    for i, inst in enumerate(instances):
        if i >= scan_limit:
            break
        stem = _view_stem(inst["key"])
        views = by_model.setdefault(stem.split("_v")[0], {})
        views.setdefault(stem, []).append(inst)
    queues = {m: [sorted(v, key=lambda r: (r["key"].endswith("_r"), r["key"])) for _, v in sorted(views.items())]
              for m, views in by_model.items()}
    out, turn = [], 0
    while len(out) < n and any(any(v) for v in queues.values()):
        for m in sorted(queues):
            views = [v for v in queues[m] if v]
            if views and len(out) < n:
                view = views[turn % len(views)]
                out.append(view.pop(len(view) - 1 if turn % 2 and view[-1]["key"].endswith("_r") else 0))
        turn += 1
    return out


def spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (first and last included); all when there are no more."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


# ----------------------------------------------------------------------------- tiles of each kind


def view_tiles(dataset_dir: str, n: int) -> list[dict]:
    """Views for :func:`kpdata.preview.contact_sheet` (uncropped), spread over models."""
    fields = {"key", "image/encoded", "mask/encoded", "keypoints/names", "keypoints/uv", "keypoints/visible",
              "viewpoint"}
    return [{"key": r["key"], "image": r["image/encoded"], "mask": r["mask/encoded"],
             "keypoints/names": r["keypoints/names"], "keypoints/uv": r["keypoints/uv"],
             "keypoints/visible": r["keypoints/visible"], "viewpoint": r["viewpoint"]}
            for r in select_preview(records.iter_views(dataset_dir, fields=fields), n)]


def _signed(deg: float) -> float:
    """An angle in [0, 360) as (-180, 180]."""
    return deg - 360.0 if deg > 180.0 else deg


def clickhere_tiles(dataset_dir: str, n: int, class_names=None) -> list[dict]:
    """Click-Here instances as contact-sheet views, spread over models and views: the crop, its
    keypoint named by its class (``class_names``, default Click-Here's 34) and the viewpoint label."""
    class_names = class_names or ch.KeypointClassTable.clickhere34().names
    out = []
    for r in select_instances(records.iter_instances(dataset_dir), n):
        c = int(np.argmax(r["keypoint_class"]))
        label = r["viewpoint_label"]
        cls = int(label[0])
        name = class_names[c] if c < len(class_names) else f"kp{c}"
        out.append({"key": r["key"].split("_", 1)[1], "image": r["image"],
                    "keypoints/names": [name + ("  (_r)" if r["key"].endswith("_r") else "")],
                    "keypoints/uv": np.asarray(r["keypoint_pixel"], np.float32).reshape(1, 2),
                    "keypoints/visible": np.ones(1, np.int64),
                    "caption": (f"label az {label[1] - 360 * cls} el {_signed(float(label[2] - 360 * cls)):.0f} "
                                f"tilt {_signed(float(label[3] - 360 * cls)):.0f}")})
    return out


def keypointnet_pairs(dataset_dir: str, n: int) -> list[dict]:
    """Up to ``n`` KeypointNet pairs spread over models, as :func:`kpdata.preview.keypointnet.pair_tile`
    takes them, each view cropped to its object (:func:`kpdata.preview.crop_to_content`)."""
    out = []
    for r in select_preview(records.iter_keypointnet_pairs(dataset_dir), n):
        views = []
        for v in (0, 1):
            view = {"key": f"{r['key']} view {v}", "image": r[f"img{v}"], "mask": r[f"img{v}"][..., 3]}
            if "keypoints/names" in r:
                view.update({"keypoints/names": r["keypoints/names"], "keypoints/uv": r[f"keypoints/uv{v}"],
                             "keypoints/visible": r[f"keypoints/visible{v}"], "viewpoint": r[f"viewpoint{v}"]})
            views.append(view)
        out.append({"view0": crop_to_content(views[0]), "view1": crop_to_content(views[1]), "mv0": r["mv0"],
                    "mv1": r["mv1"]})
    return out


def kp2d_pairs(dataset_dir: str, n: int) -> list[dict]:
    """Up to ``n`` homography pairs spread over photos, as :func:`kpdata.preview.pairs.write_pair_sheet`
    takes them."""
    fields = {"key", "image/encoded", "image_aug/encoded", "homography"}
    return [{"key": r["key"], "image": r["image/encoded"], "image_aug": r["image_aug/encoded"],
             "homography": r["homography"]}
            for r in select_preview(records.iter_kp2d_pairs(dataset_dir, fields=fields), n)]


def _pair_view(frame: dict) -> dict:
    return pair_view(frame["key"], frame["img_L"], frame["img_R"], frame["uvd_L"], frame["uvd_R"],
                     frame["visible_L"], frame["visible_R"], frame["mask"])


def keypose_record_tiles(dataset_dir: str, n: int) -> list[dict]:
    """Stereo-pair views of ``n`` ``keypose`` records evenly spread over the first :data:`SCAN_LIMIT`."""
    raws = []
    for key, raw in records.iter_keypose_records(dataset_dir):
        if len(raws) >= SCAN_LIMIT:
            break
        raws.append((key, raw))
    return [_pair_view(records.keypose_frame(key, raw)) for key, raw in spread(raws, n)]


def sequence_tiles(root: str, n: int) -> list[dict]:
    """Stereo-pair views of ``n`` frames evenly spread over the KeyPose sequence folders under
    ``root``; unreadable frames are left out (the converter reports them)."""
    views = []
    for pb_l in spread(records.sequence_frames(root), n):
        try:
            frame = records.read_sequence_frame(root, pb_l)
        except InputError:
            continue
        views.append(_pair_view(frame))
    return views


# ----------------------------------------------------------------------------- rendered viewpoints

VIEWPOINT_PLOT = "viewpoints.png"  # beside preview.png: the viewpoints a render_shapenet run rendered


def rendered_viewpoints(dataset_dir: str) -> tuple[np.ndarray, list[str]]:
    """The viewpoints a render_shapenet dataset holds, one per rendered view, as ((N, 4) azimuth,
    elevation, tilt (degrees), distance; (N,) synsets), read from its records: ``view`` and compact
    Click-Here records carry the rendered viewpoint, KeypointNet pairs both views' (extras),
    Click-Here's LMDB layout its ``views.jsonl``; full Click-Here instances only the integer
    ``viewpoint_label`` (one per view, distance NaN). Empty arrays for other kinds."""
    kind = dataset_kind(dataset_dir)
    vps, cats = [], []
    if kind == VIEW.name:
        for r in records.iter_views(dataset_dir, fields={"viewpoint", "synset"}):
            vps.append(r["viewpoint"])
            cats.append(r["synset"])
    elif kind == CLICKHERE_VIEW.name:
        for _, raw in records.iter_records(dataset_dir):
            r = CLICKHERE_VIEW.decode(raw, {"viewpoint", "synset"})
            vps.append(r["viewpoint"])
            cats.append(r["synset"])
    elif kind == records.CAFFE_RECORD:
        for split in sorted(records.load_info(dataset_dir)["splits"]):
            with open(os.path.join(dataset_dir, split, caffe_lmdb.VIEWS_FILE), encoding="utf-8") as f:
                for line in f:
                    v = json.loads(line)
                    vps.append(v["viewpoint"])
                    cats.append(v["key"].split("/")[0])
    elif kind == CLICKHERE_INSTANCE.name:
        seen = set()
        for _, raw in records.iter_records(dataset_dir):
            r = CLICKHERE_INSTANCE.decode(raw, {"view_key", "viewpoint_label"})
            if r["view_key"] not in seen:
                seen.add(r["view_key"])
                cls = int(r["viewpoint_label"][0])
                vps.append([*(float(a - 360 * cls) for a in r["viewpoint_label"][1:]), np.nan])
                cats.append(r["view_key"].split("/")[0])
    elif kind == KEYPOINTNET_PAIR.name:
        for r in records.iter_keypointnet_pairs(dataset_dir, fields={"viewpoint0", "viewpoint1", "synset"}):
            if "viewpoint0" in r:
                vps += [r["viewpoint0"], r["viewpoint1"]]
                cats += [r["synset"]] * 2
    return np.asarray(vps, np.float64).reshape(-1, 4), cats


def write_viewpoint_plot(dataset_dir: str, path: str | None = None) -> str | None:
    """Histograms of :func:`rendered_viewpoints` (azimuth in [0, 360), elevation and tilt in [-180, 180),
    distance; stacked
    per synset) into ``path`` (default ``<dataset_dir>/viewpoints.png``); None when the dataset holds
    no viewpoints."""
    vps, cats = rendered_viewpoints(dataset_dir)
    if not len(vps):
        return None
    from kpdata.preview import plots  # matplotlib, only here
    vps[:, 0] = np.mod(vps[:, 0], 360.0)
    vps[:, 1:3] = np.mod(vps[:, 1:3] + 180.0, 360.0) - 180.0  # Click-Here labels keep them in [0, 360)
    kind = dataset_kind(dataset_dir)
    return plots.write_viewpoint_plot(path or os.path.join(dataset_dir, VIEWPOINT_PLOT), vps, cats,
                                      f"{dataset_dir}: the {len(vps)} rendered viewpoints ({kind} records)")


# ----------------------------------------------------------------------------- the drawers


@register(VIEW.name)
def draw_views(dataset_dir: str, n: int, path: str) -> str:
    return write_contact_sheet(path, [crop_to_content(v) for v in view_tiles(dataset_dir, n)])


@register(CLICKHERE_VIEW.name, CLICKHERE_INSTANCE.name, records.CAFFE_RECORD)
def draw_clickhere(dataset_dir: str, n: int, path: str) -> str:
    return write_contact_sheet(path, clickhere_tiles(dataset_dir, n))


@register(KEYPOINTNET_PAIR.name)
def draw_keypointnet(dataset_dir: str, n: int, path: str) -> str:
    return keypointnet_sheet.write_pair_sheet(path, keypointnet_pairs(dataset_dir, n))


@register(KP2D_PAIR.name)
def draw_kp2d(dataset_dir: str, n: int, path: str) -> str:
    return pairs_sheet.write_pair_sheet(path, kp2d_pairs(dataset_dir, n))


@register(KEYPOSE.name)
def draw_keypose_records(dataset_dir: str, n: int, path: str) -> str:
    return write_contact_sheet(path, keypose_record_tiles(dataset_dir, n), columns=2, tile_width=480,
                               legend=stereo_sheet.LEGEND)


@register(SEQUENCES_RECORD)
def draw_keypose_sequences(dataset_dir: str, n: int, path: str) -> str:
    return write_contact_sheet(path, sequence_tiles(dataset_dir, n), columns=2, tile_width=480,
                               legend=stereo_sheet.LEGEND)


@register(HPATCHES_KIND)
def draw_hpatches(dataset_dir: str, n: int, path: str) -> str:
    """Up to ``n`` sequences, evenly spread over the folder's (sorted by name: illumination, then viewpoint)."""
    rows = []
    for seq in spread(hpatches.read_layout(dataset_dir), n):
        images = []
        for p in seq.images:
            bgr = cv2.imread(p, cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError("unreadable_image", "cannot decode the image", p)
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        rows.append(hpatches_sheet.sequence_row(seq.name, images, list(seq.homographies)))
    return hpatches_sheet.write_sequence_sheet(path, rows)


@register(DISTRIBUTIONS_KIND)
def draw_distributions(dataset_dir: str, n: int, path: str) -> str:
    """The sampled distributions of every class in the folder (``n`` is not used: one row per class)."""
    from kpdata.preview import plots  # matplotlib, only here
    with open(os.path.join(dataset_dir, FIT_INFO), encoding="utf-8") as f:
        info = json.load(f)
    classes = {}
    for cls in sorted(info.get("classes", {})):
        entry = {}
        for key, sub, what, cols in (("view_samples", kde.VIEW_DISTRIBUTION_DIR, "viewpoint", "az el tilt dist"),
                                     ("truncation_samples", kde.TRUNCATION_DISTRIBUTION_DIR, "truncation",
                                      "left right top bottom")):
            table = os.path.join(dataset_dir, sub, f"{cls}.txt")
            if os.path.isfile(table):
                entry[key] = kde.read_table(table, what, cols)
        classes[cls] = entry
    if not classes:
        raise InputError("no_distributions", "fit_info.json lists no classes", os.path.join(dataset_dir, FIT_INFO))
    div = info.get("config", {}).get("distance_divisor", 1)
    return plots.write_fit_plot(path, classes, f"{dataset_dir}: the sampled distributions (source {info.get('source')}; "
                                               f"distance / {div}); the input marginals are in fit_distributions.png")
