"""Convert KeyPose-layout stereo sequences into KeyPose TFRecords (or LMDB), resized to one camera.

    python -m pipelines.gen_tfrecords [--input GLOB[,GLOB...] | --tfset FILE.pbtxt] [flags] [Beam flags]

As KeyPose's own ``gen_tfrecords``: every frame is cropped and resized to ``--image_size WxH_flF``
with each target's camera and keypoints updated; one Example per frame with exactly KeyPose's
features; 20 Examples per file (a file never mixes sequence folders); train files first, then val,
numbered ``0000.tfrecord``, ``0001.tfrecord``...; ``tfset.pbtxt`` and ``data_params.pbtxt`` beside
them. Bad frames go to errors/failures.jsonl, the rest are converted.

Work: one unit per record file (:mod:`pipelines.stream`): ConvertFrames converts its frames in
order, streamed into ``tfrecords/NNNN.tfrecord`` (or into a part, assembled into one LMDB
environment per split: ``tfrecords/<split>.lmdb``); failures go to errors/failures.jsonl, the
metadata is written last. A rerun resumes.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import fnmatch
import glob
import logging
import os
import time

import apache_beam as beam

from kpdata import keypose
from kpdata.demo import default_cache_dir
from kpdata.keypose import proto as kpp
from kpdata.errors import InputError
from pipelines import render_stereo, skeleton, sinks, stream
from pipelines import options as opts
from pipelines.options import DEMO, RecordOutputConfig
from schemas.keypose import KEYPOSE, make_keypose_record
from schemas.dataset.names import KEYPOSE_RECORDS_DIR as RECORDS_DIR, KEYPOSE_TFSET as TFSET
from schemas.dataset.names import KEYPOSE_TFSET_DEF as TFSET_DEF, keypose_record_file as record_file

LOG = logging.getLogger("kpdata.gen_tfrecords")
COMMAND = "pipelines.gen_tfrecords"


@dataclasses.dataclass(frozen=True)
class GenConfig(RecordOutputConfig):
    """Everything that decides the output; serialised into kpdata_info.json."""

    input: tuple = (DEMO,)
    tfset: str = ""
    data_root: str = "."
    val: tuple = ()
    exclude: tuple = ()
    image_size: str = "756x424_fl400"
    examples_per_file: int = 20
    output_dir: str = "kpdata_out/keypose_tfrecords"
    name: str = "keypose"
    preview: int = 8
    max_failure_rate: float = 0.0


@dataclasses.dataclass(frozen=True)
class FrameTask:
    """One frame to convert, with its split and output file."""

    key: str
    folder: str
    frame: str
    split: str
    file_index: int
    stereo: bool
    num_kp: int
    resx: int
    resy: int
    plan: keypose.ResizePlan


def folder_key(folder: str) -> str:
    """``<object>/<sequence>`` (the folder's last two path components)."""
    parts = os.path.normpath(os.path.abspath(folder)).split(os.sep)
    return "/".join(parts[-2:])


def _matches(folder: str, patterns) -> bool:
    path = os.path.normpath(os.path.abspath(folder))
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, "*/" + p.strip("/")) for p in patterns)


def _glob_dirs(pattern: str) -> list[str]:
    return sorted(os.path.normpath(d) for d in glob.glob(pattern) if os.path.isdir(d))


def select_folders(config: GenConfig, tfset=None) -> tuple[list[str], list[str]]:
    """(train folders, val folders), sorted. With a TfSet: globs of ``common_dir/<train|val|exclude>``
    (``common_dir`` relative to ``--data_root``), excluded folders removed from both, val folders
    from train (KeyPose's order). With ``--input`` globs: ``--exclude`` / ``--val`` patterns match a
    folder's path or its trailing components (``texture_5_pose_*``)."""
    if tfset is not None:
        common = os.path.join(config.data_root, tfset.common_dir)
        train = {d for p in tfset.train for d in _glob_dirs(os.path.join(common, p))}
        val = {d for p in tfset.val for d in _glob_dirs(os.path.join(common, p))}
        exc = {d for p in tfset.exclude for d in _glob_dirs(os.path.join(common, p))}
        return sorted(train - exc - val), sorted(val - exc)
    found = {d for p in config.input for d in _glob_dirs(p)}
    found = {d for d in found if not _matches(d, config.exclude)}
    val = {d for d in found if _matches(d, config.val)}
    return sorted(found - val), sorted(val)


def plan_frames(config: GenConfig, folders: list[tuple[str, str]], size: keypose.ImageSize):
    """Frame tasks, per-folder failures, per-folder data_params and the file list, in KeyPose's order:
    each folder's frames sorted and cut into files of ``examples_per_file``; file numbers run over
    the train folders, then the val folders."""
    tasks, failures, files, params = [], [], [], {}
    for folder, split in folders:
        fkey = folder_key(folder)
        try:
            dp = keypose.read_data_params(os.path.join(folder, keypose.DATA_PARAMS))
            frames = keypose.list_frames(folder)
        except InputError as e:
            failures.append(sinks.failure_record(fkey, "plan", e.error, e.message, e.path or folder))
            try:  # the frames of a folder that cannot be planned count as failed frames
                lost = max(1, len(keypose.list_frames(folder)))
            except InputError:
                lost = 1
            failures[-1]["frames"] = lost
            continue
        params[folder] = dp
        plan = keypose.resize_plan(dp.camera, size)
        stereo = keypose.is_stereo(folder)
        n = config.examples_per_file
        for start in range(0, len(frames), n):
            index = len(files)
            files.append((split, index, len(frames[start:start + n])))
            for frame in frames[start:start + n]:
                tasks.append(FrameTask(f"{fkey}/{frame}", folder, frame, split, index, stereo, dp.num_kp,
                                       dp.resx, dp.resy, plan))
    return tasks, failures, files, params


def convert_frame(task: FrameTask) -> bytes:
    """One frame -> serialized KEYPOSE Example (InputError for bad input)."""
    fr = keypose.load_frame(task.folder, task.frame, task.stereo, task.num_kp, task.resx, task.resy, task.plan)
    return KEYPOSE.encode(make_keypose_record(fr.img_l, fr.img_r, fr.targets_l, fr.targets_r))


class ConvertFrames(beam.DoFn):
    """FrameTask -> (file index or split, (key, bytes)); failures to the ``failed`` output."""

    stage = "convert"  # of the dead letters pipelines.stream.WriteUnits makes of what escapes

    def __init__(self, fmt: str):
        self.fmt = fmt

    def source(self, task: FrameTask) -> tuple[str, str]:
        return task.key, task.folder

    def process(self, task: FrameTask):
        t0 = time.perf_counter()
        try:
            data = convert_frame(task)
        except InputError as e:
            beam.metrics.Metrics.counter("gen_tfrecords", "frames_failed").inc()
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(task.key, "convert", e.error, e.message,
                                                                          e.path or task.folder))
            return
        beam.metrics.Metrics.counter("gen_tfrecords", "frames_converted").inc()
        group = task.file_index if self.fmt == "tfrecord" else task.split
        yield group, (task.key, data)
        yield beam.pvalue.TaggedOutput("timing", ("convert", time.perf_counter() - t0))


def frame_records(item: tuple) -> list[tuple[str, bytes]]:
    """ConvertFrames' ``(group, (key, bytes))`` output as records."""
    return [item[1]]


def write_metadata(_, config: GenConfig, command, planned: dict, failures, timings, shard_infos, tfset_def: str,
                   data_params: str) -> dict:
    """Writes tfset.pbtxt, data_params.pbtxt, tfset_def.pbtxt (the input set; protos passed as text),
    kpdata_info.json and stats.json (no TFDS files: KeyPose's record file names fit no TFDS template)."""
    out = config.output_dir
    rec_dir = os.path.join(out, RECORDS_DIR)
    os.makedirs(rec_dir, exist_ok=True)
    infos = sorted(shard_infos, key=lambda d: d["file"])  # 0000.tfrecord, ... or <split>.lmdb
    splits = sinks.splits_info([{"index": i, **d} for i, d in enumerate(infos)], config.format)
    tfset = kpp.new("TfSet")
    tfset.name = config.name
    tfset.train.extend(os.path.basename(s["file"]) for s in splits.get("train", {}).get("shards", []))
    tfset.val.extend(os.path.basename(s["file"]) for s in splits.get("val", {}).get("shards", []))
    keypose.write_text(os.path.join(rec_dir, TFSET), tfset)
    keypose.write_text(os.path.join(rec_dir, keypose.DATA_PARAMS), kpp.parse_text(data_params, "DataParams"))
    keypose.write_text(os.path.join(out, TFSET_DEF), kpp.parse_text(tfset_def, "TfSet"))
    written = sum(s["num_examples"] for s in splits.values())
    frames, lost = planned["frames"], planned["frames_in_failed_folders"]
    return skeleton.write_dataset_files(
        config, config, command, schema=KEYPOSE,
        info={"version": KEYPOSE.version, "record": KEYPOSE.name, "splits": splits, "folders": planned["folders"]},
        counts={"folders": len(planned["folders"]["train"]) + len(planned["folders"]["val"]),
                "folders_failed": planned["folders_failed"], "frames_planned": frames,
                "frames_in_failed_folders": lost, "records_written": written},
        failures=failures, failure_rate=skeleton.rate(frames + lost - written, frames + lost), timings=timings)


def _patterns(text: str) -> tuple:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.gen_tfrecords", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input")
    src.add_argument("--input", default=DEMO,
                     help="comma-separated globs of sequence folders (e.g. 'data/bottle_0/texture_*_pose_*'); "
                          "'demo' = the two demo cars rendered once by render_stereo into the kpdata cache "
                          "(default: %(default)s)")
    src.add_argument("--tfset", default="",
                     help="a KeyPose TfSet pbtxt (name, common_dir, train, val, exclude, image_size); replaces "
                          "--input/--val/--exclude/--name/--image_size (default: none)")
    src.add_argument("--data_root", default=".",
                     help="folder a TfSet's common_dir is relative to (default: %(default)s)")
    src.add_argument("--val", default="", help="comma-separated patterns of validation folders, e.g. "
                     "'texture_5_pose_*' (default: none)")
    src.add_argument("--exclude", default="", help="comma-separated patterns of folders to leave out (default: none)")
    p.add_argument("--image_size", default="756x424_fl400",
                   help="output size and focal length WxH_flF (default: %(default)s)")
    p.add_argument("--examples_per_file", type=int, default=20, help="Examples per TFRecord file (default: %(default)s)")
    opts.add_output_flags(p, GenConfig, output_dir="where tfrecords/ and metadata go", name="the TfSet name",
                          format="NNNN.tfrecord files, or one LMDB environment per split",
                          seed="recorded in the metadata; conversion draws nothing",
                          preview="left/right pairs drawn into preview.png; 0 = none",
                          max_failure_rate="exit non-zero when the fraction of frames not converted exceeds this")
    return p


def config_from_args(args) -> GenConfig:
    """The run's configuration (SystemExit on a bad value; a TfSet's name and image size replace the
    flags')."""
    name, image_size = args.name, args.image_size
    if args.tfset:
        try:
            tfset = keypose.read_tfset(args.tfset)
        except InputError as e:
            raise SystemExit(str(e)) from None
        name = tfset.name or name
        image_size = tfset.image_size or image_size
    try:
        keypose.ImageSize.parse(image_size)
    except ValueError as e:
        raise SystemExit(f"error: --image_size: {e}") from None
    if args.examples_per_file <= 0:
        raise SystemExit("error: --examples_per_file must be > 0")
    return GenConfig(
        input=_patterns(args.input) if not args.tfset else (), tfset=args.tfset, data_root=args.data_root,
        val=_patterns(args.val), exclude=_patterns(args.exclude), image_size=image_size,
        examples_per_file=args.examples_per_file, **{**opts.output_fields(GenConfig, args), "name": name})


def input_set(config: GenConfig):
    """The input set as a KeyPose TfSet: ``--tfset``'s, or one built from the flags."""
    if config.tfset:
        return keypose.read_tfset(config.tfset)
    tfset = kpp.new("TfSet")
    tfset.name, tfset.image_size = config.name, config.image_size
    tfset.train.extend(config.input)
    tfset.val.extend(config.val)
    tfset.exclude.extend(config.exclude)
    return tfset


def demo_input() -> str:
    """A small rendered stereo set (render_stereo's defaults), made once in the kpdata cache."""
    return render_stereo.cached_demo_sequences(default_cache_dir())


@dataclasses.dataclass(frozen=True)
class GenPlan(skeleton.Plan):
    files: list          # (split, file index, frames) per record file
    plan_failures: list  # failure records of the folders that cannot be planned
    tfset_def: str       # the input set, TfSet pbtxt text
    data_params: str     # the set's DataParams pbtxt text


def plan(config: GenConfig) -> GenPlan:
    """The folders (the demo set rendered first when asked for), their frames cut into record
    files, and the set's data_params."""
    tfset_def = input_set(config)
    if config.input == (DEMO,):
        config = dataclasses.replace(config, input=(os.path.join(demo_input(), "car_*", "texture_*_pose_*"),))
    size = keypose.ImageSize.parse(config.image_size)
    train, val = select_folders(config, tfset_def if config.tfset else None)
    if not train and not val:
        raise skeleton.NoInput(f"no sequence folders match {', '.join(config.input) or config.tfset}")
    folders = [(d, "train") for d in train] + [(d, "val") for d in val]
    tasks, plan_failures, files, params = plan_frames(config, folders, size)
    if not params:
        raise skeleton.NoInput("no folder has a readable data_params.pbtxt: "
                               + "; ".join(f["message"] for f in plan_failures))
    # KeyPose writes one data_params.pbtxt for the set: the ideal camera, num_kp and baseline of the
    # (last) folder. Folders that disagree on num_kp are reported.
    last = params[max(params)]
    data_params = size.data_params(last.num_kp, last.camera.baseline)
    kps = sorted({dp.num_kp for dp in params.values()})
    if len(kps) > 1:  # KeyPose's parser reads one num_kp for the whole set
        counts = ", ".join(f"{folder_key(d)}: {dp.num_kp}" for d, dp in sorted(params.items()))
        raise skeleton.NoInput(f"the folders disagree on num_kp ({counts}); a KeyPose set has one keypoint count, "
                               "convert them separately")
    planned = {"frames": len(tasks), "folders_failed": len(plan_failures),
               "frames_in_failed_folders": sum(f.pop("frames") for f in plan_failures),
               "folders": {"train": [folder_key(d) for d in train], "val": [folder_key(d) for d in val]}}
    return GenPlan(config, tasks, planned,
                   f"converting {len(tasks)} frames of {len(folders)} folders ({len(train)} train, {len(val)} val) "
                   f"to {config.image_size} in {config.output_dir}", files, plan_failures, kpp.to_text(tfset_def),
                   kpp.to_text(data_params))


def work(plan: GenPlan) -> skeleton.Work:
    """One unit per record file: written straight into ``tfrecords/NNNN.tfrecord`` (every planned
    file, even one whose frames all failed), or parts assembled into ``tfrecords/<split>.lmdb``."""
    config = plan.config
    tasks = collections.defaultdict(list)
    for task in plan.tasks:
        tasks[task.file_index].append(task)
    tfrecords = config.format == "tfrecord"
    units = [stream.Unit(record_file(index)[:-len(".tfrecord")], split, tuple(tasks[index]), frames,
                         final=f"{RECORDS_DIR}/{record_file(index)}" if tfrecords else "")
             for split, index, frames in plan.files]
    shards = []
    if not tfrecords:
        splits = {split: 1 for split, _, _ in plan.files}
        units = stream.assign_shards(units, splits)
        shards = stream.plan_shards(units, splits, "lmdb", lambda split, i, n: f"{RECORDS_DIR}/{split}.lmdb")
    return skeleton.Work(sorted(units, key=lambda u: u.key), ConvertFrames(config.format), frame_records, shards,
                         final_empty=True, args=(plan.tfset_def, plan.data_params),
                         plan_failures=tuple(plan.plan_failures), stage="convert", label="frames")


def summary(config: GenConfig) -> dict:
    return {"counts": lambda c: f"   folders {c['folders']}  frames planned {c['frames_planned']}  "
                                f"written {c['records_written']}",
            "extra": lambda c: [f"   KeyPose set {os.path.join(config.output_dir, RECORDS_DIR)} "
                                f"({TFSET}, {keypose.DATA_PARAMS})"]}


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata, summary=summary)


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    return skeleton.run(argv, build_parser(), config_from_args, STEPS, config_errors=(SystemExit,))


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import gen_tfrecords, run_command  # noqa: PLW0406
    run_command(gen_tfrecords.run)
