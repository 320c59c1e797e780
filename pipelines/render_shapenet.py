"""Render ShapeNet models (or the built-in demo set) into a dataset of keypoint-labelled views.

    python -m pipelines.render_shapenet [flags] [Beam flags]

One work unit per model (pipelines.stream): its views are rendered, encoded and streamed into the
model's part, then the parts are assembled into shards; failures go to errors/failures.jsonl and
the metadata is written last. A rerun of the same command resumes (pipelines.journal).
"""
from __future__ import annotations

import argparse

# The layouts register themselves with shapenet_views when imported.
from pipelines import clickhere, keypointnet, view  # noqa: F401
from pipelines import options as opts
from pipelines import shapenet_views, skeleton
from pipelines.shapenet_views import DEFAULT_LAYOUT, RenderConfig, assign_splits  # noqa: F401 (this command's API)
from pipelines.view import RenderViews  # noqa: F401 (this command's API)
from schemas.dataset import previews


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.render_shapenet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    layouts = shapenet_views.layouts()
    p.add_argument("--layout", choices=tuple(layout.name for layout in layouts), default=DEFAULT_LAYOUT,
                   help="what to write: 'view' records; 'clickhere': Click-Here / Render for CNN instances "
                        "(crops over backgrounds, keypoint maps, viewpoint labels); 'keypointnet': KeypointNet "
                        "view pairs (one .tfrecord per model, projection.txt, train/dev/test.txt, job.txt) "
                        "(default: %(default)s)")
    shapenet_views.add_flags(p)
    for layout in layouts:
        if layout.add_flags:
            layout.add_flags(p)
    return p


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    parser = build_parser()
    argv, args, pipeline_options = skeleton.parse(parser, argv)
    given = opts.given_flags(parser, argv)
    for layout in shapenet_views.layouts():
        wrong = sorted(set(layout.own_flags) & given)
        if wrong and args.layout != layout.name:
            parser.error(f"--layout {args.layout} does not take {', '.join('--' + w for w in wrong)} "
                         f"(flags of --layout {layout.name})")
    layout = shapenet_views.LAYOUTS[args.layout]
    rc = skeleton.execute(layout.steps, layout.config_from_args(parser, args, argv), pipeline_options, argv,
                          overwrite=args.overwrite)
    if rc in (0, 1) and args.preview > 0 and "://" not in args.output_dir:  # 1: written, too many failures
        plot = previews.write_viewpoint_plot(args.output_dir)
        if plot:
            print(f"   viewpoints  {plot}")
    return rc


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import render_shapenet, run_command  # noqa: PLW0406
    run_command(render_shapenet.run)
