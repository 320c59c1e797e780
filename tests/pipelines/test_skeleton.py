"""The parts every pipeline shares (no GL, no Beam run): output flags from the configuration
dataclasses, the layout registry, the render DoFn's dead-letter path, the metadata writer."""
import dataclasses
import json
import os
import types

import cv2
import numpy as np
import pytest
from apache_beam.pvalue import TaggedOutput

from kpdata.errors import InputError
from pipelines import gen_homography_pairs, gen_tfrecords, keypointnet, options, render_shapenet, render_stereo
from pipelines import shapenet_views, sinks, skeleton
from pipelines.workers import RendererDoFn, failure_stage
from schemas.dataset import names, records, tfds
from schemas.view import VIEW


@pytest.mark.parametrize("module, config", [
    (render_shapenet, shapenet_views.RenderConfig), (render_stereo, render_stereo.StereoConfig),
    (gen_tfrecords, gen_tfrecords.GenConfig), (gen_homography_pairs, gen_homography_pairs.PairsConfig)])
def test_output_flags_default_to_the_configuration_defaults(module, config):
    args, _ = options.parse(module.build_parser(), [])
    fields = options.output_fields(config, args)
    assert fields == {k: v for k, v in dataclasses.asdict(config()).items() if k in options.OUTPUT_HELP}
    assert set(fields) == {f.name for f in dataclasses.fields(config)} & set(options.OUTPUT_HELP)


def test_keypointnet_config_keeps_its_own_output_defaults():
    cfg = keypointnet.PairConfig()
    assert (cfg.name, cfg.image_size, cfg.splits, cfg.visibility_tolerance) == (
        keypointnet.DEFAULT_NAME, keypointnet.DEFAULT_IMAGE_SIZE, keypointnet.DEFAULT_SPLITS, 0.05)
    assert not hasattr(cfg, "format") and not hasattr(cfg, "num_shards")


def test_layouts_register_once_and_list_the_default_first():
    assert [layout.name for layout in shapenet_views.layouts()] == ["view", "clickhere", "keypointnet"]
    with pytest.raises(ValueError, match="registered twice"):
        shapenet_views.register(shapenet_views.LAYOUTS["view"])


class _Loader(RendererDoFn):
    """A render DoFn whose load fails as told; render yields the task's name (no renderer needed)."""

    def __init__(self, error=None, stage=None):
        super().__init__((8, 6), backend="fake")
        self.error, self.stage_name = error, stage

    def load(self, task):
        if self.error and self.stage_name:
            with failure_stage(self.stage_name):
                raise self.error
        if self.error:
            raise self.error
        return task.model.key

    def render(self, task, loaded):
        yield loaded


TASK = types.SimpleNamespace(model=types.SimpleNamespace(key="02958343/abc", model_dir="/data/02958343/abc"))


@pytest.mark.parametrize("error, stage, want_stage, want_path", [
    (InputError("empty_mesh", "no faces", "/data/x.obj"), None, "load", "/data/x.obj"),
    (InputError("unknown_class", "not an R4CNN class"), "label", "label", "/data/02958343/abc")])
def test_render_dofn_sends_bad_input_to_the_dead_letters(error, stage, want_stage, want_path):
    dofn = _Loader(error, stage)
    assert (dofn.image_size, dofn.backend, dofn.renderer) == ((8, 6), "fake", None)
    (out,) = list(dofn.process(TASK))
    assert isinstance(out, TaggedOutput) and out.tag == "failed"
    assert out.value == sinks.failure_record("02958343/abc", want_stage, error.error, error.message, want_path)


def test_render_dofn_yields_the_outputs_then_the_timing():
    main, timing = list(_Loader().process(TASK))
    assert main == "02958343/abc"
    assert timing.tag == "timing" and timing.value[0] == "render" and timing.value[1] >= 0


def test_write_dataset_files_writes_info_features_and_stats(tmp_path):
    cfg = shapenet_views.RenderConfig(output_dir=str(tmp_path), seed=3)
    failures = [sinks.failure_record("a/b", "load", "empty_mesh", "no faces", "/x")]
    shard = names.shard_name("shapenet_views", "train", 0, 1)
    splits = {"train": {"format": "tfrecord", "num_examples": 2, "num_bytes": 40,
                        "shards": [{"file": shard, "examples": 2, "bytes": 40}]}}
    stats = skeleton.write_dataset_files(
        cfg, cfg, "python -m x --seed 3", info={"record": "view", "splits": splits}, counts={"models": 2},
        failures=failures, failure_rate=skeleton.rate(1, 2),
        timings=[("render", 1.25), ("render", 0.5), ("encode", 0.1)], schema=VIEW)
    info = json.loads((tmp_path / names.KPDATA_INFO).read_text())
    assert info["config"] == json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert (info["name"], info["seed"], info["record"], info["command"]) == ("shapenet_views", 3, "view", "python -m x --seed 3")
    assert info["features"] == json.loads(json.dumps(VIEW.describe())) and info["splits"] == splits
    assert records.load_info(str(tmp_path)) == info
    assert json.loads((tmp_path / names.FEATURES).read_text()) == tfds.features_json(VIEW)
    tfds_info = json.loads((tmp_path / names.DATASET_INFO).read_text())
    assert (tfds_info["name"], tfds_info["version"], tfds_info["fileFormat"]) == ("shapenet_views", "1.0.0", "tfrecord")
    assert tfds_info["splits"] == [{"name": "train", "numBytes": "40", "shardLengths": ["2"],
                                    "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]
    assert json.loads((tmp_path / names.STATS).read_text()) == stats
    assert stats == {"counts": {"models": 2}, "failures": sinks.failure_summary(failures), "failure_rate": 0.5,
                     "timings": {"render": 1.75, "encode": 0.1}}
    assert skeleton.rate(3, 0) == 0.0
    lmdb_dir = tmp_path / "lmdb"  # LMDB splits: kpdata_info.json only
    cfg = shapenet_views.RenderConfig(output_dir=str(lmdb_dir), seed=3)
    lmdb_dir.mkdir()
    splits = {"train": {"format": "lmdb", "shards": [{"file": names.lmdb_name("shapenet_views", "train"),
                                                      "examples": 2, "bytes": 40}]}}
    skeleton.write_dataset_files(cfg, cfg, "c", info={"record": "view", "splits": splits}, counts={}, failures=[],
                                 failure_rate=0.0, timings=[], schema=VIEW)
    assert sorted(os.listdir(lmdb_dir)) == [names.KPDATA_INFO, names.STATS]


def test_a_split_the_inputs_cannot_fill_is_a_usage_error_naming_it(tmp_path, capsys):
    """Before anything is rendered or the folder is taken: exit 2, ``error: --splits: split ...``."""
    out = tmp_path / "v"
    assert render_shapenet.run(["--splits", "train=0.5,dev=0.25,test=0.25", "--synsets", "car", "--preview", "0",
                                "--output_dir", str(out)]) == 2
    assert "error: --splits: split 'test' would get no model of 2 (3 splits" in capsys.readouterr().err
    assert not out.exists()
    assert render_shapenet.run(["--layout", "keypointnet", "--splits", "train=0.5,dev=0.5", "--synsets", "motorbike",
                                "--preview", "0", "--output_dir", str(out)]) == 2
    assert "split 'dev' would get no model of 1" in capsys.readouterr().err
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((40, 50, 3), 90, np.uint8))
    assert gen_homography_pairs.run(["--input_dir", str(photos), "--splits", "train=0.5,test=0.5", "--preview", "0",
                                     "--output_dir", str(out)]) == 2
    assert "error: --splits: split 'test' would get no photo of 1 (2 splits" in capsys.readouterr().err
