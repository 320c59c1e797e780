"""Fit Render for CNN's viewpoint and truncation distributions and write their sample files.

    python -m pipelines.fit_viewpoints [--pascal3d DIR | --csv FILE] [flags]

Reads PASCAL3D+ annotations (``Annotations/<cls>_pascal/*.mat`` restricted to a VOC image-set list,
CAD models from ``CAD/<cls>.mat`` for the truncations) or a CSV, fits per class the 4-D viewpoint
KDE and the two 2-D truncation KDEs (formats.md §3.1, §3.2), samples them and writes::

    OUT/view_distribution/<cls>.txt        "az el tilt dist" lines
    OUT/truncation_distribution/<cls>.txt  "left right top bottom" lines
    OUT/fit_info.json                      per class: counts, bandwidths; the configuration
    OUT/fit_distributions.png              per class: sampled vs input marginals of the 8 columns

which ``render_shapenet --layout clickhere --viewpoints OUT/view_distribution --truncations
OUT/truncation_distribution`` reads. With no arguments it fits a built-in synthetic PASCAL3D+-layout
set (bus, car, motorbike).

CSV columns (header row): ``class,azimuth,elevation,tilt,distance`` and optionally the boxes
``x1,y1,x2,y2,cad_x1,cad_y1,cad_x2,cad_y2`` (ground-truth and projected-CAD boxes) for truncations.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time

import numpy as np

from kpdata.clickhere import kde

from kpdata.sources import pascal3d
from kpdata.errors import InputError
from kpdata.seeding import rng_for
from kpdata.demo import pascal3d as demo_pascal3d

DEMO = "demo"
FIT_PLOT = "fit_distributions.png"  # sampled vs input marginals per class (kpdata.preview.plots.write_fit_plot)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.fit_viewpoints", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pascal3d", default=DEMO,
                     help="PASCAL3D+ root; 'demo' = a built-in synthetic set of the same layout (default: %(default)s)")
    src.add_argument("--csv", default="", help="a CSV of viewpoints (and boxes) instead of PASCAL3D+")
    p.add_argument("--image_set", default="",
                   help="VOC image-set list restricting the PASCAL3D+ images; default: "
                        "PASCAL/VOCdevkit/VOC2012/ImageSets/Main/train.txt or ImageSets/Main/train.txt "
                        "under the root; 'all' = every image")
    p.add_argument("--classes", default="", help="comma-separated classes (default: every class found)")
    p.add_argument("--distance_divisor", default="auto",
                   help="divide distances by this; 'auto' = 3 for PASCAL3D+ (R4CNN), 1 for CSV (default: %(default)s)")
    p.add_argument("--outlier_ratio", type=float, default=kde.OUTLIER_RATIO,
                   help="fraction of samples replaced by outliers (default: %(default)s)")
    p.add_argument("--num_samples", type=int, default=200000,
                   help="rows written per class and distribution (R4CNN: 1000000) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default: %(default)s)")
    p.add_argument("--output_dir", default="kpdata_distributions", help="where the files go (default: %(default)s)")
    return p


def _image_set(root: str, spec: str):
    if spec == "all":
        return None
    if spec:
        return pascal3d.read_image_set(spec)
    for rel in (("PASCAL", "VOCdevkit", "VOC2012", "ImageSets", "Main", "train.txt"),
                ("ImageSets", "Main", "train.txt")):
        path = os.path.join(root, *rel)
        if os.path.isfile(path):
            return pascal3d.read_image_set(path)
    raise InputError("missing_image_set", "no VOC train list found under the root; pass --image_set FILE or "
                     "--image_set all", root)


def read_pascal3d(root: str, image_set_spec: str, classes) -> tuple[dict, dict, dict]:
    """{cls: (N, 4) viewpoints}, {cls: (M, 4) truncations}, {cls: counts} from PASCAL3D+."""
    ids = _image_set(root, image_set_spec)
    found = sorted(d[:-len("_pascal")] for d in os.listdir(os.path.join(root, "Annotations"))
                   if d.endswith("_pascal")) if os.path.isdir(os.path.join(root, "Annotations")) else []
    classes = classes or [c for c in found if c in kde.R4CNN_CLASSES]
    if not classes:
        raise InputError("missing_annotations", "no Annotations/<cls>_pascal folders", root)
    views, truncs, counts = {}, {}, {}
    for cls in classes:
        objs = pascal3d.read_objects(root, cls, ids)
        views[cls] = pascal3d.viewpoints(objs)
        cad_path = os.path.join(root, "CAD", f"{cls}.mat")
        truncs[cls] = pascal3d.truncations(objs, pascal3d.load_cad(root, cls)) if os.path.isfile(cad_path) \
            else np.zeros((0, 4))
        counts[cls] = {"objects": len(objs), "viewpoints": len(views[cls]), "truncations": len(truncs[cls])}
    return views, truncs, counts


CSV_VIEW = ("class", "azimuth", "elevation", "tilt", "distance")
CSV_BOX = ("x1", "y1", "x2", "y2", "cad_x1", "cad_y1", "cad_x2", "cad_y2")


def read_csv(path: str, classes) -> tuple[dict, dict, dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError("bad_csv", f"cannot read CSV: {e}", path) from None
    if not rows or any(c not in rows[0] for c in CSV_VIEW):
        raise InputError("bad_csv", f"expected a header with {','.join(CSV_VIEW)}", path)
    has_box = all(c in rows[0] for c in CSV_BOX)
    views, truncs = {}, {}
    for n, r in enumerate(rows, 2):
        cls = r["class"].strip()
        if classes and cls not in classes:
            continue
        try:
            v = [float(r[c]) for c in CSV_VIEW[1:]]
            b = [float(r[c]) for c in CSV_BOX] if has_box and all(r[c].strip() for c in CSV_BOX) else None
        except ValueError:
            raise InputError("bad_csv", f"line {n}: non-numeric value in {r}", path) from None
        if v[3] != 0:
            views.setdefault(cls, []).append(v)
        if b is not None:
            w, h = b[6] - b[4], b[7] - b[5]
            if w <= 0 or h <= 0:
                raise InputError("bad_csv", f"line {n}: degenerate CAD box", path)
            truncs.setdefault(cls, []).append([(b[0] - b[4]) / w, (b[2] - b[6]) / w, (b[1] - b[5]) / h, (b[3] - b[7]) / h])
    views = {c: np.asarray(v, np.float64) for c, v in views.items()}
    truncs = {c: np.asarray(truncs.get(c, []), np.float64).reshape(-1, 4) for c in views}
    counts = {c: {"viewpoints": len(views[c]), "truncations": len(truncs[c])} for c in views}
    return views, truncs, counts


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args = p.parse_args(argv)
    if args.num_samples <= 0:
        p.error("--num_samples must be > 0")
    if not 0.0 <= args.outlier_ratio <= 1.0:
        p.error("--outlier_ratio must be in [0, 1]")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    start = time.time()
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    try:
        if args.csv:
            divisor = 1.0 if args.distance_divisor == "auto" else float(args.distance_divisor)
            views, truncs, counts = read_csv(args.csv, classes)
            source = args.csv
        else:
            divisor = 3.0 if args.distance_divisor == "auto" else float(args.distance_divisor)
            root = args.pascal3d
            if root == DEMO:
                with tempfile.TemporaryDirectory(prefix="kpdata-pascal3d-demo-") as tmp:
                    demo_pascal3d.write_demo_annotations(tmp)
                    views, truncs, counts = read_pascal3d(tmp, args.image_set, classes)
            else:
                views, truncs, counts = read_pascal3d(root, args.image_set, classes)
            source = args.pascal3d
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError:
        p.error(f"--distance_divisor: expected a number or 'auto', got {args.distance_divisor!r}")
    if divisor <= 0:
        p.error("--distance_divisor must be > 0")
    fitted = {c: v for c, v in views.items() if len(v) >= 2}
    if not fitted:
        print(f"error: {source}: fewer than 2 viewpoints in every class", file=sys.stderr)
        return 2
    scaled = {c: v * [1, 1, 1, 1.0 / divisor] for c, v in fitted.items()}
    models = kde.fit_viewpoints(scaled, args.outlier_ratio)
    plot = {}  # the plot's input and sampled columns per class (distances in the fitted units)
    info = {"source": source, "command": "python -m pipelines.fit_viewpoints " + " ".join(argv),
            "config": {**vars(args), "distance_divisor": divisor}, "classes": {}}
    for cls, model in models.items():
        samples = model.sample(args.num_samples, rng_for(args.seed, "view/" + cls))
        kde.write_table(os.path.join(args.output_dir, kde.VIEW_DISTRIBUTION_DIR, f"{cls}.txt"), samples)
        plot[cls] = {"views": scaled[cls], "view_samples": samples, "truncations": truncs.get(cls, np.zeros((0, 4)))}
        entry = {**counts[cls], "view_bandwidth": model.kde.bandwidth.round(6).tolist(),
                 "pooled_elevation": round(model.pooled_elevation, 6), "pooled_tilt": round(model.pooled_tilt, 6)}
        t = truncs.get(cls, np.zeros((0, 4)))
        if len(t) >= 2:
            tk = kde.TruncationKDE.fit(t, args.outlier_ratio)
            plot[cls]["truncation_samples"] = tk.sample(args.num_samples, rng_for(args.seed, "truncation/" + cls))
            kde.write_table(os.path.join(args.output_dir, kde.TRUNCATION_DISTRIBUTION_DIR, f"{cls}.txt"),
                            plot[cls]["truncation_samples"])
            entry["truncation_bandwidth"] = tk.horizontal.bandwidth.round(6).tolist() + \
                tk.vertical.bandwidth.round(6).tolist()
        info["classes"][cls] = entry
        print(f"   {cls:<12} {len(fitted[cls]):>6} viewpoints  {len(t):>6} truncations  -> {args.num_samples} samples each")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "fit_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    from kpdata.preview import plots  # matplotlib: only when plotting
    png = plots.write_fit_plot(os.path.join(args.output_dir, FIT_PLOT), plot,
                               f"{source}: sampled ({args.num_samples} per class) vs input marginals; distance / {divisor:g}")
    print(f"   plot {png}")
    print(f"== distributions of {len(models)} classes in {args.output_dir} ({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    from pipelines import fit_viewpoints, run_command
    run_command(fit_viewpoints.run)
