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


class SplitError(ValueError):
    """A ``--splits`` request the groups cannot fill (a split of non-zero fraction left empty)."""


def split_quotas(splits, n: int, what: str = "model", strict: bool = True) -> list[int]:
    """How many of ``n`` groups each of ``splits`` ((name, fraction), ...) gets: ``fraction * n``
    rounded by largest remainder (ties to the earlier split), then every split of non-zero
    fraction given at least one group, taken from the split furthest above its exact share.
    With fewer groups than such splits: SplitError naming the first split left empty, or (not
    ``strict``: splits the user did not ask for) the largest-remainder counts as they are."""
    fracs = [float(f) for _, f in splits]
    counts = [int(f * n + 1e-9) for f in fracs]
    for i in sorted(range(len(fracs)), key=lambda i: (-(fracs[i] * n - counts[i]), i))[:max(0, n - sum(counts))]:
        counts[i] += 1
    need = sum(1 for f in fracs if f > 0)
    if n < need and not strict:
        return counts
    for i, (name, f) in enumerate(splits):
        if f > 0 and counts[i] == 0:
            if n < need:
                raise SplitError(f"--splits: split {name!r} would get no {what} of {n} ({need} splits of non-zero "
                                 f"fraction need at least {need} {what}s; add {what}s or drop the split)")
            spare = [j for j in range(len(counts)) if counts[j] > (1 if fracs[j] > 0 else 0)]
            donor = max(spare, key=lambda j: (counts[j] - fracs[j] * n, -j))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def assign_splits(seed: int, splits, groups, what: str = "model", strict: bool = True) -> dict[str, str]:
    """The split of every group (a model, a photo: everything drawn from it shares a split) of a
    run seeded ``seed``: {group: split name}.

    The groups are ordered by one seeded draw each (``rng_for(seed, "split/" + group)``) and cut
    into consecutive runs of :func:`split_quotas` groups, in the order of ``splits``: the counts
    honour the fractions as closely as the number of groups allows, and adding a group moves few
    others (a group's place in the order does not depend on the others; only the cuts shift).
    SplitError (naming the split) when a split of non-zero fraction would be empty (``strict``;
    see :func:`split_quotas`)."""
    groups = sorted(set(groups))
    counts = split_quotas(splits, len(groups), what, strict)
    order = sorted(groups, key=lambda g: (rng_for(seed, "split/" + g).random(), g))
    out, start = {}, 0
    for (name, _), c in zip(splits, counts):
        for g in order[start:start + c]:
            out[g] = name
        start += c
    return out
