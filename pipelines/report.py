"""The end of a run: the one-screen summary, the preview sheet and the exit status."""
from __future__ import annotations

import os
import subprocess
import time

from apache_beam.io.filesystems import FileSystems

import kpdata
from pipelines import sinks
from schemas.dataset import previews, records
from schemas.dataset import names


def code_version() -> str:
    """kpdata's version, plus the git commit when running from a checkout."""
    version = kpdata.__version__
    src = os.path.dirname(os.path.dirname(os.path.abspath(kpdata.__file__)))
    try:
        commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"{version}+g{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return version


def summary(output_dir: str, info: dict, stats: dict, wall: float, counts=None, extra=None) -> str:
    """The one-screen summary: splits, the counts line (``counts(stats["counts"])``, default
    models / views), ``extra(stats["counts"])`` lines, failures and the failure rate."""
    lines = [f"== {info['name']} in {output_dir} ({wall:.1f} s)"]
    for split, s in sorted(info["splits"].items()):
        lines.append(f"   {split:<8} {s['num_examples']:>8} records  {len(s['shards']):>4} {s['format']} shard(s)  "
                     f"{s['num_bytes'] / 1e6:,.1f} MB")
    c = stats["counts"]
    lines.append(counts(c) if counts else
                 f"   models {c['models']}  views planned {c['views_planned']}  written {c['records_written']}")
    if "models_with_keypoints" in c:  # pipelines.shapenet_views.keypoint_plan
        line = f"   keypoints: {c['models_with_keypoints']} of {c['models']} models annotated"
        if "annotations_unmatched" in c:
            line += f"; {c['annotations_unmatched']} annotation entries name no model rendered here"
        lines.append(line)
    lines.extend(extra(c) if extra else [])
    f = stats["failures"]
    if f["total"]:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(f["by_error"].items()))
        lines.append(f"   FAILURES {f['total']} ({kinds}): see {os.path.join(output_dir, names.ERRORS_DIR, names.FAILURES_FILE)}")
    else:
        lines.append("   failures 0")
    lines.append(f"   failure rate {stats['failure_rate']:.3f}")
    return "\n".join(lines)


def finish(output_dir: str, max_failure_rate: float, preview: int, start: float, *, counts=None, extra=None,
           written: str = "records_written") -> int:
    """Record the wall time in stats.json, print the summary (``counts``, ``extra``: see
    :func:`summary`), draw the preview (the sheet of the dataset's kind,
    :func:`schemas.dataset.previews.write_preview`; skipped when ``stats["counts"][written]`` is 0)
    and return the exit status."""
    info = records.load_info(output_dir, FileSystems)
    stats = sinks.read_json(os.path.join(output_dir, names.STATS))
    wall = time.time() - start
    stats["timings"]["wall"] = round(wall, 3)
    sinks.write_json(os.path.join(output_dir, names.STATS), stats)
    print(summary(output_dir, info, stats, wall, counts, extra))
    if preview > 0 and stats["counts"].get(written):
        print(f"   preview  {previews.write_preview(output_dir, preview)}")
    if stats["failure_rate"] > max_failure_rate:
        print(f"   exit 1: failure rate {stats['failure_rate']:.3f} exceeds --max_failure_rate {max_failure_rate}")
        return 1
    return 0
