"""Records per second of the numpy reader (``schemas.dataset.reader.read``) against the TF reader
of ``training/`` on the same dataset, both decoding every field (PNGs included) of every record.

    python bench/reader.py DIR [--split train] [--records 2000] [--repeat 3]

The TF reader runs in a subprocess (this script with ``--tf``; TensorFlow never shares a process
with the rest): ``training.readers.records`` + the parser generated from the record's schema +
``decode_png`` of every PNG field, ``AUTOTUNE`` parallel maps, iterated as numpy; Click-Here instances
(all three layouts) through their training layout readers, which make the instance fields training
uses (key, image, keypoint pixel and class, viewpoint label, chessboard map): the numpy reader is
asked for the same fields there. The
numpy reader runs in one thread, as a PyTorch ``DataLoader`` worker would. Each side reads the
first ``--records`` records (instances for Click-Here) ``--repeat`` times and reports the best pass,
so file caching is the same for both; the TF pipeline is built once and gets one more pass (the first
traces its functions).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schemas.dataset import reader  # noqa: E402

INSTANCE_FIELDS = ["key", "image", "keypoint_pixel", "keypoint_class", "viewpoint_label", "chessboard_dt_map"]


def _best_rate(make_iter, limit: int, repeat: int) -> tuple[float, int]:
    """(records/s of the fastest of ``repeat`` passes over up to ``limit`` records, records per pass)."""
    best, n = 0.0, 0
    for _ in range(repeat):
        t, n = time.perf_counter(), 0
        for _rec in make_iter():
            n += 1
            if n >= limit:
                break
        dt = time.perf_counter() - t
        best = max(best, n / dt if dt > 0 else 0.0)
    return best, n


def numpy_rate(data: str, split: str | None, limit: int, repeat: int) -> tuple[float, int]:
    """Every field of every record; Click-Here instances: the fields the TF layout readers make."""
    kind = reader.record_kind(data)
    fields = INSTANCE_FIELDS if kind in ("clickhere_view", "clickhere_instance", "caffe_datum") else None
    return _best_rate(lambda: reader.read(data, split, fields=fields), limit, repeat)


def tf_rate(data: str, split: str | None, limit: int, repeat: int) -> tuple[float, int]:
    """The TF reader's records/s (run with ``--tf``, in its own process)."""
    import tensorflow as tf

    from schemas.features import PNGImage
    from training import layouts, readers, spec

    source = spec.load_source(data)
    split = split or sorted(source.splits)[0]
    if source.record in (layouts.CAFFE_RECORD, "clickhere_view", "clickhere_instance"):
        layout = layouts.get(source.record)
        ds = layout.reader(layout, source, split, INSTANCE_FIELDS, False, 0, False, limit).prefetch(readers.AUTOTUNE)
        return _best_rate(ds.as_numpy_iterator, limit, repeat + 1)  # built once; the first pass warms up
    schema = spec.find_schema(source.record)
    first = next(iter(readers.records(source, split, shuffle=False, seed=0, repeat=False)))
    present = set(tf.train.Example.FromString(first.numpy()).features.feature)
    parse = readers.make_parser(schema, [f.name for f in schema.fields if f.name in present])
    pngs = [n for n in parse.plan if isinstance(schema.field_map[n], PNGImage)]

    def decode(r):
        return {**r, **{n: readers.decode_png(parse.plan[n], r[n]) for n in pngs}}

    ds = readers.records(source, split, shuffle=False, seed=0, repeat=False).take(limit)
    ds = ds.map(readers.plain(parse), num_parallel_calls=readers.AUTOTUNE, deterministic=True)
    ds = ds.map(readers.plain(decode), num_parallel_calls=readers.AUTOTUNE, deterministic=True)
    return _best_rate(ds.prefetch(readers.AUTOTUNE).as_numpy_iterator, limit, repeat + 1)  # the first pass warms up


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a dataset folder written by kpdata")
    p.add_argument("--split", default=None, help="(default: train, else the first split by name)")
    p.add_argument("--records", type=int, default=2000, help="records per pass (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="passes; the best counts (default: %(default)s)")
    p.add_argument("--tf", action="store_true", help=argparse.SUPPRESS)  # the TF side, in its own process
    a = p.parse_args(argv)
    splits = [s.split for s in reader.shards(a.data)]
    split = a.split or ("train" if "train" in splits else splits[0]) or None
    if a.tf:
        rate, n = tf_rate(a.data, split, a.records, a.repeat)
        print(json.dumps({"rate": rate, "records": n}))
        return 0
    kind = reader.record_kind(a.data)
    np_rate, n = numpy_rate(a.data, split, a.records, a.repeat)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, os.path.abspath(__file__), a.data, "--tf", "--records", str(a.records),
                        "--repeat", str(a.repeat), *(["--split", split] if split else [])],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"numpy reader: {np_rate:.1f} records/s ({n} {kind} records of {split})")
        print(f"TF reader failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        return 1
    tf = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{a.data}: {kind}, split {split}, {n} records per pass, best of {a.repeat}")
    print(f"  numpy reader (1 thread):        {np_rate:9.1f} records/s")
    print(f"  TF reader (AUTOTUNE, {os.cpu_count()} CPUs):  {tf['rate']:9.1f} records/s ({tf['records']} records)")
    print(f"  numpy / TF: {np_rate / tf['rate']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
