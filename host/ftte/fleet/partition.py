"""Splitting a data set across boards: IID or label-skewed by a Dirichlet(alpha) draw.

Pure functions of (labels, parts, seed): the same arguments give the same split, every sample
goes to exactly one board, and every board gets at least `min_size` samples.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("iid", "dirichlet")


def iid(labels: np.ndarray, parts: int, seed: int = 0) -> list[np.ndarray]:
    """A seeded shuffle cut into `parts` near-equal pieces (sizes differ by at most one)."""
    _check(len(labels), parts, 1)
    order = np.random.default_rng(seed).permutation(len(labels))
    return [np.sort(piece) for piece in np.array_split(order, parts)]


def dirichlet(labels: np.ndarray, parts: int, alpha: float, seed: int = 0, min_size: int = 1,
              attempts: int = 100) -> list[np.ndarray]:
    """Label skew as in Hsu et al. (2019): for every class c, proportions q_c ~ Dir(alpha * 1)
    over the boards, and the samples of class c are dealt out in those proportions. Small alpha
    (0.1) gives boards that see one or two classes; large alpha (100) approaches IID.
    Draws again (same seeded generator) until every board has `min_size` samples."""
    labels = np.asarray(labels)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"dirichlet alpha must be > 0, got {alpha}")
    _check(len(labels), parts, min_size)
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        pieces: list[list[np.ndarray]] = [[] for _ in range(parts)]
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            cuts = (np.cumsum(rng.dirichlet(np.full(parts, alpha))) * len(members)).astype(int)[:-1]
            for board, share in enumerate(np.split(members, cuts)):
                pieces[board].append(share)
        split = [np.sort(np.concatenate(p)) for p in pieces]
        if min(len(p) for p in split) >= min_size:
            return split
    raise ValueError(f"no Dirichlet(alpha={alpha}) split of {len(labels)} samples gives all {parts} boards "
                     f"{min_size}+ samples in {attempts} draws; raise alpha or use fewer boards")


def partition(labels: np.ndarray, parts: int, scheme: str = "iid", alpha: float = 0.5, seed: int = 0,
              min_size: int = 1) -> list[np.ndarray]:
    """Sample indices per board, by scheme name ('iid' or 'dirichlet')."""
    if scheme == "iid":
        return iid(labels, parts, seed)
    if scheme == "dirichlet":
        return dirichlet(labels, parts, alpha, seed, min_size)
    raise ValueError(f"partition must be one of {SCHEMES}, got {scheme!r}")


def _check(samples: int, parts: int, min_size: int) -> None:
    if parts < 1:
        raise ValueError(f"need at least one board, got {parts}")
    if samples < parts * max(min_size, 1):
        raise ValueError(f"{samples} samples cannot give {parts} boards {max(min_size, 1)}+ samples each")
