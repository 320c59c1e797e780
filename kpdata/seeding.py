"""Per-work-unit random generators (DESIGN §4, Randomness).

There is no global RNG. A work unit keyed ``key`` in a run seeded ``seed`` draws from
``np.random.default_rng(np.random.SeedSequence([seed, *stable_hash(key)]))``, so the same seed
and inputs give the same numbers whatever the runner, the worker or the order of work.
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(key: str, words: int = 4) -> tuple[int, ...]:
    """``words`` unsigned 32-bit integers from the SHA-256 of ``key`` (UTF-8). Stable across
    processes and Python versions, unlike ``hash()``."""
    if not isinstance(key, str):
        raise TypeError(f"expected a str key, got {type(key).__name__}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") for i in range(words))


def rng_for(seed: int, key: str) -> np.random.Generator:
    """The generator of work unit ``key`` in a run seeded ``seed``."""
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *stable_hash(key)]))


def bucket(key: str, n: int) -> int:
    """A stable bucket in ``range(n)`` for ``key`` (used to assign records to shards)."""
    if n <= 0:
        raise ValueError(f"need n > 0 buckets, got {n}")
    return stable_hash(key, 2)[1] % n


def split_of(seed: int, splits, group: str) -> str:
    """The split of ``group`` (a model, a photo: everything drawn from it shares a split) in a
    run seeded ``seed``: one uniform draw from ``rng_for(seed, "split/" + group)`` against the
    cumulative fractions of ``splits`` ((name, fraction), ...)."""
    if len(splits) == 1:
        return splits[0][0]
    u = rng_for(seed, "split/" + group).random()
    acc = 0.0
    for name, frac in splits:
        acc += frac
        if u < acc:
            return name
    return splits[-1][0]
