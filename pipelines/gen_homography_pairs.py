"""Make KP2D homography-adapted pairs from a folder of photos, and optionally an HPatches-layout
evaluation set.

    python -m pipelines.gen_homography_pairs [flags] [Beam flags]

Work: one unit per photo (:mod:`pipelines.stream`): MakePairs reads, resizes, samples each pair's
homography, warps, augments and encodes, streaming the pairs into the photo's part, and exports the
photo's HPatches sequences; the parts are assembled into the shards; unreadable photos go to
errors/failures.jsonl and the metadata is written last. A rerun resumes.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import time

import apache_beam as beam
import numpy as np

from kpdata.kp2d import augment

from kpdata.kp2d import hpatches

from kpdata.sources import photos
from kpdata.kp2d import homography as hg
from kpdata.errors import InputError
from kpdata import seeding
from kpdata.seeding import rng_for
from kpdata.demo import photos as demo_photos
from pipelines import skeleton, sinks, stream
from pipelines import options as opts
from pipelines.options import DEMO, ShardedOutputConfig
from schemas.kp2d import KP2D_PAIR, make_pair_record

LOG = logging.getLogger("kpdata.gen_homography_pairs")
COMMAND = "pipelines.gen_homography_pairs"


@dataclasses.dataclass(frozen=True)
class PairsConfig(ShardedOutputConfig):
    """Everything that decides the output; serialised into kpdata_info.json."""

    input_dir: str = DEMO
    recursive: bool = False
    image_size: tuple = (320, 240)
    pairs_per_image: int = 4
    patch_ratio: float = 0.7
    perspective_amplitude: float = 0.4
    scaling_amplitude: float = 0.2
    max_angle: float = 45.0  # degrees
    photometric: str = "kp2d"  # kp2d | none
    hpatches_out: str = ""
    hpatches_size: tuple = ()  # () = image_size
    name: str = "kp2d_pairs"
    splits: tuple = (("train", 1.0),)
    max_failure_rate: float = 0.01

    @property
    def params(self) -> hg.HomographyParams:
        return hg.HomographyParams(patch_ratio=self.patch_ratio, perspective_amplitude=self.perspective_amplitude,
                                   scaling_amplitude=self.scaling_amplitude, max_angle=math.radians(self.max_angle))


@dataclasses.dataclass(frozen=True)
class PhotoTask:
    """One photo: its path relative to the input folder, absolute path, split and the HPatches
    name of its sequences."""

    rel: str
    path: str
    split: str
    seq_name: str


def pair_key(rel: str, index: int) -> str:
    return f"{rel}/p{index:04d}"


def assign_splits(config: PairsConfig, rels) -> dict[str, str]:
    """{photo path: split}: the plan-wide seeded split by photo (all pairs of a photo share a
    split; :func:`kpdata.seeding.assign_splits`). SplitError when a split would get no photo."""
    return seeding.assign_splits(config.seed, config.splits, rels, "photo")


def sequence_names(rels: list[str]) -> dict[str, str]:
    """{relative path: unique HPatches base name}: the path without extension, or with it where
    two photos would share a name (``a.jpg`` and ``a.png``)."""
    base = {r: hpatches.sequence_name("v", os.path.splitext(r)[0])[2:] for r in rels}
    counts: dict = {}
    for b in base.values():
        counts[b] = counts.get(b, 0) + 1
    out = {r: (b if counts[b] == 1 else hpatches.sequence_name("v", r)[2:]) for r, b in base.items()}
    if len(set(out.values())) != len(out):
        raise ValueError("photo names collide after sanitising; rename the files")
    return out


def make_pair(image: np.ndarray, key: str, config: PairsConfig, params: hg.HomographyParams):
    """One pair from a resized RGB photo, drawn from ``rng_for(seed, key)``:
    (image, image_aug, H normalised, H pixels)."""
    rng = rng_for(config.seed, key)
    h, w = image.shape[:2]
    hn = hg.sample_homography(rng, (h, w), params)
    warped = hg.warp_image(image, hn)
    if config.photometric == "kp2d":
        image, warped = augment.non_spatial_pair(image, warped, rng)
    return image, warped, hn, hg.to_pixels(hn, w, h)


def export_hpatches(image: np.ndarray, task: PhotoTask, config: PairsConfig, params: hg.HomographyParams):
    """Write the photo's ``v_<name>`` and ``i_<name>`` sequences into ``config.hpatches_out``."""
    return hpatches.export_photo(image, config.hpatches_out, task.seq_name,
                                 rng_for(config.seed, "hpatches/" + task.rel),
                                 config.hpatches_size or config.image_size, params)


class MakePairs(beam.DoFn):
    """PhotoTask -> (split, key, serialized KP2D_PAIR) records; unreadable photos to ``failed``."""

    stage = "pairs"  # of the dead letters pipelines.stream.WriteUnits makes of what escapes

    def __init__(self, config: PairsConfig):
        self.config = config

    def source(self, task: PhotoTask) -> tuple[str, str]:
        return task.rel, task.path

    def process(self, task: PhotoTask):
        config = self.config
        params = config.params
        t0 = time.perf_counter()
        try:
            photo = photos.read_image(task.path)
        except InputError as e:
            beam.metrics.Metrics.counter("gen_homography_pairs", "photos_failed").inc()
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                task.rel, "read", e.error, e.message, e.path or task.path))
            return
        image = photos.resize(photo, config.image_size)
        for i in range(config.pairs_per_image):
            key = pair_key(task.rel, i)
            img, aug, hn, hp = make_pair(image, key, config, params)
            rec = make_pair_record(key=key, image_path=task.rel, seed=config.seed, pair_index=i, image=img,
                                   image_aug=aug, homography=hn, homography_pixels=hp,
                                   source_size=(photo.shape[1], photo.shape[0]))
            beam.metrics.Metrics.counter("gen_homography_pairs", "pairs").inc()
            yield task.split, key, KP2D_PAIR.encode(rec)
        yield beam.pvalue.TaggedOutput("timing", ("pairs", time.perf_counter() - t0))
        if config.hpatches_out:
            t1 = time.perf_counter()
            for name in export_hpatches(photo, task, config, params):
                yield beam.pvalue.TaggedOutput("exported", name)
            yield beam.pvalue.TaggedOutput("timing", ("hpatches", time.perf_counter() - t1))


def write_metadata(_, config: PairsConfig, command, planned: dict, failures, timings, shard_infos, exported):
    splits = sinks.splits_info(shard_infos, config.format)
    failed = len({f["key"] for f in failures})
    return skeleton.write_dataset_files(
        config, config, command, schema=KP2D_PAIR,
        info={"version": KP2D_PAIR.version, "record": KP2D_PAIR.name, "splits": splits,
              "split_assignment": {"by": "photo", "groups": dict(sorted(planned["split_assignment"].items()))}},
        counts={"images": planned["images"], "pairs_planned": planned["pairs"], "images_failed": failed,
                "records_written": sum(s["num_examples"] for s in splits.values()), "hpatches_sequences": len(exported)},
        failures=failures, failure_rate=skeleton.rate(failed, planned["images"]), timings=timings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.gen_homography_pairs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_dir", default=DEMO,
                   help="folder of JPEG / PNG photos; 'demo' = the built-in procedural photos (default: %(default)s)")
    p.add_argument("--recursive", action="store_true", help="also take photos from sub-folders (default: off)")
    p.add_argument("--image_size", type=opts.image_size, default=(320, 240),
                   help="WxH every photo is resized to (default: 320x240)")
    p.add_argument("--pairs_per_image", type=int, default=4,
                   help="pairs per photo, each with its own seeded homography (default: %(default)s)")
    p.add_argument("--patch_ratio", type=float, default=0.7, help="KP2D patch ratio (default: %(default)s)")
    p.add_argument("--perspective_amplitude", type=float, default=0.4,
                   help="KP2D perspective amplitude (default: %(default)s)")
    p.add_argument("--scaling_amplitude", type=float, default=0.2, help="KP2D scaling amplitude (default: %(default)s)")
    p.add_argument("--max_angle", type=float, default=45.0, help="largest rotation, degrees (default: %(default)s)")
    p.add_argument("--photometric", choices=("kp2d", "none"), default="kp2d",
                   help="non-spatial augmentation of both images: KP2D's (with a working colour jitter) or "
                        "none (default: %(default)s)")
    p.add_argument("--hpatches_out", default="",
                   help="also write an HPatches-layout set here: v_<name>/ and i_<name>/ per photo (default: none)")
    p.add_argument("--hpatches_size", type=opts.image_size, default=None,
                   help="WxH of the HPatches images (default: --image_size)")
    p.add_argument("--splits", type=opts.splits, default=(("train", 1.0),),
                   help="splits by photo with fractions, e.g. train=0.9,test=0.1 (default: train=1)")
    opts.add_output_flags(p, PairsConfig)
    return p


def config_from_args(args) -> PairsConfig:
    if args.pairs_per_image < 0:
        raise SystemExit("error: --pairs_per_image must be >= 0")
    if args.pairs_per_image == 0 and not args.hpatches_out:
        raise SystemExit("error: --pairs_per_image 0 makes nothing without --hpatches_out")
    for size in (args.image_size, args.hpatches_size or args.image_size):
        if min(size) < 2:
            raise SystemExit(f"image sizes must be at least 2x2, got {size[0]}x{size[1]}")
    if not 0 <= args.max_angle <= 180:
        raise SystemExit("error: --max_angle must be in [0, 180] degrees")
    config = PairsConfig(
        input_dir=args.input_dir, recursive=args.recursive, image_size=tuple(args.image_size),
        pairs_per_image=args.pairs_per_image, patch_ratio=args.patch_ratio,
        perspective_amplitude=args.perspective_amplitude, scaling_amplitude=args.scaling_amplitude,
        max_angle=args.max_angle, photometric=args.photometric, hpatches_out=args.hpatches_out,
        hpatches_size=tuple(args.hpatches_size) if args.hpatches_size else (), splits=tuple(args.splits),
        **opts.output_fields(PairsConfig, args))
    try:
        config.params  # noqa: B018 (validates the sampler's constants)
    except ValueError as e:
        raise SystemExit(f"bad homography parameters: {e}") from None
    return config


@dataclasses.dataclass(frozen=True)
class PhotoPlan(skeleton.Plan):
    shards: dict
    failures: tuple = ()


def plan(config: PairsConfig) -> PhotoPlan:
    """The photos, one task each with its split and HPatches name, and the shards per split."""
    root = demo_photos.demo_photo_dir() if config.input_dir == DEMO else config.input_dir
    rels = photos.list_images(root, config.recursive)
    if not rels:
        raise skeleton.NoInput(f"{root}: no .jpg/.jpeg/.png photos found"
                               f"{'' if config.recursive else ' (sub-folders need --recursive)'}")
    # A photo whose name is not UTF-8 is read fine (as bytes) but cannot give a record key (text):
    # one dead letter naming it, with its bytes written \xNN.
    bad = [r for r in rels if photos.printable(r) != r]
    failures = tuple(sinks.failure_record(photos.printable(r), "plan", "non_utf8_name",
                                          "file name is not valid UTF-8 (record keys are UTF-8 text); rename it",
                                          photos.printable(os.path.join(root, r))) for r in bad)
    rels = [r for r in rels if r not in bad]
    names = sequence_names(rels)
    split_of = assign_splits(config, rels)
    tasks = [PhotoTask(r, os.path.join(root, *r.split("/")), split_of[r], names[r]) for r in rels]
    pairs_per_split = {name: 0 for name, _ in config.splits}
    for t in tasks:
        pairs_per_split[t.split] += config.pairs_per_image
    w, h = config.image_size
    counts = {"images": len(tasks) + len(failures), "pairs": sum(pairs_per_split.values()), "split_assignment": split_of}
    if config.hpatches_out:
        os.makedirs(config.hpatches_out, exist_ok=True)
    return PhotoPlan(config, tasks, counts,
                     f"making {counts['pairs']} pairs from {counts['images']} photos in {root} into {config.output_dir}",
                     skeleton.shards_per_split(pairs_per_split, config.num_shards, w * h * 3 * 1.2), failures)


def work(plan: PhotoPlan) -> skeleton.Work:
    config = plan.config
    units = [stream.Unit(t.rel, t.split, (t,), config.pairs_per_image) for t in plan.tasks]
    units, shards = skeleton.shard_layout(units, plan.shards, config.format, config.name)
    return skeleton.Work(units, MakePairs(config), stream.keyed, shards, lists=("shards", "exported"),
                         plan_failures=plan.failures, stage="pairs", label="pairs")


def summary(config: PairsConfig) -> dict:
    return {"counts": lambda c: f"   photos {c['images']}  pairs planned {c['pairs_planned']}  written {c['records_written']}",
            "extra": lambda c: [f"   hpatches {c['hpatches_sequences']} sequences in {config.hpatches_out}"]
            if config.hpatches_out else []}


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata, summary=summary)


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    return skeleton.run(argv, build_parser(), config_from_args, STEPS)


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import gen_homography_pairs, run_command  # noqa: PLW0406
    run_command(gen_homography_pairs.run)
