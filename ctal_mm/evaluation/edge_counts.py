"""Per-image edge counts of the BSDS benchmark, compiled with numba.

For each threshold t the prediction ``pred >= t`` is thinned (the two-subiteration thinning of
Guo and Hall that the BSDS benchmark and pyEdgeEval use, ``bwmorph(..., 'thin', inf)``) and its
pixels are matched one-to-one to the ground-truth edge pixels lying within ``max_dist`` x the
image diagonal. The benchmark solves that matching as a min-cost assignment (CSA) whose
outlier edges are drawn at random; its cardinality, the only thing the counts use, is the
maximum matching's up to that randomness. Here the maximum matching is computed exactly
(Hopcroft-Karp) on the graph of the pixels that have a partner in reach, so the counts are
deterministic.

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
def _maximum_matching(n_left, n_right, indptr, indices):
    """Size of a maximum matching of a bipartite graph in CSR form (Hopcroft-Karp)."""
    match_left = np.full(n_left, -1, np.int64)
    match_right = np.full(n_right, -1, np.int64)
    size = 0
    for u in range(n_left):  # greedy start: most nodes are matched here
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if match_right[v] < 0:
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
    while size < min(n_left, n_right):
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
                w = match_right[indices[e]]
                if w < 0:
                    found = True
                elif dist[w] == inf:
                    dist[w] = dist[u] + 1
                    queue[tail] = w
                    tail += 1
        if not found:
            break
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
                v = indices[cursor[x]]
                cursor[x] += 1
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
    return size


@numba.njit(cache=True, nogil=True)
def _match_size(img, ys, xs, count, gt_ys, gt_xs, node, offsets):
    """Maximum one-to-one matching between the on pixels of ``img`` and the gt pixels.

    ``img`` is padded by 1; ``node`` is an image-sized int64 scratch array of -1 (restored on
    return). Only predicted pixels within reach of a gt pixel enter the graph.
    """
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
    if n_edges == 0:
        return 0
    return _maximum_matching(n_gt, n_right, indptr, indices[:n_edges])


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
):
    """counts[:, i] for thresholds[i]; ``order`` sorts the flat ``values`` descending."""
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
            matched = _match_size(
                img, ys, xs, count, gt_ys, gt_xs, node, offsets
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

    Returns:
        int64 array (4, len(thresholds)): matched gt pixels, gt pixels, matched predicted
        pixels, predicted pixels (after thinning); the rows of :data:`COUNT_NAMES`.
    """
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
    )


def edge_scores(counts: Sequence[np.ndarray]) -> Dict[str, float]:
    """ODS-F, OIS-F and AP (in %) of per-image counts (each 4 x T, :func:`edge_counts`)."""
    counts = [np.asarray(c, np.float64) for c in counts]
    if not counts:
        return dict(odsF=0.0, oisF=0.0, AP=0.0)
    total = np.sum(counts, axis=0)
    rec, prec = recall_precision(total)
    f = f_measure(prec, rec)
    best = []
    for c in counts:  # OIS: each image at its own best threshold
        r, p = recall_precision(c)
        best.append(c[:, int(np.argmax(f_measure(p, r)))])
    ois_r, ois_p = recall_precision(np.sum(best, axis=0))
    # AP: area under the precision-recall curve, recall increasing
    order = np.argsort(rec, kind='stable')
    ap = float(np.trapezoid(prec[order], rec[order])) if len(rec) > 1 else 0.0
    return dict(
        odsF=float(f.max()) * 100,
        oisF=float(f_measure(ois_p, ois_r)) * 100,
        AP=ap * 100,
    )


def recall_precision(c):
    """Recall and precision at each threshold of counts ``c`` (4 x T)."""
    matched_gt, gt, matched_pred, pred = np.asarray(c, np.float64)
    rec = matched_gt / np.maximum(gt, 1)
    # no prediction: precision 1 only where there was nothing to find
    prec = np.where(
        pred > 0, matched_pred / np.maximum(pred, 1), 1.0 * (gt == 0)
    )
    return rec, prec


def f_measure(prec, rec):
    return 2 * prec * rec / np.maximum(prec + rec, 1e-12)


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
