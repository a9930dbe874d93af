"""scikit-learn's handwritten digits (1797 real 8x8 images, 10 classes), shipped offline."""

from __future__ import annotations

import numpy as np

from ftte.data.dataset import Dataset, split

SOURCE = "scikit-learn load_digits (UCI optical digits, 1797 8x8 images)"


def digits(seed: int = 0) -> Dataset:
    """8x8x1 images scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images / 16.0).reshape(-1, 8, 8, 1)
    return split("digits", x, raw.target, 10, SOURCE, seed=seed)


def digits_28(seed: int = 0) -> Dataset:
    """The same digits bilinearly upsampled to 28x28x1, the input size of MNIST-class models."""
    from scipy.ndimage import zoom

    data = digits(seed)
    up = lambda x: np.clip(zoom(x, (1, 3.5, 3.5, 1), order=1), 0.0, 1.0).astype(np.float32)
    return Dataset("digits28", up(data.x_train), data.y_train, up(data.x_test), data.y_test, 10,
                   SOURCE + ", upsampled to 28x28")
