"""schemas.dataset.lmdb: a truncated data.mdb is refused before a page past its end is touched
(reading one kills the process with SIGBUS, issue 14.4)."""
import os
import shutil

import pytest

from schemas.dataset import lmdb


def _env(path, n=2000):
    env = lmdb.open_write(path)
    with env.begin(write=True) as txn:
        for i in range(n):
            txn.put(f"{i:06d}".encode(), bytes([i % 256]) * 600)
    env.sync(True)
    env.close()


@pytest.mark.parametrize("keep", [0, 5000, 0.5, -4096])
def test_truncated_data_file_is_refused(tmp_path, keep):
    good = str(tmp_path / "good.lmdb")
    _env(good)
    assert sum(1 for _ in lmdb.items(good)) == 2000
    bad = str(tmp_path / "bad.lmdb")
    shutil.copytree(good, bad)
    data = os.path.join(bad, lmdb.DATA_FILE)
    size = os.path.getsize(data)
    cut = int(size * keep) if isinstance(keep, float) else (size + keep if keep < 0 else keep)
    with open(data, "r+b") as f:
        f.truncate(cut)
    with pytest.raises(lmdb.Error) as e:
        sum(1 for _ in lmdb.items(bad))
    assert bad in str(e.value)
    if cut >= 8192:  # past the two meta pages: the size check itself
        assert isinstance(e.value, lmdb.TruncatedError) and f"{cut} bytes" in str(e.value)


def test_missing_data_file(tmp_path):
    os.makedirs(tmp_path / "x.lmdb")
    with pytest.raises(lmdb.Error, match="no readable data.mdb"):
        lmdb.open_read(str(tmp_path / "x.lmdb"))
