"""Check a dataset a kpdata pipeline produced; exit 1 on any defect.

    python -m pipelines.validate [DIR] [--max_records N] [--json] [--hpatches DIR]

DIR (default ``kpdata_out``) is any output folder: ``render_shapenet`` (view, clickhere in all four
layouts, keypointnet), ``gen_tfrecords``, ``render_stereo``, ``gen_homography_pairs``, or an
HPatches-layout folder. The kind is read from ``kpdata_info.json`` (``record`` / ``layout``).

Checks: the metadata files parse and agree with each other and the schema; every file
kpdata_info lists exists with its example count and bytes, no stray or temporary (never renamed)
shard is left; TFRecord framing and CRCs; every record decodes with its schema (fields, kinds,
shapes, shared dimensions, finite floats); keys unique, sorted within a shard, of the documented
format, in the shard their key hashes to and the split kpdata_info.json's split_assignment gives; cheap per-record invariants
(:mod:`schemas.dataset.checks`); the layout's own files (KeypointNet's lists and projection, KeyPose's
pbtxt, Click-Here's per-field LMDBs); the dead-letter files. Exit 0 clean, 1 on any defect, 2 on a
usage error (no such folder, not a kpdata dataset).

The folder is only read, never written. Local folders only.
"""
from __future__ import annotations

import argparse
import json
import sys

from schemas.dataset.validation import UsageError, validate

EXIT_OK, EXIT_DEFECTS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset_dir", nargs="?", default="kpdata_out",
                   help="a folder a kpdata pipeline wrote, or an HPatches-layout folder (default: %(default)s)")
    p.add_argument("--max_records", type=int, default=None,
                   help="check at most N records per split in full (decode, invariants, data CRCs); every file is "
                        "still framed and counted (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.add_argument("--hpatches", default=None,
                   help="also check this HPatches-layout folder (default: a kp2d run's --hpatches_out when found)")
    return p


def run(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    if args.max_records is not None and args.max_records < 1:
        print("error: --max_records must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = validate(args.dataset_dir, args.max_records, args.hpatches)
    except UsageError as e:
        if args.json:
            print(json.dumps({"dir": args.dataset_dir, "ok": False, "usage_error": str(e)}))
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text())
    return EXIT_DEFECTS if report.defects else EXIT_OK


if __name__ == "__main__":
    from pipelines import run_command
    run_command(run)
