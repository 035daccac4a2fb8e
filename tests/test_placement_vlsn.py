"""Cyclic-exchange VLSN on the exact placement model's item space (sieveopt.placement.vlsn)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sieveopt.placement.exact import objective
from sieveopt.placement.local_search import polish
from sieveopt.placement.vlsn import CANDIDATES, _cycles, vlsn


def test_cyclic_exchange_reaches_the_optimum_moves_and_swaps_cannot():
    """Three items on three GPUs with one slot each (no moves): the identity costs 5 and every
    swap 9, the rotation item g -> GPU g+1 costs 1 (the optimum). Best-improvement moves and
    swaps stop at 5; the cyclic exchange finds the rotation."""
    c = np.array([[5.0, 1.0, 9.0],
                  [9.0, 5.0, 1.0],
                  [1.0, 9.0, 5.0]])[None]                        # cost[t=0, item, GPU]
    start, none = np.arange(3), np.full(3, -1)
    best = min(objective(c, np.array(p)) for p in itertools.permutations(range(3)))
    assert best == 1.0
    _, v_pol, _ = polish(c, start, 1, none)
    assert v_pol == 5.0                                          # 2-GPU neighbourhood: stuck
    a, v, st = vlsn(c, start, 1, none)
    assert v == best and np.array_equal(a, [1, 2, 0]) and st["moves"] >= 1


def _brute_min_cycle(C: np.ndarray, ngpu: np.ndarray, nitem: np.ndarray, cnt: np.ndarray, cap: int) -> float:
    """Most negative subset-disjoint cycle by enumeration (arcs as in vlsn._valid, no twins)."""
    M = C.shape[0]

    def ok(u: int, w: int) -> bool:
        if nitem[u] < 0:
            return nitem[w] >= 0
        return not (nitem[w] < 0 and cnt[ngpu[w]] >= cap)

    best = 0.0
    for k in range(2, len(set(ngpu.tolist())) + 1):
        for cyc in itertools.permutations(range(M), k):
            if cyc[0] != min(cyc) or len({int(ngpu[x]) for x in cyc}) < k:
                continue
            if all(ok(cyc[q], cyc[(q + 1) % k]) for q in range(k)):
                best = min(best, sum(C[cyc[q], cyc[(q + 1) % k]] for q in range(k)))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_exact_cycle_search_finds_the_most_negative_cycle(seed):
    rng = np.random.default_rng(seed)
    G, cap = 3, 3
    a = np.array([0, 0, 1, 1, 1, 2])                             # GPU 2 has free slots, GPU 1 none
    n = a.size
    nitem = np.r_[np.arange(n), -np.ones(G, dtype=np.int64)].astype(np.int64)
    ngpu = np.r_[a, np.arange(G)].astype(np.int64)
    M = nitem.size
    C = rng.normal(0.0, 1.0, (M, M))
    C[n:, n:] = np.inf
    cnt = np.bincount(a, minlength=G).astype(np.int64)
    cval = np.empty(CANDIDATES)
    cS = np.empty(CANDIDATES, dtype=np.int64)
    cseq = np.empty((CANDIDATES, G + 1), dtype=np.int64)
    clen = np.empty(CANDIDATES, dtype=np.int64)
    d = np.empty((1 << G, M))
    pr = np.empty((1 << G, M), dtype=np.int64)
    nc = _cycles(C, np.argsort(C, axis=1), nitem, ngpu, a, np.full(n, -1), cnt, cap, G, cval, cS, cseq, clen,
                 d, pr, True)
    brute = _brute_min_cycle(C, ngpu, nitem, cnt, cap)
    assert (nc > 0) == (brute < 0)
    if nc:
        q = int(np.argmin(cval[:nc]))
        assert cval[q] == pytest.approx(brute, abs=1e-9)
        seq = cseq[q, :clen[q]]                                  # the traced cycle has that cost
        assert sum(C[seq[i], seq[(i + 1) % seq.size]] for i in range(seq.size)) == pytest.approx(cval[q])
        assert len(set(ngpu[seq].tolist())) == seq.size          # subset-disjoint


@pytest.mark.parametrize("levels", [1, 3])
def test_vlsn_valid_seeded_never_worse(levels):
    rng = np.random.default_rng(7)
    T, n, G, cap = 6, 14, 3, 6
    cost = rng.uniform(0, 10, size=(T, n, G, levels))
    start = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1, -1])   # free slots: paths allowed
    twin = np.full(n, -1)
    twin[11], twin[12] = 12, 11                                  # one expert's two replicas
    runs = [vlsn(cost, start, cap, twin, seed=3, kicks=6) for _ in range(2)]
    (a, v, st), (b, vb, _) = runs
    assert np.array_equal(a, b) and v == vb                      # seeded: reproducible
    assert st["kicks"] == 6 and st["moves"] >= 1
    assert v <= objective(cost, start) + 1e-9
    assert v == pytest.approx(objective(cost, a), rel=1e-12)     # independent re-evaluation
    assert np.bincount(a[a >= 0], minlength=G).max() <= cap and a[11] != a[12] and a[13] == -1
    assert sorted(np.flatnonzero(a >= 0)) == sorted(np.flatnonzero(start >= 0))
