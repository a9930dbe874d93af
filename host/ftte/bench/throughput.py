"""Host training throughput: the C kernels through Python against the same step in TensorFlow.

For each reference model and batch size, one SGD step of full backprop on the same model
(same weights, same batch) is timed in FTTE (`Trainer.step`, C kernels through cffi) and in
TensorFlow (`tf.function` around GradientTape + SGD, one intra- and one inter-op thread), in
the same process, alternating. Both sides run the whole step: forward, loss, backward, update.

Run: ``python -m ftte.bench.throughput [--seconds S]`` (needs the `tensorflow` extra).
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from typing import Callable

import numpy as np

from ftte.model import UpdateSpec
from ftte.train import Trainer
from ftte.zoo import REFERENCE_MODELS

BATCHES = (1, 32)


def _time_per_call(step: Callable[[], object], seconds: float) -> float:
    """Median over 5 rounds of the mean seconds per call, after a warm-up."""
    for _ in range(10):
        step()
    calls = 1
    start = time.perf_counter()
    while time.perf_counter() - start < seconds / 10:
        step()
        calls += 1
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        rounds.append((time.perf_counter() - start) / calls)
    return float(np.median(rounds))


def tensorflow_step(model, x: np.ndarray, y: np.ndarray, lr: float) -> Callable[[], object]:
    import keras
    import tensorflow as tf

    from ftte.keras.twin import KerasTwin

    twin = KerasTwin(model)
    variables = twin.keras.trainable_variables
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    xt = tf.constant(x.reshape((-1,) + tuple(model.input_shape)))
    yt = tf.constant(y)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(yt, twin.keras(xt, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def ftte_step(model, x: np.ndarray, y: np.ndarray, lr: float) -> Callable[[], object]:
    trainer = Trainer(model, UpdateSpec.full(model), batch=len(y))
    return lambda: trainer.step(x, y, lr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per measurement")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"# Host training throughput ({datetime.date.today()}, `python -m ftte.bench.throughput`)\n")
    print(f"Full-backprop SGD step, float32, TensorFlow {tf.__version__} `tf.function` on one thread.\n")
    print("| model | batch | FTTE µs/step | TensorFlow µs/step | FTTE samples/s | TensorFlow samples/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, reference in REFERENCE_MODELS.items():
        data = reference.data()
        for batch in BATCHES:
            x = np.ascontiguousarray(data.x_train[:batch], np.float32)
            y = np.ascontiguousarray(data.y_train[:batch], np.int32)
            ours = _time_per_call(ftte_step(reference.build(0), x, y, 0.01), args.seconds)
            theirs = _time_per_call(tensorflow_step(reference.build(0), x, y, 0.01), args.seconds)
            print(f"| {name} | {batch} | {ours * 1e6:,.1f} | {theirs * 1e6:,.1f} | {batch / ours:,.0f} |"
                  f" {batch / theirs:,.0f} | {theirs / ours:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
