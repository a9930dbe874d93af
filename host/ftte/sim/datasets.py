"""Data sets and models the simulator trains, by name.

- digits:        scikit-learn's 1,797 real 8x8 digits (ships with scikit-learn)
- digits28:      the same, upsampled to 28x28
- accelerometer: the synthetic 6-activity accelerometer windows (ftte.data), `samples` per class
- mnist1d:       MNIST-1D (Greydanus 2020, `pip install mnist1d`), generated locally with the
                 package's own generator (its download is never attempted); `samples` in total
- a path:        your own .npz with x_train, y_train, x_test, y_test

Models: the reference models of ftte.zoo, plus `mnist1d_cnn` (a 1-D CNN for MNIST-1D's 40-step
signals) and `mnist1d_mlp`, or a model directory/.npz written by `ftte convert`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftte.data import Dataset, accelerometer, digits, digits_28
from ftte.model import Model, conv1d, dense, flatten, max_pool1d, relu, sequential

DATASETS = ("digits", "digits28", "accelerometer", "mnist1d")
MNIST1D_SOURCE = ("MNIST-1D (Greydanus 2020), generated locally by mnist1d.data.make_dataset "
                  "with the package's default arguments and seed {seed}")


def mnist1d(samples: int = 5000, seed: int = 42) -> Dataset:
    """[n][1][40][1] signals, 10 classes, 80/20 train/test split as the package makes it."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ValueError("the mnist1d data set needs the mnist1d package: pip install mnist1d") from None
    args = get_dataset_args()
    args.num_samples, args.seed = int(samples), int(seed)
    state = np.random.get_state()  # make_dataset seeds numpy's global generator: leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    shape = lambda x: np.asarray(x, np.float32).reshape(len(x), 1, -1, 1)  # noqa: E731
    return Dataset("mnist1d", shape(data["x"]), np.asarray(data["y"], np.int32), shape(data["x_test"]),
                   np.asarray(data["y_test"], np.int32), 10, MNIST1D_SOURCE.format(seed=seed))


def load_npz(path: str | Path) -> Dataset:
    with np.load(path, allow_pickle=False) as npz:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (need x_train, y_train, x_test, y_test)")
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    return Dataset(Path(path).stem, arrays["x_train"].astype(np.float32), arrays["y_train"].astype(np.int32),
                   arrays["x_test"].astype(np.float32), arrays["y_test"].astype(np.int32), classes, str(path))


def load_data(name: str, samples: int | None = None, seed: int = 0) -> Dataset:
    """A data set by name, or an .npz path. `samples`: size of a generated set (accelerometer:
    per class; mnist1d: in total)."""
    if name == "digits":
        return digits(seed)
    if name == "digits28":
        return digits_28(seed)
    if name == "accelerometer":
        return accelerometer(samples or 400, seed)
    if name == "mnist1d":
        return mnist1d(samples or 5000, 42 + seed)
    if name.endswith(".npz") or Path(name).exists():
        return load_npz(name)
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}, or a path to an .npz")


def mnist1d_cnn(seed: int = 0) -> Model:
    """1-D CNN on MNIST-1D's 40-step signals: two conv/pool stages, then a dense classifier."""
    return sequential((1, 40, 1), [
        conv1d(8, 5, padding="same"), relu(), max_pool1d(2),
        conv1d(16, 5, padding="same"), relu(), max_pool1d(2),
        flatten(), dense(32), relu(), dense(10),
    ], seed, "mnist1d_cnn")


def mnist1d_mlp(seed: int = 0) -> Model:
    """MLP on MNIST-1D: 40 -> 64 -> 32 -> 10."""
    return sequential((1, 40, 1), [flatten(), dense(64), relu(), dense(32), relu(), dense(10)], seed, "mnist1d_mlp")


SIM_MODELS = {"mnist1d_cnn": (mnist1d_cnn, "mnist1d"), "mnist1d_mlp": (mnist1d_mlp, "mnist1d")}


def load_model(name: str, seed: int = 0) -> tuple[Model, str | None]:
    """(model, its default data set name or None) from a model name or a converted model path."""
    from ftte.zoo import REFERENCE_MODELS

    if name in SIM_MODELS:
        build, data = SIM_MODELS[name]
        return build(seed), data
    if name in REFERENCE_MODELS:
        reference = REFERENCE_MODELS[name]
        default = {"digits_mlp": "digits", "accel_cnn1d": "accelerometer", "digits_cnn2d": "digits28"}[name]
        return reference.build(seed), default
    if Path(name).exists():
        from ftte.model.io import load_model as load
        return load(name), None
    known = ", ".join([*REFERENCE_MODELS, *SIM_MODELS])
    raise ValueError(f"unknown model {name!r}; known: {known}, or a model directory/.npz from `ftte convert`")
