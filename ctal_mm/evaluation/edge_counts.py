"""Per-image edge counts of the BSDS benchmark, compiled with numba.

For each threshold t the prediction ``pred >= t`` is thinned (the two-subiteration thinning of
Guo and Hall that the BSDS benchmark and pyEdgeEval use, ``bwmorph(..., 'thin', inf)``) and its
pixels are matched one-to-one to the ground-truth edge pixels lying within ``max_dist`` x the
image diagonal. The benchmark solves that matching as a min-cost assignment (CSA) on a graph
with randomly drawn outlier edges, which can leave a few pairs unmatched, different ones on
each run. ``matching='bsds'`` (the default) draws that graph the same way, from a seed (so
the counts are deterministic), and solves the assignment exactly, starting from the maximum
matching (Hopcroft-Karp) of the pixels that have a partner in reach; ``'maximum'`` keeps
that exact maximum matching, an upper bound of the benchmark's counts.

Where pyEdgeEval's time went (one core, 512 x 512, 99 thresholds, NMS; see docs/benchmarks.md):
the CSA assignment, about 0.1 s per threshold with ~1,500 predicted and ~3,000 true edge pixels
(0.02 s of it the set-up over the whole image even for one pixel), i.e. 80% of the total; the
numpy thinning over the whole image, 20%; the NMS (run once per image), under 1%. This module
replaces the first two and reuses pyEdgeEval's NMS, whose C code is the fast part.

Everything here is numpy + numba (no torch), so worker processes stay light.
"""

from typing import Dict, Sequence

import numba
import numpy as np

from ctal_mm.datasets.morphology import NEIGHBOURS, removal_tables

COUNT_NAMES = ('matched_gt', 'gt', 'matched_pred', 'pred')
MATCHINGS = ('bsds', 'maximum')
# the benchmark's matchEdgeMaps: each node's number of random outlier edges, and the cost
# of its perfect-match overlay in outlier edges (its weights ow and ow * multiplier)
OUTLIER_DEGREE = 6
OVERLAY_COST = 100

# The Guo-Hall deletion tables and neighbour order are those of the PASCAL edge maps' thinning
# (ctal_mm/datasets/morphology.py); only the stopping rule differs, see _thin_in_place.
DELETE_FIRST, DELETE_SECOND = removal_tables()
_DY = np.array([d[0] for d in NEIGHBOURS], np.int64)
_DX = np.array([d[1] for d in NEIGHBOURS], np.int64)


@numba.njit(cache=True, nogil=True)
def _thin_in_place(img, ys, xs, count, delete_first, delete_second, dy, dx):
    """Thin the padded uint8 image ``img`` whose on pixels are ``(ys, xs)[:count]``.

    Each subiteration decides every deletion on the image as it was before it (a parallel
    step), as the lookup-table implementations do; thinning stops at the first subiteration
    that deletes nothing (as MATLAB's ``bwmorph`` of the BSDS benchmark; the dataset's ``thin``
    stops after a whole iteration without change, as scikit-image's, which the reference uses).
    Returns the number of pixels left, compacted to the front.
    """
    dead = np.empty(count, np.int64)
    while True:
        for sub in range(2):
            table = delete_first if sub == 0 else delete_second
            n_dead = 0
            for i in range(count):
                y, x = ys[i], xs[i]
                code = 0
                for k in range(8):
                    if img[y + dy[k], x + dx[k]]:
                        code |= 1 << k
                if table[code]:
                    dead[n_dead] = i
                    n_dead += 1
            if n_dead == 0:
                return count
            for j in range(n_dead):
                i = dead[j]
                img[ys[i], xs[i]] = 0
            kept = 0
            for i in range(count):
                if img[ys[i], xs[i]]:
                    ys[kept] = ys[i]
                    xs[kept] = xs[i]
                    kept += 1
            count = kept


def thin_edges(mask: np.ndarray) -> np.ndarray:
    """The BSDS thinning of a binary map (same output as pyEdgeEval's ``binary_thin``)."""
    mask = np.asarray(mask) != 0
    if mask.ndim != 2:
        raise ValueError(f'thin_edges needs a 2-D map, got shape {mask.shape}')
    img = np.pad(mask, 1).astype(np.uint8)
    ys, xs = np.nonzero(img)
    _thin_in_place(
        img,
        ys.astype(np.int64),
        xs.astype(np.int64),
        len(ys),
        DELETE_FIRST,
        DELETE_SECOND,
        _DY,
        _DX,
    )
    return img[1:-1, 1:-1].astype(bool)


def match_offsets(max_dist_px: float) -> np.ndarray:
    """All integer offsets (dy, dx) with dy^2 + dx^2 <= max_dist_px^2."""
    r = int(np.ceil(max_dist_px))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = (dy**2 + dx**2) <= max_dist_px**2
    return np.stack([dy[keep], dx[keep]], 1).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _augment_to_maximum(
    n_left, indptr, indices, allowed, blocked, match_left, match_right
):
    """Grow the matching ``match_left`` / ``match_right`` of a bipartite graph in CSR form
    to a maximum one (Hopcroft-Karp), through the edges ``e`` with ``allowed[e]`` whose
    right node is not ``blocked``. Returns its size."""
    size = 0
    for u in range(n_left):
        if match_left[u] >= 0:
            size += 1
    for u in range(n_left):  # greedy start: most nodes are matched here
        if match_left[u] >= 0:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if allowed[e] and not blocked[v] and match_right[v] < 0:
                match_left[u] = v
                match_right[v] = u
                size += 1
                break
    inf = n_left + 1
    dist = np.empty(n_left, np.int64)
    queue = np.empty(n_left, np.int64)
    cursor = np.empty(n_left, np.int64)
    stack = np.empty(n_left + 1, np.int64)
    via = np.empty(n_left + 1, np.int64)
    while True:
        head = tail = 0
        for u in range(n_left):
            if match_left[u] < 0:
                dist[u] = 0
                queue[tail] = u
                tail += 1
            else:
                dist[u] = inf
        found = False
        while head < tail:
            u = queue[head]
            head += 1
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                if not allowed[e] or blocked[v]:
                    continue
                w = match_right[v]
                if w < 0:
                    found = True
                elif dist[w] == inf:
                    dist[w] = dist[u] + 1
                    queue[tail] = w
                    tail += 1
        if not found:
            return size
        for u in range(n_left):
            cursor[u] = indptr[u]
        for root in range(n_left):
            if match_left[root] >= 0:
                continue
            top = 0
            stack[0] = root
            while top >= 0:
                x = stack[top]
                if cursor[x] == indptr[x + 1]:
                    dist[x] = inf  # a dead end for the rest of this phase
                    top -= 1
                    continue
                e = cursor[x]
                cursor[x] += 1
                v = indices[e]
                if not allowed[e] or blocked[v]:
                    continue
                w = match_right[v]
                if w < 0:
                    via[top] = v
                    for level in range(top + 1):
                        match_left[stack[level]] = via[level]
                        match_right[via[level]] = stack[level]
                    size += 1
                    break
                if dist[w] == dist[x] + 1:
                    via[top] = v
                    top += 1
                    stack[top] = w


@numba.njit(cache=True, nogil=True)
def _real_graph(img, ys, xs, count, gt_ys, gt_xs, node, offsets):
    """The pairs within reach between the gt pixels and the on pixels of ``img``, as CSR
    from every gt pixel (in order) to the predicted pixels that have a partner (numbered as
    found). ``img`` is padded by 1; ``node`` is an image-sized int64 scratch array of -1
    (restored on return). Returns (indptr, indices, number of predicted nodes)."""
    height, width = node.shape
    for i in range(count):
        node[ys[i] - 1, xs[i] - 1] = -2  # on, not yet a graph node
    n_gt = len(gt_ys)
    indptr = np.zeros(n_gt + 1, np.int64)
    cap = 1024
    indices = np.empty(cap, np.int64)
    n_edges = 0
    n_right = 0
    for g in range(n_gt):
        gy, gx = gt_ys[g], gt_xs[g]
        for k in range(len(offsets)):
            y = gy + offsets[k, 0]
            x = gx + offsets[k, 1]
            if y < 0 or y >= height or x < 0 or x >= width:
                continue
            v = node[y, x]
            if v == -1:
                continue
            if v == -2:
                v = n_right
                node[y, x] = v
                n_right += 1
            if n_edges == cap:
                cap *= 2
                grown = np.empty(cap, np.int64)
                grown[:n_edges] = indices[:n_edges]
                indices = grown
            indices[n_edges] = v
            n_edges += 1
        indptr[g + 1] = n_edges
    for i in range(count):
        node[ys[i] - 1, xs[i] - 1] = -1
    return indptr, indices[:n_edges], n_right


@numba.njit(cache=True, nogil=True)
def _k_of_n(k, n, out):
    """``k`` distinct random integers of [0, n) into ``out[:k]`` (k <= n)."""
    for a in range(k):
        while True:
            v = np.random.randint(0, n)
            fresh = True
            for b in range(a):
                if out[b] == v:
                    fresh = False
                    break
            if fresh:
                out[a] = v
                break


@numba.njit(cache=True, inline='always')
def _edge_cost(u, v, n1, n2, overlay_cost):
    """Cost of the edge between left node ``u`` and right node ``v`` (see
    :func:`_bsds_match_size` for the numbering)."""
    if u < n2:  # a gt node: to a predicted node (real) or its outliers O2
        if v < n1:
            return 0
        return overlay_cost if v - n1 == u else 1
    if v < n1:  # an outlier O1 to a predicted node
        return overlay_cost if v == u - n2 else 1
    return 1


@numba.njit(cache=True, nogil=True)
def _bsds_match_size(
    n_gt, indptr, indices, n1, match_gt, degree, overlay_cost
):
    """Real pairs in the BSDS assignment (``matchEdgeMaps`` of the benchmark's
    correspondPixels) of the pixels that have a partner in reach.

    The benchmark solves a min-cost perfect assignment on an augmented graph: the n1
    predicted and n2 gt nodes, one outlier node per node of the other side, each real node
    joined to ``degree`` randomly drawn outlier nodes of its side, every node of the larger
    outlier side to ``degree`` random nodes of the smaller, and a costly diagonal ("perfect
    match overlay") that keeps it feasible. A real pair saves one outlier edge, so the
    optimum keeps as many real pairs as the sparse outlier graph lets it complete. That
    graph is drawn here the same way; costs are 0 per real pair (the benchmark's distances,
    at most 1/100 of an outlier edge, only order equal-size solutions), 1 per outlier edge
    and ``overlay_cost`` per overlay edge (100, as the benchmark's). It is solved exactly
    from the maximum matching ``match_gt`` (gt -> pred over the CSR, -1 = free): completed
    through outlier edges first, then by successive shortest augmenting paths, each of
    which may give up real pairs.
    """
    gid = np.full(n_gt, -1, np.int64)
    n2 = 0
    for g in range(n_gt):
        if indptr[g + 1] > indptr[g]:
            gid[g] = n2
            n2 += 1
    d1 = max(0, min(degree, n1 - 1))
    d2 = max(0, min(degree, n2 - 1))
    d3 = min(degree, min(n1, n2))
    nmin, nmax = min(n1, n2), max(n1, n2)
    n = n1 + n2
    # left nodes: gt 0..n2-1, pred-side outliers O1 n2..n-1;
    # right nodes: pred 0..n1-1, gt-side outliers O2 n1..n-1
    m = len(indices) + d1 * n1 + d2 * n2 + d3 * nmax + n
    src = np.empty(m, np.int64)
    dst = np.empty(m, np.int64)
    cost = np.empty(m, np.int64)
    e = 0
    for g in range(n_gt):
        for a in range(indptr[g], indptr[g + 1]):
            src[e], dst[e], cost[e] = gid[g], indices[a], 0
            e += 1
    pick = np.empty(max(degree, 1), np.int64)
    for x in range(n1):  # each predicted node to d1 outliers O1, not its own
        _k_of_n(d1, n1 - 1, pick)
        for a in range(d1):
            j = pick[a] + (pick[a] >= x)
            src[e], dst[e], cost[e] = n2 + j, x, 1
            e += 1
    for j in range(n2):  # each gt node to d2 outliers O2, not its own
        _k_of_n(d2, n2 - 1, pick)
        for a in range(d2):
            i = pick[a] + (pick[a] >= j)
            src[e], dst[e], cost[e] = j, n1 + i, 1
            e += 1
    for i in range(nmax):  # outlier to outlier, from the larger side
        _k_of_n(d3, nmin, pick)
        for a in range(d3):
            if n1 < n2:  # O2 i to O1 pick[a]
                src[e], dst[e], cost[e] = n2 + pick[a], n1 + i, 1
            else:  # O1 i to O2 pick[a]
                src[e], dst[e], cost[e] = n2 + i, n1 + pick[a], 1
            e += 1
    for x in range(n1):  # the overlay: every node to its own outlier
        src[e], dst[e], cost[e] = n2 + x, x, overlay_cost
        e += 1
    for j in range(n2):
        src[e], dst[e], cost[e] = j, n1 + j, overlay_cost
        e += 1
    # CSR over the left nodes
    ptr = np.zeros(n + 1, np.int64)
    for a in range(m):
        ptr[src[a] + 1] += 1
    for u in range(n):
        ptr[u + 1] += ptr[u]
    fill = ptr[:-1].copy()
    adj = np.empty(m, np.int64)
    adj_cost = np.empty(m, np.int64)
    for a in range(m):
        u = src[a]
        adj[fill[u]] = dst[a]
        adj_cost[fill[u]] = cost[a]
        fill[u] += 1
    ml = np.full(n, -1, np.int64)
    mr = np.full(n, -1, np.int64)
    blocked = np.zeros(n, np.bool_)
    real = 0
    for g in range(n_gt):
        if match_gt[g] >= 0:
            ml[gid[g]] = match_gt[g]
            mr[match_gt[g]] = gid[g]
            blocked[match_gt[g]] = True
            real += 1
    # 1) complete through outlier edges, leaving the real pairs as they are
    cheap = adj_cost < overlay_cost
    size = _augment_to_maximum(n, ptr, adj, cheap, blocked, ml, mr)
    if size == n:
        return real
    # 2) successive shortest augmenting paths (Bellman-Ford queue: the reversed matched
    #    edges cost minus their cost); the matching stays of least cost for its size
    big = np.int64(1) << 60
    dist_l = np.empty(n, np.int64)
    dist_r = np.empty(n, np.int64)
    parent = np.empty(
        n, np.int64
    )  # right node -> the left node it was reached from
    queued = np.zeros(n, np.bool_)
    queue = np.empty(n + 1, np.int64)  # circular
    while size < n:
        head = tail = 0
        for u in range(n):
            dist_l[u] = big
            dist_r[u] = big
            if ml[u] < 0:
                dist_l[u] = 0
                queue[tail] = u
                tail += 1
                queued[u] = True
        while head != tail:
            u = queue[head]
            head = (head + 1) % (n + 1)
            queued[u] = False
            for a in range(ptr[u], ptr[u + 1]):
                v = adj[a]
                if ml[u] == v:
                    continue
                d = dist_l[u] + adj_cost[a]
                if d < dist_r[v]:
                    dist_r[v] = d
                    parent[v] = u
                    w = mr[v]
                    if w >= 0:
                        back = _edge_cost(w, v, n1, n2, overlay_cost)
                        if d - back < dist_l[w]:
                            dist_l[w] = d - back
                            if not queued[w]:
                                queue[tail] = w
                                tail = (tail + 1) % (n + 1)
                                queued[w] = True
        best, end = big, -1
        for v in range(n):
            if mr[v] < 0 and dist_r[v] < best:
                best, end = dist_r[v], v
        v = end
        while True:  # flip the path
            u = parent[v]
            previous = ml[u]
            ml[u] = v
            mr[v] = u
            if previous < 0:
                break
            v = previous
        size += 1
    real = 0
    for u in range(n2):
        if 0 <= ml[u] < n1:
            real += 1
    return real


@numba.njit(cache=True, nogil=True)
def _counts_over_thresholds(
    values,
    order,
    thresholds,
    height,
    width,
    thin,
    gt_ys,
    gt_xs,
    offsets,
    delete_first,
    delete_second,
    dy,
    dx,
    bsds,
    degree,
    seed,
):
    """counts[:, i] for thresholds[i]; ``order`` sorts the flat ``values`` descending."""
    np.random.seed(
        seed
    )  # numba's generator: the outlier edges of the BSDS graph
    n_thr = len(thresholds)
    counts = np.zeros((4, n_thr), np.int64)
    img = np.zeros((height + 2, width + 2), np.uint8)
    node = np.full((height, width), -1, np.int64)
    ys = np.empty(len(order), np.int64)
    xs = np.empty(len(order), np.int64)
    n_gt = len(gt_ys)
    for i in range(n_thr):
        t = thresholds[i]
        count = 0
        while count < len(order) and values[order[count]] >= t:
            count += 1
        for j in range(count):
            p = order[j]
            ys[j] = p // width + 1
            xs[j] = p % width + 1
            img[ys[j], xs[j]] = 1
        if thin:
            count = _thin_in_place(
                img, ys, xs, count, delete_first, delete_second, dy, dx
            )
        counts[1, i] = n_gt
        counts[3, i] = count
        if n_gt > 0 and count > 0:
            indptr, indices, n_pred = _real_graph(
                img, ys, xs, count, gt_ys, gt_xs, node, offsets
            )
            matched = 0
            if len(indices) > 0:
                match_gt = np.full(n_gt, -1, np.int64)
                matched = _augment_to_maximum(
                    n_gt,
                    indptr,
                    indices,
                    np.ones(len(indices), np.bool_),
                    np.zeros(n_pred, np.bool_),
                    match_gt,
                    np.full(n_pred, -1, np.int64),
                )
                if bsds:
                    matched = _bsds_match_size(
                        n_gt,
                        indptr,
                        indices,
                        n_pred,
                        match_gt,
                        degree,
                        OVERLAY_COST,
                    )
            counts[0, i] = matched
            counts[2, i] = matched
        for j in range(count):
            img[ys[j], xs[j]] = 0
    return counts


def edge_counts(
    prob: np.ndarray,
    gt: np.ndarray,
    thresholds: Sequence[float],
    max_dist: float = 0.0075,
    nms: bool = False,
    thin: bool = True,
    matching: str = 'bsds',
    seed: int = 0,
) -> np.ndarray:
    """BSDS counts of one image at every threshold.

    Args:
        prob: H x W edge strength in [0, 1] (float) or 0..255 (uint8, divided by 255).
        gt: H x W ground-truth edge map (non-zero = edge).
        thresholds: increasing or not; a pixel is on at t when its strength is >= t.
        max_dist: matching radius as a fraction of the image diagonal.
        nms: first apply the edge NMS of the field's pipelines (pyEdgeEval's ``fast_nms``,
            Dollar's edgesNms: r=1, s=5, m=1.01).
        thin: thin each binarised map before matching (the benchmark does).
        matching: ``'bsds'``: the benchmark's assignment, whose random sparse outlier
            graph can leave a few pairs unmatched (drawn here with ``seed``: deterministic);
            ``'maximum'``: the exact maximum one-to-one matching (an upper bound of it).
        seed: seed of the outlier edges drawn for ``'bsds'``.

    Returns:
        int64 array (4, len(thresholds)): matched gt pixels, gt pixels, matched predicted
        pixels, predicted pixels (after thinning); the rows of :data:`COUNT_NAMES`.
    """
    if matching not in MATCHINGS:
        raise ValueError(
            f'edge_counts: matching={matching!r}; choose one of {MATCHINGS} '
            "('bsds' scores as the benchmark does)."
        )
    prob = np.asarray(prob)
    gt = np.asarray(gt)
    if prob.ndim != 2 or prob.shape != gt.shape:
        raise ValueError(
            f'edge_counts needs two H x W maps of one size; got prediction {prob.shape} '
            f'and ground truth {gt.shape}.'
        )
    if prob.dtype == np.uint8:
        prob = prob / 255.0
    prob = prob.astype(np.float64)
    if nms:
        from pyEdgeEval.preprocess import fast_nms

        prob = fast_nms(prob, r=1, s=5, m=1.01, half_prec=False)
    height, width = prob.shape
    thresholds = np.asarray(thresholds, np.float64).reshape(-1)
    values = prob.reshape(-1)
    # only pixels that pass the lowest threshold can ever be on
    candidates = np.flatnonzero(values >= thresholds.min(initial=np.inf))
    order = candidates[np.argsort(-values[candidates], kind='stable')]
    gt_ys, gt_xs = np.nonzero(gt)
    diagonal = float(np.hypot(height, width))
    return _counts_over_thresholds(
        values,
        order.astype(np.int64),
        thresholds,
        height,
        width,
        thin,
        gt_ys.astype(np.int64),
        gt_xs.astype(np.int64),
        match_offsets(max_dist * diagonal),
        DELETE_FIRST,
        DELETE_SECOND,
        _DY,
        _DX,
        matching == 'bsds',
        OUTLIER_DEGREE,
        int(seed),
    )


def edge_scores(
    counts: Sequence[np.ndarray], thresholds: Sequence[float]
) -> Dict[str, float]:
    """The BSDS benchmark's scores of per-image counts, as pyEdgeEval computes them.

    ``counts``: one 4 x T array per image (:func:`edge_counts`), T = ``len(thresholds)``
    (increasing). Returns, in % except the threshold:

    * ``odsF`` (optimal dataset scale): the maximum F of the split's pooled curve, with
      recall and precision interpolated linearly between neighbouring thresholds (101 steps
      each, pyEdgeEval's ``interpolated_max_scores``); ``ods_threshold``, ``ods_recall``,
      ``ods_precision`` at that point.
    * ``oisF`` (optimal image scale): every image at its own best threshold (first maximum of
      its F), matched and total pixels pooled; ``ois_recall``, ``ois_precision``.
    * ``AP``: sum over r = 0, 0.01, ..., 0.99 of the highest pooled precision at recall >= r,
      divided by 101 (pyEdgeEval's definition: 100 points over 101, so a perfect curve gives
      99.01).
    * ``AUC``: pyEdgeEval's ``area_pr``: precision interpolated at recall 0, 0.01, ..., 0.99
      (points of distinct recall; 0 outside the measured recalls), summed x 0.01.
    """
    thresholds = np.asarray(thresholds, np.float64).reshape(-1)
    counts = [np.asarray(c, np.float64) for c in counts]
    for i, c in enumerate(counts):
        if c.shape != (4, len(thresholds)):
            raise ValueError(
                f'edge_scores: the counts of image {i} have shape {c.shape}; '
                f'expected (4, {len(thresholds)}), one column per threshold.'
            )
    names = ('odsF', 'ods_threshold', 'ods_recall', 'ods_precision')
    names += ('oisF', 'ois_recall', 'ois_precision', 'AP', 'AUC')
    if not counts:
        return dict.fromkeys(names, 0.0)
    rec, prec = recall_precision(np.sum(counts, axis=0))
    ods = interpolated_max_f(thresholds, rec, prec)
    best = []
    for c in counts:
        r, p = recall_precision(c)
        best.append(c[:, int(np.argmax(f_measure(p, r)))])
    ois_r, ois_p = recall_precision(np.sum(best, axis=0))
    ap = 0.0
    for r in np.arange(0, 1, 0.01):  # summed in pyEdgeEval's order
        ap = ap + np.max(prec[rec >= r], initial=0) / 101
    distinct, first = np.unique(rec, return_index=True)
    auc = 0.0
    if len(distinct) > 1:
        auc = np.interp(
            np.arange(0, 1, 0.01), distinct, prec[first], left=0, right=0
        ).sum()
        auc *= 0.01
    values = (ods[3], ods[0], ods[1], ods[2])
    values += (f_measure(ois_p, ois_r), ois_r, ois_p, ap, auc)
    return {
        k: float(v) * (1 if k == 'ods_threshold' else 100)
        for k, v in zip(names, values)
    }


def interpolated_max_f(thresholds, rec, prec):
    """(threshold, recall, precision, F) at the maximum F of the curve through the points,
    recall and precision interpolated linearly in 101 steps between neighbouring thresholds;
    the first maximum in the order pyEdgeEval's loop visits them."""
    thresholds, rec, prec = (
        np.asarray(a, np.float64) for a in (thresholds, rec, prec)
    )
    d = np.linspace(0, 1, num=101)[None]
    t = np.concatenate(
        [
            thresholds[:1],
            (
                thresholds[1:, None] * d + thresholds[:-1, None] * (1 - d)
            ).ravel(),
        ]
    )
    r = np.concatenate(
        [rec[:1], (rec[1:, None] * d + rec[:-1, None] * (1 - d)).ravel()]
    )
    p = np.concatenate(
        [prec[:1], (prec[1:, None] * d + prec[:-1, None] * (1 - d)).ravel()]
    )
    f = f_measure(p, r)
    i = int(np.argmax(f))
    return t[i], r[i], p[i], f[i]


def recall_precision(c):
    """Recall and precision at each threshold of counts ``c`` (4 x T); 0 where there is
    nothing to divide by (no ground truth, no prediction), as the benchmark has it."""
    matched_gt, gt, matched_pred, pred = np.asarray(c, np.float64)
    return matched_gt / (gt + (gt == 0)), matched_pred / (pred + (pred == 0))


def f_measure(prec, rec):
    """Harmonic mean of precision and recall; 0 where both are 0."""
    total = prec + rec
    return 2.0 * prec * rec / (total + (total == 0))


def _load_map(path: str, kind: str) -> np.ndarray:
    if path.endswith('.npy'):
        data = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as image:
            data = np.asarray(image)
    data = np.squeeze(data)
    if data.ndim != 2:
        raise ValueError(
            f'{path}: the {kind} has shape {data.shape}; expected one H x W channel '
            '(a grayscale PNG or a 2-D .npy).'
        )
    return data


def read_edge_prediction(path: str) -> np.ndarray:
    """A saved edge strength map as float in [0, 1]: an 8-bit PNG (0..255), a 16-bit PNG
    (0..65535) or a .npy of probabilities."""
    data = _load_map(path, 'prediction')
    if data.dtype == np.uint8:
        data = data / 255.0
    elif data.dtype.kind in 'ui':
        data = data / 65535.0
    data = data.astype(np.float64)
    if not np.isfinite(data).all() or data.min() < 0 or data.max() > 1:
        raise ValueError(
            f'{path}: the prediction has values outside [0, 1] (or not finite); save '
            'PNGs as 0..255 (or 16-bit 0..65535) strengths and .npy files as probabilities.'
        )
    return data


def read_edge_ground_truth(path: str, ignore_value=None) -> np.ndarray:
    """A saved edge ground truth as bool: edge where > 0 (0/1 and 0/255 maps alike), except
    pixels equal to ``ignore_value``, which count as non-edge (as the online metric does)."""
    data = _load_map(path, 'ground truth')
    gt = data > 0
    if ignore_value is not None:
        gt &= data != ignore_value
    return gt


def edge_counts_of_files(
    pred_path: str,
    gt_path: str,
    thresholds: Sequence[float],
    max_dist: float,
    nms: bool,
    ignore_value=None,
) -> np.ndarray:
    """:func:`edge_counts` of a saved prediction and its ground truth; the prediction is
    quantised to 8 bits first, as the online metric does."""
    pred = read_edge_prediction(pred_path)
    gt = read_edge_ground_truth(gt_path, ignore_value)
    if pred.shape != gt.shape:
        raise ValueError(
            f'{pred_path} is {pred.shape} but its ground truth {gt_path} is {gt.shape}; '
            'save predictions at the ground-truth size.'
        )
    pred_u8 = np.round(pred * 255).astype(np.uint8)
    return edge_counts(pred_u8, gt, thresholds, max_dist, nms=nms)
