"""Three reference models and the data set each is trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ftte.data import Dataset, accelerometer, digits, digits_28
from ftte.model import (
    Model, conv1d, conv2d, dense, depthwise_conv2d, flatten, max_pool1d, max_pool2d,
    pointwise_conv2d, relu, relu6, sequential,
)


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    description: str
    build: Callable[[int], Model]  # seed -> freshly initialised model
    data: Callable[[], Dataset]


def digits_mlp(seed: int = 0) -> Model:
    """MLP on 8x8 digits: flatten, 64 -> 32 -> 10."""
    return sequential((8, 8, 1), [flatten(), dense(64), relu(), dense(32), relu(), dense(10)],
                      seed, "digits_mlp")


def accel_cnn1d(seed: int = 0) -> Model:
    """1-D CNN on 128x3 accelerometer windows (the TinyML "magic wand" shape): two conv/pool
    stages, then a dense classifier."""
    return sequential((1, 128, 3), [
        conv1d(8, 5, padding="same"), relu(), max_pool1d(4),
        conv1d(16, 5, padding="same"), relu(), max_pool1d(2),
        flatten(), dense(32), relu(), dense(6),
    ], seed, "accel_cnn1d")


def digits_cnn2d(seed: int = 0) -> Model:
    """2-D CNN on 28x28x1 images: a strided conv, a depthwise-separable block, then a dense
    classifier."""
    return sequential((28, 28, 1), [
        conv2d(8, 3, strides=2, padding="same"), relu(),
        depthwise_conv2d(3, padding="same"), relu6(), pointwise_conv2d(16), relu6(),
        max_pool2d(2), flatten(), dense(32), relu(), dense(10),
    ], seed, "digits_cnn2d")


REFERENCE_MODELS = {
    "digits_mlp": ReferenceModel("digits_mlp", digits_mlp.__doc__, digits_mlp, digits),
    "accel_cnn1d": ReferenceModel("accel_cnn1d", accel_cnn1d.__doc__, accel_cnn1d, accelerometer),
    "digits_cnn2d": ReferenceModel("digits_cnn2d", digits_cnn2d.__doc__, digits_cnn2d, digits_28),
}


def reference_model(name: str) -> ReferenceModel:
    if name not in REFERENCE_MODELS:
        raise KeyError(f"unknown reference model {name!r}; known: {', '.join(REFERENCE_MODELS)}")
    return REFERENCE_MODELS[name]
