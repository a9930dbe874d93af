"""Model description: layers and their builders, sequential models, update specs."""

from ftte.model.layers import (
    Layer, avg_pool1d, avg_pool2d, conv1d, conv2d, dense, depthwise_conv2d, flatten,
    global_avg_pool, max_pool1d, max_pool2d, pointwise_conv2d, relu, relu6,
)
from ftte.model.model import Model, sequential
from ftte.model.spec import LayerUpdate, UpdateSpec

__all__ = [
    "Layer", "Model", "sequential", "LayerUpdate", "UpdateSpec", "avg_pool1d", "avg_pool2d",
    "conv1d", "conv2d", "dense", "depthwise_conv2d", "flatten", "global_avg_pool", "max_pool1d",
    "max_pool2d", "pointwise_conv2d", "relu", "relu6",
]
