"""Draw a contact sheet of a produced dataset.

    python -m pipelines.preview DIR [--num 16] [--output DIR/preview.png]

DIR is a folder written by a kpdata pipeline (any record kind), a tree of KeyPose sequence folders,
an HPatches export (gen_homography_pairs --hpatches_out) or a fit_viewpoints output folder; the
sheet is the one its kind gets (:mod:`schemas.dataset.previews`): gen_tfrecords output and KeyPose
sequences show left/right pairs with keypoints and disparity lines, HPatches sequences their six
images with image 1's border mapped by each homography, fit_viewpoints folders the sampled
distributions per class.
"""
from __future__ import annotations

import argparse
import sys

from kpdata.errors import InputError
from schemas.dataset import previews


def run(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.preview", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset_dir", help="a folder written by a kpdata pipeline, an HPatches export or a fit_viewpoints "
                                       "output")
    p.add_argument("--num", type=int, default=16, help="views to draw (default: %(default)s)")
    p.add_argument("--output", default=None, help="PNG path (default: DIR/preview.png)")
    args = p.parse_args(argv)
    try:
        path = previews.write_preview(args.dataset_dir, args.num, args.output)
    except (FileNotFoundError, previews.UnknownKind, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    from pipelines import run_command
    run_command(run)
