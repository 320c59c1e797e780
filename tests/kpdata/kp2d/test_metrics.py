"""KP2D's HPatches metrics (formats §4.4) against hand-computed answers and second computations."""
import math

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from kpdata.kp2d import metrics as km
SHAPE = (100, 80)  # W, H
SHIFT = np.array([[1.0, 0, 10], [0, 1, 0], [0, 0, 1]])


def det(points, scores=None, desc=None, dim=8, seed=0):
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    scores = np.arange(n, 0, -1, dtype=float) if scores is None else scores
    desc = np.random.default_rng(seed).random((n, dim)).astype(np.float32) if desc is None else desc
    return km.Detections(pts, scores, desc)


def test_repeatability_hand_computed_case():
    """H shifts x by 10. Image 1: A(20,20) B(50,40) C(95,40 -> 105: outside, dropped) D(30,60).
    Image 2: A'(30,20) exact, B'(61,40) 1 px off, D'(44,60) 4 px off, E(5,10 -> -5: dropped).
    N1 = N2 = 3; A, B correct both ways (D: 4 > 3 px) -> rep 4/6, loc (0 + 1 + 0 + 1) / 4."""
    d1 = det([[20, 20], [50, 40], [95, 40], [30, 60]])
    d2 = det([[30, 20], [61, 40], [44, 60], [5, 10]])
    r = km.repeatability(d1, d2, SHIFT, SHAPE)
    assert (r.n1, r.n2) == (3, 3)
    assert r.repeatability == pytest.approx(4 / 6)
    assert r.localization_error == pytest.approx(0.5)
    # top-k keeps the best scores: with k = 1 only A (score 4) and A' (score 4) remain
    r1 = km.repeatability(d1, d2, SHIFT, SHAPE, k=1)
    assert (r1.n1, r1.n2, r1.repeatability, r1.localization_error) == (1, 1, 1.0, 0.0)
    # the 3 px threshold is inclusive
    r3 = km.repeatability(det([[20, 20]]), det([[33, 20]]), SHIFT, SHAPE)
    assert r3.repeatability == 1.0 and r3.localization_error == 3.0
    # nothing to compare: undefined, not -1
    e = km.repeatability(det(np.zeros((0, 2))), det(np.zeros((0, 2))), SHIFT, SHAPE)
    assert math.isnan(e.repeatability) and math.isnan(e.localization_error)


def test_repeatability_agrees_with_a_kdtree_computation():
    rng = np.random.default_rng(1)
    w, h = 320, 240
    hm = np.array([[0.9, 0.05, 20], [-0.04, 1.1, -10], [1e-4, -2e-4, 1]])
    for trial in range(5):
        p1 = rng.uniform(0, [w, h], (400, 2))
        p2 = np.vstack([km.warp_points(p1[:250], hm) + rng.normal(0, 1.5, (250, 2)), rng.uniform(0, [w, h], (150, 2))])
        s1, s2 = rng.random(400), rng.random(400)
        r = km.repeatability(det(p1, s1), det(p2, s2), hm, (w, h), k=300)
        # second computation: explicit masks, argsort top-k, KD-tree nearest neighbours
        w1 = km.warp_points(p1, hm)
        m1 = (w1[:, 0] >= 0) & (w1[:, 0] < w) & (w1[:, 1] >= 0) & (w1[:, 1] < h)
        b2 = km.warp_points(p2, np.linalg.inv(hm))
        m2 = (b2[:, 0] >= 0) & (b2[:, 0] < w) & (b2[:, 1] >= 0) & (b2[:, 1] < h)
        i1 = np.flatnonzero(m1)[np.argsort(-s1[m1])[:300]]
        i2 = np.flatnonzero(m2)[np.argsort(-s2[m2])[:300]]
        a, b = w1[i1], p2[i2]
        da, _ = cKDTree(b).query(a)
        db, _ = cKDTree(a).query(b)
        ok_a, ok_b = da <= 3, db <= 3
        assert r.n1 == len(a) and r.n2 == len(b)
        assert r.repeatability == pytest.approx((ok_a.sum() + ok_b.sum()) / (len(a) + len(b)))
        assert r.localization_error == pytest.approx((da[ok_a].sum() + db[ok_b].sum()) / (ok_a.sum() + ok_b.sum()))


def test_matching_score_agrees_with_a_brute_force_loop():
    rng = np.random.default_rng(2)
    w, h = 320, 240
    hm = np.array([[1.05, 0.02, -8], [0.01, 0.95, 6], [5e-5, 0, 1]])
    p1 = rng.uniform(0, [w, h], (200, 2))
    desc1 = rng.random((200, 16)).astype(np.float32)
    p2 = km.warp_points(p1, hm) + rng.normal(0, 2.0, (200, 2))  # some beyond 3 px, some outside
    desc2 = (desc1 + rng.normal(0, 0.15, desc1.shape)).astype(np.float32)
    s1, s2 = rng.random(200), rng.random(200)
    d1, d2 = km.Detections(p1, s1, desc1), km.Detections(p2, s2, desc2)
    ms = km.matching_score(d1, d2, hm, (w, h), k=150)

    def one_way(pq, dq, sq, pt, dt, st, h_back):
        iq, it = np.argsort(-sq)[:150], np.argsort(-st)[:150]
        counted = correct = 0
        for a in iq:
            b = it[np.argmin([np.sum((dq[a] - dt[j]) ** 2) for j in it])]
            x = km.warp_points(pt[b:b + 1], h_back)[0]
            if 0 <= x[0] <= w - 1 and 0 <= x[1] <= h - 1:
                counted += 1
                correct += np.hypot(*(x - pq[a])) < 3
        return correct / max(counted, 1)

    ref = (one_way(p1, desc1, s1, p2, desc2, s2, np.linalg.inv(hm)) + one_way(p2, desc2, s2, p1, desc1, s1, hm)) / 2
    assert 0.2 < ms < 1.0
    assert ms == pytest.approx(ref)


def test_homography_correctness_known_corner_errors():
    rng = np.random.default_rng(3)
    w, h = 320, 240
    hm = np.array([[0.9, 0.1, 15], [-0.05, 1.0, 5], [1e-4, 1e-4, 1]])
    p1 = rng.uniform(20, [w - 20, h - 20], (150, 2))
    desc = rng.random((150, 32)).astype(np.float32)
    keep = np.all((km.warp_points(p1, hm) >= 0) & (km.warp_points(p1, hm) < [w, h]), axis=1)
    p1, desc = p1[keep], desc[keep]
    # exact correspondences: the estimate is H itself
    (c1, c3, c5), err = km.homography_correctness(det(p1, desc=desc), det(km.warp_points(p1, hm), desc=desc),
                                                  hm, (w, h))
    assert (c1, c3, c5) == (1.0, 1.0, 1.0) and err < 1e-3
    # correspondences of H shifted by 2 px: every corner is 2 px off -> C1 fails, C3 and C5 pass
    shifted = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]]) @ hm
    (c1, c3, c5), err = km.homography_correctness(det(p1, desc=desc), det(km.warp_points(p1, shifted), desc=desc),
                                                  hm, (w, h))
    assert err == pytest.approx(2.0, abs=1e-3) and (c1, c3, c5) == (0.0, 1.0, 1.0)
    # 4 px off -> only C5
    shifted = np.array([[1, 0, 0], [0, 1, 4.0], [0, 0, 1]]) @ hm
    (c1, c3, c5), _ = km.homography_correctness(det(p1, desc=desc), det(km.warp_points(p1, shifted), desc=desc),
                                                hm, (w, h))
    assert (c1, c3, c5) == (0.0, 0.0, 1.0)
    # fewer than 4 matches -> 0
    assert km.homography_correctness(det(p1[:3], desc=desc[:3]), det(km.warp_points(p1[:3], hm), desc=desc[:3]),
                                     hm, (w, h))[0] == (0.0, 0.0, 0.0)


def test_evaluate_pair_on_sift_is_in_range_and_summaries_skip_undefined():
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur((rng.random((240, 320)) * 255).astype(np.uint8), (0, 0), 2)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    hm = np.array([[1.0, 0.03, 5], [-0.02, 1.0, 3], [0, 0, 1]])
    warped = cv2.warpPerspective(img, hm, (320, 240))
    sift = cv2.SIFT_create()

    def run(x):
        kps, d = sift.detectAndCompute(x, None)
        return km.Detections([k.pt for k in kps], [k.response for k in kps], d)

    r = km.evaluate_pair(run(img), run(warped), hm, (320, 240))
    assert 0.5 < r["repeatability"] <= 1 and 0 <= r["localization_error"] <= 3
    assert r["c1"] <= r["c3"] <= r["c5"] == 1.0 and 0.3 < r["matching_score"] <= 1
    s = km.summarize([r, {**r, "repeatability": math.nan}])
    assert s["repeatability"] == r["repeatability"] and s["undefined_repeatability"] == 1 and s["pairs"] == 2


def test_detections_validate_shapes():
    with pytest.raises(ValueError, match="disagree on N"):
        km.Detections(np.zeros((3, 2)), np.zeros(2), np.zeros((3, 4)))
    d = km.Detections(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 128), np.float32))
    assert len(d) == 0 and km.matching_score(d, d, np.eye(3), SHAPE) == 0.0
    binary = det([[1, 1]], desc=np.zeros((1, 32), np.uint8))
    assert binary.descriptors.dtype == np.uint8
