"""Training and inference of a model through the C kernels, inside one arena the C planner sized.

The arena is a numpy array; trainable parameters are views into it, inputs and labels are
passed to C without copies when they already are contiguous float32 / int32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftte.model.model import Model
from ftte.model.spec import UpdateSpec
from ftte.native import check, ffi, lib
from ftte.train.memory import MemoryPlan
from ftte.train.table import LayerTable


def _mode_id(mode: str) -> int:
    return getattr(lib, f"FTTE_UPDATE_{mode.upper()}")


class NativeConfig:
    """The C layer table, update spec, config and plan of one (model, spec, batch, momentum)."""

    def __init__(self, model: Model, spec: UpdateSpec | None, batch: int, momentum: bool,
                 training: bool = True):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.model = model
        self.spec = spec or UpdateSpec.full(model)
        if len(self.spec.layers) != len(model.layers):
            raise ValueError(f"update spec has {len(self.spec.layers)} layers, model {len(model.layers)}")
        self.table = LayerTable(model)
        self.updates = ffi.new("ftte_layer_update[]", len(model.layers))
        self._masks = []
        for index, (layer, update) in enumerate(zip(model.layers, self.spec.layers)):
            self.updates[index].mode = _mode_id(update.mode)
            if update.mode == "channels":
                self.updates[index].channel_mask = self._mask(layer.channels, update.channels, layer.name)
        self.config = ffi.new("ftte_train_config *", {
            "model": self.table.c_model, "updates": self.updates, "batch": batch, "momentum": int(momentum)})
        self.plan = ffi.new("ftte_plan *")
        planner = lib.ftte_plan_train if training else lib.ftte_plan_forward
        check(planner(self.config, self.plan), f"plan for {model.name} ({self.spec.describe(model)})")
        self.memory = MemoryPlan.from_c(self.plan.memory)

    def _mask(self, channels: int, selected: tuple[int, ...], name: str):
        bits = np.zeros(channels, np.uint8)
        index = np.asarray(selected, np.int64)
        if index.size and (index.min() < 0 or index.max() >= channels):
            raise ValueError(f"{name}: channel out of range [0, {channels}) in {selected}")
        bits[index] = 1
        mask = ffi.new("uint8_t[]", np.packbits(bits, bitorder="little").tobytes())
        self._masks.append(mask)
        return mask


@dataclass
class TrainableTensors:
    """Views into the arena of one layer's trainable parameters."""

    layer: int
    rows: np.ndarray  # the channel indices whose weight rows train
    weights: np.ndarray | None  # [len(rows)][row length]
    bias: np.ndarray | None  # [out channels]


class Trainer:
    """Sparse SGD on the C kernels. The model's arrays stay the read-only source (flash on a
    board); the trainable parameters live in the arena until `export()` writes them back."""

    def __init__(self, model: Model, spec: UpdateSpec | None = None, batch: int = 32,
                 momentum: bool = False):
        self.native = NativeConfig(model, spec, batch, momentum)
        self.model, self.spec, self.batch = model, self.native.spec, batch
        self._sample_size = int(np.prod(model.input_shape))
        self.memory: MemoryPlan = self.native.memory
        self.arena = np.zeros((self.memory.total + 3) // 4, np.float32)  # float32: 4-byte aligned
        self._arena = ffi.from_buffer(self.arena)
        self._arena_bytes = self.arena.nbytes
        self._output = np.empty((batch, model.classes), np.float32)
        self._loss = ffi.new("float *")
        self.tensors = [self._tensors(i) for i in range(len(model.layers))]
        self.reload()

    def reload(self) -> None:
        """Copies the model's current trainable parameters into the arena, zeroes velocity."""
        check(lib.ftte_train_init(self.native.plan, self._arena, self._arena_bytes), "train init")

    def step(self, x: np.ndarray, y: np.ndarray, lr: float = 0.05, momentum: float = 0.0,
             grads: list[tuple[np.ndarray | None, np.ndarray | None]] | None = None) -> float:
        """One SGD step on a batch of at most `batch` samples; returns the loss before it."""
        x, y = self._batch(x, y)
        c_grads = self._grad_pointers(grads) if grads is not None else ffi.NULL
        status = lib.ftte_train_step(self.native.plan, self._arena, self._arena_bytes, (lr, momentum),
                                     ffi.from_buffer("float[]", x), ffi.from_buffer("int32_t[]", y),
                                     len(y), self._loss, c_grads)
        check(status, "train step")
        return float(self._loss[0])

    def task(self, x: np.ndarray, y: np.ndarray, chunk: int, lr: float = 0.05,
             momentum: float = 0.0) -> tuple[list[float], float]:
        """A local task in one C call (ftte_train_steps): consecutive SGD steps over (x, y) in
        chunks of `chunk` samples (1..batch), the same steps as calling `step` on each chunk.
        Returns the loss before each step, and the loss of the last chunk after the last step
        (as `loss` gives it: what a board reports as its task's loss after)."""
        x, y = self._inputs(x), np.ascontiguousarray(y, dtype=np.int32)
        if len(x) != len(y) or not 1 <= chunk <= self.batch or len(y) % chunk:
            raise ValueError(f"steps take chunks of 1..{self.batch} samples dividing {len(y)}, got {chunk}")
        losses = np.empty(len(y) // chunk, np.float32)
        check(lib.ftte_train_steps(self.native.plan, self._arena, self._arena_bytes, (lr, momentum),
                                   ffi.from_buffer("float[]", x), ffi.from_buffer("int32_t[]", y), chunk,
                                   len(losses), ffi.from_buffer("float[]", losses), self._loss), "train steps")
        return losses.tolist(), float(self._loss[0])

    def gradients(self, x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """Gradients of the batch-mean loss for every trainable tensor, leaving the state as is."""
        grads = [(None if t.weights is None else np.empty_like(t.weights),
                  None if t.bias is None else np.empty_like(t.bias)) for t in self.tensors]
        persistent = self.memory.params_ram + self.memory.optimizer_state
        saved = self.arena.view(np.uint8)[:persistent].copy()
        self.step(x, y, lr=0.0, grads=grads)
        self.arena.view(np.uint8)[:persistent] = saved
        return grads

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for any number of samples (run in chunks of `batch`)."""
        x = self._inputs(x)
        out = np.empty((len(x), self.model.classes), np.float32)
        for start in range(0, len(x), self.batch):
            chunk = np.ascontiguousarray(x[start:start + self.batch])
            status = lib.ftte_forward(self.native.plan, self._arena, self._arena_bytes,
                                      ffi.from_buffer("float[]", chunk), len(chunk),
                                      ffi.from_buffer("float[]", self._output))
            check(status, "forward")
            out[start:start + len(chunk)] = self._output[:len(chunk)]
        return out

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy of at most `batch` samples under the arena's current parameters,
        as the firmware computes a task's loss_after (C forward, C cross-entropy, float32)."""
        x, y = self._batch(x, y)
        output = ffi.from_buffer("float[]", self._output)
        check(lib.ftte_forward(self.native.plan, self._arena, self._arena_bytes, ffi.from_buffer("float[]", x),
                               len(y), output), "forward")
        check(lib.ftte_cross_entropy_forward(len(y), self.model.classes, output, ffi.from_buffer("int32_t[]", y),
                                             self._loss), "cross-entropy")
        return float(self._loss[0])

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on (x, y)."""
        return float(np.mean(np.argmax(self.forward(x), axis=1) == np.asarray(y)))

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int = 1, lr: float = 0.05, momentum: float = 0.0,
            seed: int = 0) -> list[float]:
        """Shuffled mini-batch epochs; returns the mean loss of each epoch."""
        x, y = self._inputs(x), np.asarray(y, np.int32)
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            total = 0.0
            for start in range(0, len(x), self.batch):
                index = order[start:start + self.batch]
                total += self.step(x[index], y[index], lr, momentum) * len(index)
            losses.append(total / len(x))
        return losses

    def export(self) -> Model:
        """Writes the trained parameters back into the model's arrays and returns the model."""
        for t in self.tensors:
            layer = self.model.layers[t.layer]
            if t.weights is not None:
                layer.weight_rows()[t.rows] = t.weights
            if t.bias is not None:
                layer.bias[...] = t.bias
        return self.model

    def _tensors(self, index: int) -> TrainableTensors:
        layout = ffi.new("ftte_param_layout *")
        check(lib.ftte_param_layout_get(self.native.plan, index, layout), "param layout")
        update = self.spec.layers[index]
        layer = self.model.layers[index]
        rows = np.arange(layer.channels) if update.mode == "full" else np.asarray(sorted(update.channels), np.int64)
        return TrainableTensors(index, rows, self._view(layout.weights, layout.rows * layout.row_length,
                                                        (layout.rows, layout.row_length)),
                                self._view(layout.bias, layer.channels, (layer.channels,)))

    def _view(self, offset: int, count: int, shape: tuple[int, ...]) -> np.ndarray | None:
        if offset < 0:
            return None
        return self.arena[offset // 4: offset // 4 + count].reshape(shape)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 0 or (len(x) and x[0].size != self._sample_size):
            raise ValueError(f"each sample must have {self._sample_size} values {self.model.input_shape}, "
                             f"got {x.shape[1:]}")
        return x.reshape(len(x), self._sample_size)

    def _batch(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._inputs(x)
        y = np.ascontiguousarray(y, dtype=np.int32)
        if len(x) != len(y) or not 1 <= len(y) <= self.batch:
            raise ValueError(f"a step takes 1..{self.batch} samples with as many labels, got {len(x)} and {len(y)}")
        return x, y

    def _grad_pointers(self, grads):
        if len(grads) != len(self.model.layers):
            raise ValueError(f"grads needs one entry per layer ({len(self.model.layers)})")
        c_grads = ffi.new("ftte_param_grads[]", len(grads))
        for entry, (gw, gb) in zip(c_grads, grads):
            entry.weights = ffi.NULL if gw is None else ffi.from_buffer("float[]", gw)
            entry.bias = ffi.NULL if gb is None else ffi.from_buffer("float[]", gb)
        return c_grads
