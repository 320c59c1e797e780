"""Flags shared by the pipelines: the output part of every configuration (one frozen dataclass
family whose defaults are the output flags' defaults), flag types, and the split of our flags
from Beam's own."""
from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import os
import re

from apache_beam.options.pipeline_options import PipelineOptions

from kpdata import demo
from kpdata.sources import meshes, shapenet
from pipelines import runners

# The value of an input flag (--shapenet_dir, --models, --input, --input_dir) that selects the
# built-in demo input; ``demo:N`` (--shapenet_dir, --models) grows the demo ShapeNet set to N models.
DEMO = "demo"
DEMO_MAX = 2000


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """The output part of a pipeline's configuration, filled from the ``output`` flag group
    (:func:`add_output_flags`, :func:`output_fields`) and serialised with the rest of the
    configuration into kpdata_info.json. A pipeline's configuration subclasses the variant it
    needs and redeclares the fields whose default differs; the flags take their defaults from it."""

    output_dir: str = "kpdata_out"
    name: str = "kpdata"
    seed: int = 0
    preview: int = 16
    max_failure_rate: float = 0.05


@dataclasses.dataclass(frozen=True)
class RecordOutputConfig(OutputConfig):
    """An output of records: ``format`` ``tfrecord`` or ``lmdb``."""

    format: str = "tfrecord"


@dataclasses.dataclass(frozen=True)
class ShardedOutputConfig(RecordOutputConfig):
    """An output of sharded records: ``num_shards`` TFRecord shards per split, 0 = automatic."""

    num_shards: int = 0


# The output flags in --help order, with the help text they have unless a pipeline says what the
# flag means for it; " (default: ...)" is appended.
OUTPUT_HELP = {
    "output_dir": "where shards and metadata go",
    "name": "dataset name, the shards' prefix",
    "format": "TFRecord shards or one LMDB environment per split",
    "num_shards": "TFRecord shards per split; 0 = automatic, about 256 MB each",
    "seed": "the run's seed",
    "preview": "views drawn into preview.png at the end; 0 = none",
    "max_failure_rate": "exit non-zero when the fraction of failed work exceeds this",
}


def demo_count(value: str) -> int | None:
    """N of ``demo:N`` (4 for ``demo``), None for any other value; SystemExit for a bad N."""
    if value == DEMO:
        return 4
    if not value.startswith(DEMO + ":"):
        return None
    n = value[len(DEMO) + 1:]
    if not n.isdigit() or not 4 <= int(n) <= DEMO_MAX:
        raise SystemExit(f"error: {value!r}: expected demo:N with N a whole number from 4 to {DEMO_MAX}")
    return int(n)


def shapenet_root(value: str) -> str:
    """The ShapeNet folder ``--shapenet_dir`` / ``--models`` names: the demo set (``demo``,
    ``demo:N``: :func:`kpdata.demo.demo_shapenet_dir` grown to N seeded models), or the folder."""
    n = demo_count(value)
    if n is not None:
        return demo.demo_shapenet_dir(count=n)
    return value


def add_model_source_flags(p: argparse.ArgumentParser, dir_flag: str = "--shapenet_dir",
                           dir_help: str = "ShapeNetCore v1 or v2 folder; 'demo' = the built-in demo set of 4 models, "
                                           "'demo:N' = it grown to N seeded variants (default: %(default)s)") -> None:
    """``dir_flag`` (ShapeNet folder or demo), ``--mesh_dir``, ``--mesh_up`` and ``--synsets``."""
    p.add_argument(dir_flag, default=DEMO, help=dir_help)
    p.add_argument("--mesh_dir", default="",
                   help="a folder tree of mesh files (.obj .glb .gltf .ply .stl .off) instead of ShapeNet: one model "
                        "per file, category = first folder level, keypoints from <name>.keypoints.json beside it; "
                        "each model is turned to +Y up and scaled to a unit bounding-box diagonal (docs/meshes.md)")
    p.add_argument("--mesh_up", choices=("y", "z"), default="y",
                   help="--mesh_dir files' up axis: y (glTF, most OBJ) or z (many scans, CAD, PLY, STL) "
                        "(default: %(default)s)")
    p.add_argument("--synsets", default="",
                   help="comma-separated synset ids or names; with --mesh_dir, category folder names (default: all)")


def synset_suggestion(name: str) -> str:
    """The message for an unknown synset ``name``, with the closest names (difflib) when any."""
    close = difflib.get_close_matches(name.strip().lower().replace(" ", "_"), sorted(shapenet.NAME_TO_SYNSET), n=3,
                                      cutoff=0.6)
    if close:
        hint = " or ".join(f"{c} ({shapenet.NAME_TO_SYNSET[c]})" for c in close)
        return f"unknown ShapeNet synset {name!r}; did you mean {hint}?"
    return (f"unknown ShapeNet synset {name!r}; use an 8-digit id or one of: "
            + ", ".join(sorted(shapenet.SYNSETS.values())))


def model_source_fields(args, dir_field: str = "shapenet_dir") -> dict:
    """``dir_field``, ``mesh_dir``, ``mesh_up`` and ``synsets`` (resolved to ids) from the flags of
    :func:`add_model_source_flags`; SystemExit with an ``error:`` line for a bad value."""
    folder = getattr(args, dir_field)
    flag = "--" + dir_field
    if args.mesh_dir and folder != DEMO:
        raise SystemExit(f"error: give either {flag} or --mesh_dir, not both")
    if demo_count(folder) is None and os.path.isfile(folder) and dir_field == "shapenet_dir":
        raise SystemExit(f"error: {flag} {folder}: is a file; {flag} takes a ShapeNetCore folder. For your own "
                         f"mesh files use --mesh_dir with the folder that holds them (e.g. --mesh_dir "
                         f"{os.path.dirname(folder) or '.'})")
    synsets = []
    for s in (s.strip() for s in args.synsets.split(",")):
        if not s:
            continue
        try:
            synsets.append(shapenet.synset_id(s))
        except ValueError:
            if args.mesh_dir:
                synsets.append(meshes.category_of(s))
                continue
            raise SystemExit(f"error: --synsets: {synset_suggestion(s)}") from None
    return {dir_field: folder, "mesh_dir": args.mesh_dir, "mesh_up": args.mesh_up, "synsets": tuple(synsets)}


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


_OUTPUT_TYPES = {"format": {"choices": ("tfrecord", "lmdb")}, "num_shards": {"type": int}, "seed": {"type": int},
                 "preview": {"type": int}, "max_failure_rate": {"type": fraction}}


def _output_fields(config: type[OutputConfig]) -> dict[str, dataclasses.Field]:
    """The output fields ``config`` has, in --help order."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    return {name: fields[name] for name in OUTPUT_HELP if name in fields}


def add_output_flags(parser: argparse.ArgumentParser, config: type[OutputConfig], **help_texts: str) -> None:
    """The ``output`` flag group: one flag per output field of ``config`` (an :class:`OutputConfig`
    subclass), with its default; ``help_texts`` replace :data:`OUTPUT_HELP` entries."""
    g = parser.add_argument_group("output")
    for name, field in _output_fields(config).items():
        text = help_texts.get(name, OUTPUT_HELP[name])
        g.add_argument(f"--{name}", default=field.default, help=f"{text} (default: %(default)s)",
                       **_OUTPUT_TYPES.get(name, {}))
    g.add_argument("--verbose", action="store_true",
                   help="also show library warnings and Beam's INFO log (quiet by default)")
    g.add_argument("--overwrite", action="store_true",
                   help="delete the dataset already in --output_dir and start fresh (without it a rerun of the same "
                        "command resumes, and a folder holding another configuration is refused)")


def output_fields(config: type[OutputConfig], args) -> dict:
    """The output fields of ``config`` from the parsed flags, as keyword arguments."""
    return {name: getattr(args, name) for name in _output_fields(config)}


def given_flags(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The destinations of the flags present on the command line (not defaulted)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    known, _ = probe.parse_known_args(list(argv))
    return set(vars(known))


def parse(parser: argparse.ArgumentParser, argv):
    """Our flags -> namespace; everything else -> Beam PipelineOptions (runner names Beam does not
    register made full: :func:`pipelines.runners.normalize_beam_args`)."""
    known, beam_args = parser.parse_known_args(argv)
    if getattr(known, "num_shards", 0) < 0:
        parser.error("--num_shards must be >= 0")
    if known.seed < 0:
        parser.error("--seed must be >= 0")
    options = PipelineOptions(runners.normalize_beam_args(beam_args))
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                     - set(options.get_all_options()))
    if unknown:
        parser.error("unrecognized arguments (neither this pipeline's nor Beam's): "
                     + " ".join("--" + u for u in unknown))
    return known, options
