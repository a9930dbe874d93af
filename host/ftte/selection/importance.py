"""How much training each parameter group is worth: the importance selection maximises.

A parameter group is the unit selection can switch on: the bias of a weighted layer, or the
weight row of one output channel (the row a `channels` update trains). A group's importance is
the sum over its parameters of a per-parameter score, so the expected gain of training a set of
groups is the sum of their importances (additive by construction): what `select_by_importance`
maximises per byte. An SGD step w <- w - lr * g_b on a set S changes the loss of batch b by
-lr * sum_{i in S} g_{b,i}^2 + O(lr^2), and the expected loss by -lr * sum_{i in S} gbar_i^2 +
O(lr^2) (gbar: the expected gradient). Hence two scores per parameter:

    power:   E_b[g_{b,i}^2]  = gbar_i^2 + var_i / batch     (default; empirical Fisher at batch 1)
    signal:  gbar_i^2, estimated without bias               (needs data the model was not fitted to)

Two sources:

- `calibration_importance`: the host's calibration set, gradients measured through the C kernels
  (`Trainer.gradients` with every tensor trainable).
- `update_importance`: the boards' reported deltas, folded in as they arrive. A delta of
  `local_steps` SGD steps at rate `lr` is about -lr * (sum of the step gradients), so
  (delta / (lr * local_steps))^2 estimates gbar^2 on the board's data (plus the variance of a
  mean over local_steps * batch samples): the "signal" score, measured where it matters. Each
  covered group's score moves towards it by an exponential moving average; groups the board did
  not train keep their score. Against "power" scores this lowers the covered groups (it lacks
  most of the variance term), and more so as they converge: a reselection then moves towards
  the groups left out (ftte.selection.revisit).

Pure: numpy and the C kernels, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ftte.model import Model, UpdateSpec


@dataclass(frozen=True)
class Importance:
    """Per layer: one score per output channel's weight row (None for layers without weights),
    and the score of its bias (0.0 for layers without a bias or without weights)."""

    rows: tuple[np.ndarray | None, ...]
    bias: tuple[float, ...]

    @staticmethod
    def zeros(model: Model) -> "Importance":
        return Importance(tuple(np.zeros(layer.channels) if layer.has_weights else None for layer in model.layers),
                          tuple(0.0 for _ in model.layers))

    @staticmethod
    def from_squares(model: Model, squares: Sequence[tuple[np.ndarray | None, np.ndarray | None]]) -> "Importance":
        """Group sums of per-parameter scores given per layer as (weights [rows][row], bias)."""
        rows, bias = [], []
        for layer, (w, b) in zip(model.layers, squares):
            if not layer.has_weights:
                rows.append(None)
                bias.append(0.0)
                continue
            rows.append(np.zeros(layer.channels) if w is None else
                        np.asarray(w, np.float64).reshape(layer.channels, -1).sum(axis=1))
            bias.append(0.0 if b is None or layer.bias is None else float(np.sum(b, dtype=np.float64)))
        return Importance(tuple(rows), tuple(bias))

    def clipped(self) -> "Importance":
        """Negative group scores (noise in an unbiased estimate) set to 0."""
        return Importance(tuple(None if r is None else np.maximum(r, 0.0) for r in self.rows),
                          tuple(max(b, 0.0) for b in self.bias))

    def total(self) -> float:
        """The gain of training everything."""
        return float(sum(r.sum() for r in self.rows if r is not None) + sum(self.bias))

    def gain(self, spec: UpdateSpec) -> float:
        """The expected gain of training `spec`: the sum of the scores of the groups it trains."""
        total = 0.0
        for rows, bias, update in zip(self.rows, self.bias, spec.layers):
            if update.mode == "frozen" or rows is None:
                continue
            total += bias
            if update.mode == "full":
                total += float(rows.sum())
            elif update.mode == "channels":
                total += float(rows[list(update.channels)].sum())
        return total

    def channel_scores(self) -> list[np.ndarray | None]:
        """Per layer one score per output channel: the `importance` argument of
        ftte.selection.select_sparse_update."""
        return [None if r is None else r.copy() for r in self.rows]

    def as_dict(self) -> dict:
        return {"rows": [None if r is None else r.tolist() for r in self.rows], "bias": list(self.bias)}

    @staticmethod
    def from_dict(data: dict) -> "Importance":
        return Importance(tuple(None if r is None else np.asarray(r, np.float64) for r in data["rows"]),
                          tuple(float(b) for b in data["bias"]))


KINDS = ("power", "signal")


def calibration_importance(model: Model, x: np.ndarray, y: np.ndarray, batch: int = 1,
                           kind: str = "power") -> Importance:
    """Group scores from the gradients of the calibration set, measured by the C kernels
    (`Trainer.gradients` with every tensor trainable, on a copy of the model: `model` is left
    untouched) on K = len(x) // batch consecutive chunks of `batch` samples (a remainder is left
    out). With m and q the per-parameter mean over chunks of g and of g^2:

    - "power" (default): q summed per group, the mean squared batch gradient (with batch 1,
      the diagonal of the empirical Fisher information): how much a step moves the loss of the
      batch it was computed on. It stays informative on data the model was fitted to, which is
      what the host holds after pretraining.
    - "signal": (m^2 - (q - m^2) / (K - 1)) summed per group, then clipped at 0: an unbiased
      estimate of the squared expected gradient, the first-order decrease of the expected loss
      per unit step; needs K >= 2. Meaningful on held-out data only: on the samples the model
      was pretrained on the expected gradient is about 0 and so is almost every score.
    """
    from ftte.train import Trainer

    if kind not in KINDS:
        raise ValueError(f"importance kind must be one of {KINDS}, got {kind!r}")
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    if len(x) != len(y):
        raise ValueError(f"calibration needs as many labels as samples, got {len(x)} and {len(y)}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    chunks = len(x) // batch
    if chunks < (2 if kind == "signal" else 1):
        raise ValueError(f"{kind!r} importance needs at least {2 if kind == 'signal' else 1} chunks of {batch} "
                         f"samples, got {len(x)} samples")
    trainer = Trainer(model.copy(), UpdateSpec.full(model), batch=batch)
    mean: list[list[np.ndarray | None]] = [[None, None] for _ in model.layers]
    square: list[list[np.ndarray | None]] = [[None, None] for _ in model.layers]
    for start in range(0, chunks * batch, batch):
        grads = trainer.gradients(x[start:start + batch], y[start:start + batch])
        for index, pair in enumerate(grads):
            for k, g in enumerate(pair):
                if g is None:
                    continue
                g = g.astype(np.float64) / chunks
                mean[index][k] = g if mean[index][k] is None else mean[index][k] + g
                g2 = chunks * np.square(g)
                square[index][k] = g2 if square[index][k] is None else square[index][k] + g2
    if kind == "power":
        return Importance.from_squares(model, square)
    values = [tuple(None if m is None else m * m - (q - m * m) / (chunks - 1) for m, q in zip(ms, qs))
              for ms, qs in zip(mean, square)]
    return Importance.from_squares(model, values).clipped()


def update_importance(current: Importance, model: Model, spec: UpdateSpec, delta: np.ndarray,
                      scale: float = 1.0, alpha: float = 0.2) -> Importance:
    """`current` with a board's reported update folded in. `delta` is the board's Result.delta
    (trained minus received, in ParameterIndex.indices(spec) order: per layer the selected rows in
    channel order, then the bias); `scale` turns it into a gradient, lr * local_steps; `alpha` is
    the weight of the new observation. Each group `spec` trains moves to
    (1 - alpha) * s + alpha * sum((delta / scale)^2 over the group); other groups keep s."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    from ftte.aggregation.coverage import ParameterIndex

    g2 = np.square(np.asarray(delta, np.float64).ravel() / scale)
    expected = ParameterIndex.of(model).indices(spec).size
    if g2.size != expected:
        raise ValueError(f"delta has {g2.size} values; spec {spec.describe(model)!r} selects {expected}")
    rows = [None if r is None else r.copy() for r in current.rows]
    bias = list(current.bias)
    at = 0
    for index, (layer, update) in enumerate(zip(model.layers, spec.layers)):
        if update.mode == "frozen":
            continue
        if not layer.has_weights:
            raise ValueError(f"layer {index} ({layer.name}) has no weights to train (mode {update.mode!r})")
        row_length = layer.weights.size // layer.channels
        if update.mode in ("full", "channels"):
            chosen = np.arange(layer.channels) if update.mode == "full" else np.unique(update.channels)
            block = g2[at:at + len(chosen) * row_length]
            observed = block.reshape(len(chosen), row_length).sum(axis=1)
            rows[index][chosen] = (1 - alpha) * rows[index][chosen] + alpha * observed
            at += block.size
        if layer.bias is not None:
            block = g2[at:at + layer.channels]
            bias[index] = (1 - alpha) * bias[index] + alpha * float(block.sum())
            at += layer.channels
    return Importance(tuple(rows), tuple(bias))
