"""Walking shards: TFRecord framing and CRCs (every length, the data of the records checked in
full), LMDB entries; the sample of records checked in full per shard."""
import os

from schemas import tfrecord
from schemas.dataset import lmdb
from schemas.dataset.validation.framing import sample_counts, walk_lmdb, walk_tfrecord
from schemas.dataset.validation.report import Check

RECORDS = [b"first", b"second record", b"", b"fourth" * 10]


def _tfrecord(tmp_path):
    path = str(tmp_path / "s.tfrecord")
    with open(path, "wb") as f:
        tfrecord.write_records(f, RECORDS)
    return path


def _walk(path, full=None):
    c = Check("framing")
    out = list(walk_tfrecord(path, full, c, "s.tfrecord"))
    return out, [d.message for d in c.defects]


def test_clean_file_yields_every_record(tmp_path):
    out, defects = _walk(_tfrecord(tmp_path))
    assert out == list(enumerate(RECORDS)) and defects == []


def test_records_past_full_are_framed_not_read(tmp_path):
    out, defects = _walk(_tfrecord(tmp_path), full=2)
    assert out == [(0, b"first"), (1, b"second record"), (2, None), (3, None)] and defects == []


def test_truncated_file(tmp_path):
    path = _tfrecord(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)
    out, defects = _walk(path)
    assert len(out) == 3 and defects == [f"truncated record 3 at byte {3 * 16 + 5 + 13} (length 60, 54 bytes left)"]
    out, defects = _walk(path, full=1)  # still found when the tail is only framed
    assert defects == [f"truncated record 3 at byte {3 * 16 + 5 + 13}"]


def test_flipped_data_byte_and_length_byte(tmp_path):
    path = _tfrecord(tmp_path)
    with open(path, "r+b") as f:
        f.seek(13)
        f.write(b"X")
    out, defects = _walk(path)
    assert out[0] == (0, b"") and out[1:] == list(enumerate(RECORDS))[1:]
    assert defects == ["bad data checksum in record 0 at byte 0"]
    with open(path, "r+b") as f:
        f.seek(16 + 5 + 1)
        f.write(b"\x7f")
    out, defects = _walk(path)
    assert len(out) == 1 and defects[-1] == ("bad length checksum at byte 21 (record 1); the rest of the file cannot "
                                             "be framed")


def test_lmdb_walk_in_key_order(tmp_path):
    path = str(tmp_path / "x.lmdb")
    env = lmdb.open_write(path)
    with env.begin(write=True) as txn:
        for k in (b"b", b"a", b"c"):
            txn.put(k, k * 2)
    env.close()
    c = Check("files")
    assert list(walk_lmdb(path, None, c, "x.lmdb")) == [(0, ("a", b"aa")), (1, ("b", b"bb")), (2, ("c", b"cc"))]
    assert list(walk_lmdb(path, 1, c, "x.lmdb")) == [(0, ("a", b"aa")), (1, None), (2, None)]
    assert c.defects == []
    assert list(walk_lmdb(str(tmp_path / "none"), None, c, "none")) == []
    assert c.defects[0].file == "none" and c.defects[0].message.startswith("not a readable LMDB environment")


def test_sample_counts_spread_over_the_shards():
    assert sample_counts([5, 7, 2], None) == [5, 7, 2]
    assert sample_counts([5, 7, 2], 6) == [2, 2, 2]
    assert sample_counts([1, 7, 7], 7) == [1, 3, 3]
    assert sample_counts([], 3) == []
