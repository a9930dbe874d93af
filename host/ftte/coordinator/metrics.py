"""Metrics: one JSON object per event, to metrics.jsonl, run.sqlite and any live display;
and the evaluation of a global parameter vector on held-out data through the C kernels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftte.aggregation import load_flat_parameters
from ftte.coordinator.inprocess import cross_entropy
from ftte.model import Model, UpdateSpec
from ftte.store import RunStore
from ftte.train import Trainer

Sink = Callable[[dict], None]


class MetricsLog:
    """Fans every event out: a JSON line (flushed at once), the store's metrics table, sinks."""

    def __init__(self, path: str | Path | None = None, store: RunStore | None = None, sinks: tuple[Sink, ...] = ()):
        self._file = open(path, "a", buffering=1) if path is not None else None
        self._store, self.sinks = store, list(sinks)

    def __call__(self, event: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event) + "\n")
        if self._store is not None:
            self._store.log(event)
        for sink in self.sinks:
            sink(event)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float


class Evaluator:
    """Accuracy and mean cross-entropy of a flat parameter vector on (x, y), forward pass on
    the C kernels (a frozen spec: the parameters are read where the model keeps them)."""

    def __init__(self, model: Model, x: np.ndarray, y: np.ndarray, batch: int = 256):
        self._model = model.copy()
        self._x, self._y = np.ascontiguousarray(x, np.float32), np.asarray(y, np.int64)
        self._trainer = Trainer(self._model, UpdateSpec.frozen(self._model), batch=min(batch, len(self._y)))

    def __call__(self, params: np.ndarray) -> Evaluation:
        load_flat_parameters(self._model, params)
        logits = self._trainer.forward(self._x)
        return Evaluation(float(np.mean(np.argmax(logits, axis=1) == self._y)), cross_entropy(logits, self._y))
