"""Make KP2D homography-adapted pairs from a folder of photos, and optionally an HPatches-layout
evaluation set.

    python -m pipelines.gen_homography_pairs [flags] [Beam flags]

Graph: ListPhotos -> Reshuffle -> MakePairs (reads, resizes, samples each pair's homography,
warps, augments, encodes; exports the photo's HPatches sequences) -> WriteShards, with
unreadable photos going to errors/failures.jsonl and metadata written last (WriteMetadata).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import time

import apache_beam as beam
import numpy as np

from kpdata.kp2d import augment

from kpdata.kp2d import hpatches

from kpdata.sources import photos
from kpdata.kp2d import homography as hg
from kpdata.errors import InputError
from kpdata.seeding import rng_for, split_of
from kpdata.demo import photos as demo_photos
from pipelines import report, sinks
from pipelines import options as opts
from schemas.kp2d import KP2D_PAIR, make_pair_record

LOG = logging.getLogger("kpdata.gen_homography_pairs")
DEMO = "demo"


@dataclasses.dataclass(frozen=True)
class PairsConfig:
    """Everything that decides the output; serialised into dataset_info.json."""

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
    format: str = "tfrecord"
    output_dir: str = "kpdata_out"
    name: str = "kp2d_pairs"
    num_shards: int = 0
    seed: int = 0
    splits: tuple = (("train", 1.0),)
    preview: int = 16
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


def assign_split(config: PairsConfig, rel: str) -> str:
    """Seeded split by photo (all pairs of a photo share a split)."""
    return split_of(config.seed, config.splits, rel)


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

    def __init__(self, config: PairsConfig):
        self.config = config

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


def write_metadata(_, config: PairsConfig, argv, shard_infos, failures, timings, exported, planned: dict):
    out = config.output_dir
    splits = sinks.splits_info(shard_infos, config.format)
    written = sum(s["num_examples"] for s in splits.values())
    sinks.write_json(os.path.join(out, sinks.FEATURES), KP2D_PAIR.describe())
    sinks.write_json(os.path.join(out, sinks.DATASET_INFO), {
        "name": config.name, "version": KP2D_PAIR.version, "record": KP2D_PAIR.name, "splits": splits,
        "config": dataclasses.asdict(config), "seed": config.seed,
        "command": "python -m pipelines.gen_homography_pairs " + " ".join(argv),
        "code_version": report.code_version(),
    })
    failed = len({f["key"] for f in failures})
    stats = {
        "counts": {"images": planned["images"], "pairs_planned": planned["pairs"], "images_failed": failed,
                   "records_written": written, "hpatches_sequences": len(exported)},
        "failures": sinks.failure_summary(failures),
        "failure_rate": failed / planned["images"] if planned["images"] else 0.0,
        "timings": {stage: round(sum(t for s, t in timings if s == stage), 3) for stage, _ in timings},
    }
    sinks.write_json(os.path.join(out, sinks.STATS), stats)
    return stats


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
    opts.add_output_flags(p, name="kp2d_pairs", max_failure_rate=0.01)
    return p


def config_from_args(args) -> PairsConfig:
    if args.pairs_per_image < 0:
        raise SystemExit("--pairs_per_image must be >= 0")
    if args.pairs_per_image == 0 and not args.hpatches_out:
        raise SystemExit("--pairs_per_image 0 makes nothing without --hpatches_out")
    for size in (args.image_size, args.hpatches_size or args.image_size):
        if min(size) < 2:
            raise SystemExit(f"image sizes must be at least 2x2, got {size[0]}x{size[1]}")
    if not 0 <= args.max_angle <= 180:
        raise SystemExit("--max_angle must be in [0, 180] degrees")
    config = PairsConfig(
        input_dir=args.input_dir, recursive=args.recursive, image_size=tuple(args.image_size),
        pairs_per_image=args.pairs_per_image, patch_ratio=args.patch_ratio,
        perspective_amplitude=args.perspective_amplitude, scaling_amplitude=args.scaling_amplitude,
        max_angle=args.max_angle, photometric=args.photometric, hpatches_out=args.hpatches_out,
        hpatches_size=tuple(args.hpatches_size) if args.hpatches_size else (), format=args.format,
        output_dir=args.output_dir, name=args.name, num_shards=args.num_shards, seed=args.seed,
        splits=tuple(args.splits), preview=args.preview, max_failure_rate=args.max_failure_rate)
    try:
        config.params  # noqa: B018 (validates the sampler's constants)
    except ValueError as e:
        raise SystemExit(f"bad homography parameters: {e}") from None
    return config


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    args, pipeline_options = opts.parse(build_parser(), argv)
    config = config_from_args(args)
    start = time.time()
    root = demo_photos.demo_photo_dir() if config.input_dir == DEMO else config.input_dir
    try:
        rels = photos.list_images(root, config.recursive)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rels:
        print(f"error: {root}: no .jpg/.jpeg/.png photos found"
              f"{'' if config.recursive else ' (sub-folders need --recursive)'}", file=sys.stderr)
        return 2
    names = sequence_names(rels)
    tasks = [PhotoTask(r, os.path.join(root, *r.split("/")), assign_split(config, r), names[r]) for r in rels]
    pairs_per_split = {name: 0 for name, _ in config.splits}
    for t in tasks:
        pairs_per_split[t.split] += config.pairs_per_image
    w, h = config.image_size
    shards = {s: (config.num_shards or sinks.auto_num_shards(n, w * h * 3 * 1.2)) for s, n in pairs_per_split.items()}
    planned = {"images": len(tasks), "pairs": sum(pairs_per_split.values())}
    if "://" not in config.output_dir:
        os.makedirs(config.output_dir, exist_ok=True)
    if config.hpatches_out:
        os.makedirs(config.hpatches_out, exist_ok=True)
    LOG.info("making %d pairs from %d photos in %s into %s", planned["pairs"], planned["images"], root,
             config.output_dir)

    p = beam.Pipeline(options=pipeline_options)
    made = (p | "ListPhotos" >> beam.Create(tasks)
            | "Reshuffle" >> beam.Reshuffle()
            | "MakePairs" >> beam.ParDo(MakePairs(config)).with_outputs("failed", "timing", "exported", main="pairs"))
    shard_infos = made.pairs | "WriteShards" >> sinks.WriteShards(config.output_dir, config.name, config.format,
                                                                   shards)
    _ = made.failed | "WriteDeadLetters" >> sinks.WriteDeadLetters(config.output_dir)
    _ = (p | "Once" >> beam.Create([None])
         | "WriteMetadata" >> beam.Map(
             write_metadata, config, argv, beam.pvalue.AsList(shard_infos), beam.pvalue.AsList(made.failed),
             beam.pvalue.AsList(made.timing), beam.pvalue.AsList(made.exported), planned))
    p.run().wait_until_finish()
    return report.finish(
        config.output_dir, config.max_failure_rate, config.preview, start,
        counts=lambda c: f"   photos {c['images']}  pairs planned {c['pairs_planned']}  written {c['records_written']}",
        extra=lambda c: [f"   hpatches {c['hpatches_sequences']} sequences in {config.hpatches_out}"]
        if config.hpatches_out else [])


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import gen_homography_pairs  # noqa: PLW0406
    sys.exit(gen_homography_pairs.run())
