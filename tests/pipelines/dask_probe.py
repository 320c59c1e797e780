"""The graph shape every pipeline uses, as a script for tests/pipelines/test_dask.py:
``Create(units) -> Reshuffle -> ParDo(one single-output DoFn with setup / teardown)``.

    python tests/pipelines/dask_probe.py OUT_DIR UNITS [--beam_defaults] [Beam flags]

Each processing of unit ``i`` writes its own ``OUT_DIR/unit-<i>-<random>.json`` with the Dask
worker's address and pid and the DoFn instance's setup id; each setup and teardown writes
``setup-<id>`` / ``teardown-<id>``. The options go through
:func:`pipelines.runners.prepare` unless ``--beam_defaults``. The DoFn is defined in ``__main__``,
so Dask ships it to the workers by value.
"""
import json
import os
import sys
import time
import uuid

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import runners


class RecordWorker(beam.DoFn):
    def __init__(self, out_dir: str, seconds: float):
        self.out_dir, self.seconds = out_dir, seconds
        self.setup_id = None

    def _touch(self, name: str, payload: dict) -> None:
        with open(os.path.join(self.out_dir, name), "x", encoding="utf-8") as f:
            json.dump(payload, f)

    def setup(self):
        self.setup_id = uuid.uuid4().hex
        self._touch(f"setup-{self.setup_id}", {"pid": os.getpid()})

    def process(self, unit):
        from distributed import get_worker
        time.sleep(self.seconds)  # a unit's work: long enough that an idle worker takes the next
        payload = {"unit": unit, "worker": get_worker().address, "pid": os.getpid(), "setup": self.setup_id}
        self._touch(f"unit-{unit}-{uuid.uuid4().hex}.json", payload)
        yield unit

    def teardown(self):
        self._touch(f"teardown-{self.setup_id}", {"pid": os.getpid()})


def main(argv: list[str]) -> None:
    out_dir, units, beam_args = argv[0], int(argv[1]), argv[2:]
    beam_defaults = "--beam_defaults" in beam_args
    beam_args = [a for a in beam_args if a != "--beam_defaults"]
    os.makedirs(out_dir, exist_ok=True)
    options = PipelineOptions(runners.normalize_beam_args(beam_args))
    if not beam_defaults:
        options = runners.prepare(options, units)
    p = beam.Pipeline(options=options)
    _ = (p | "Units" >> beam.Create(list(range(units))) | "Reshuffle" >> beam.Reshuffle()
         | "Work" >> beam.ParDo(RecordWorker(out_dir, 0.5)))
    runners.check_graph(p)
    print("state", p.run().wait_until_finish())


if __name__ == "__main__":
    main(sys.argv[1:])
