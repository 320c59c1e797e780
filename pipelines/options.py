"""Flags shared by the pipelines, and the split of our flags from Beam's own."""
from __future__ import annotations

import argparse
import copy
import re

from apache_beam.options.pipeline_options import PipelineOptions


def image_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise argparse.ArgumentTypeError(f"expected WxH with positive integers, e.g. 960x540, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return v


def splits(text: str) -> tuple[tuple[str, float], ...]:
    """``train=0.8,test=0.2`` -> (("train", 0.8), ("test", 0.2)); fractions must sum to 1."""
    out = []
    for part in text.split(","):
        name, _, frac = part.partition("=")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise argparse.ArgumentTypeError(f"bad split name {name!r} in {text!r}")
        try:
            f = float(frac) if frac else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad fraction {frac!r} in {text!r}") from None
        out.append((name, f))
    if abs(sum(f for _, f in out) - 1.0) > 1e-6 or any(f < 0 for _, f in out):
        raise argparse.ArgumentTypeError(f"split fractions must be >= 0 and sum to 1, got {text!r}")
    if len({n for n, _ in out}) != len(out):
        raise argparse.ArgumentTypeError(f"repeated split name in {text!r}")
    return tuple(out)


def add_output_flags(parser: argparse.ArgumentParser, name: str, max_failure_rate: float) -> None:
    g = parser.add_argument_group("output")
    g.add_argument("--output_dir", default="kpdata_out", help="where shards and metadata go (default: %(default)s)")
    g.add_argument("--name", default=name, help="dataset name, the shards' prefix (default: %(default)s)")
    g.add_argument("--format", choices=("tfrecord", "lmdb"), default="tfrecord",
                   help="TFRecord shards or one LMDB environment per split (default: %(default)s)")
    g.add_argument("--num_shards", type=int, default=0,
                   help="TFRecord shards per split; 0 = automatic, about 256 MB each (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="the run's seed (default: %(default)s)")
    g.add_argument("--preview", type=int, default=16,
                   help="views drawn into preview.png at the end; 0 = none (default: %(default)s)")
    g.add_argument("--max_failure_rate", type=fraction, default=max_failure_rate,
                   help="exit non-zero when the fraction of failed work exceeds this (default: %(default)s)")


def given_flags(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The destinations of the flags present on the command line (not defaulted)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    known, _ = probe.parse_known_args(list(argv))
    return set(vars(known))


def parse(parser: argparse.ArgumentParser, argv):
    """Our flags -> namespace; everything else -> Beam PipelineOptions."""
    known, beam_args = parser.parse_known_args(argv)
    if getattr(known, "num_shards", 0) < 0:
        parser.error("--num_shards must be >= 0")
    if known.seed < 0:
        parser.error("--seed must be >= 0")
    options = PipelineOptions(beam_args)
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                     - set(options.get_all_options()))
    if unknown:
        parser.error("unrecognized arguments (neither this pipeline's nor Beam's): "
                     + " ".join("--" + u for u in unknown))
    return known, options
