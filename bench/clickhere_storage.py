"""Storage of the Click-Here layouts: bytes per instance, full vs compact, on the same instances.

    python bench/clickhere_storage.py [--views_per_model 8] [--backgrounds DIR]

Renders the built-in demo set once per layout with the same seed (so every layout holds the same
instances: the test suite checks that), and prints bytes per instance of each layout and its
ratio against the baseline, Click-Here's own layout (one Caffe-Datum LMDB per field).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import render_shapenet
from schemas.dataset import records

LAYOUTS = (("clickhere LMDB (Caffe Datum, baseline)", ["--format", "lmdb"]),
           ("instance TFRecord (full maps)", ["--format", "tfrecord"]),
           ("compact LMDB", ["--format", "lmdb", "--compact"]),
           ("compact TFRecord", ["--format", "tfrecord", "--compact"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--views_per_model", default="8")
    p.add_argument("--backgrounds", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "shared", "fixtures", "sun2012_sample"))
    args = p.parse_args(argv)
    bg = ["--backgrounds", args.backgrounds] if os.path.isdir(args.backgrounds) else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(LAYOUTS):
            out = os.path.join(tmp, str(i))
            rc = render_shapenet.run(["--layout", "clickhere", "--views_per_model", args.views_per_model,
                                      "--preview", "0", "--output_dir", out, *bg, *extra])
            if rc:
                return rc
            info = records.load_info(out)
            size = sum(s["num_bytes"] for s in info["splits"].values())
            n = sum(s["num_instances"] for s in info["splits"].values())
            rows.append((name, n, size))
    base = rows[0][2] / rows[0][1]
    print(f"\n{'layout':<42} {'instances':>9} {'bytes':>13} {'bytes/instance':>15} {'vs baseline':>12}")
    for name, n, size in rows:
        print(f"{name:<42} {n:>9} {size:>13,} {size / n:>15,.0f} {base / (size / n):>11.1f}x smaller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
