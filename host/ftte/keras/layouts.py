"""Keras kernels in FTTE's weight layouts (kernels/include/ftte_types.h), and BatchNorm folding.

  Dense kernel [in][out]              -> dense / pointwise [out][in]
  Conv2D kernel [kh][kw][in][out]     -> conv2d [out][kh][kw][in]; 1x1: pointwise [out][in]
  Conv1D kernel [kw][in][out]         -> conv1d [out][1][kw][in]
  DepthwiseConv2D kernel [kh][kw][c][1] -> depthwise [c][kh][kw]
  DepthwiseConv1D kernel [kw][c][1]     -> depthwise [c][1][kw]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def dense_weights(kernel: np.ndarray) -> np.ndarray:
    """Dense [in][out] or a 1x1 conv [1][1][in][out] -> [out][in]."""
    return _f32(kernel.reshape(kernel.shape[-2], kernel.shape[-1]).T)


def conv_weights(kernel: np.ndarray) -> np.ndarray:
    """Conv2D [kh][kw][in][out] or Conv1D [kw][in][out] -> [out][kh][kw][in] (kh 1 for 1-D)."""
    k = kernel if kernel.ndim == 4 else kernel[None]
    return _f32(k.transpose(3, 0, 1, 2))


def depthwise_weights(kernel: np.ndarray) -> np.ndarray:
    """DepthwiseConv2D [kh][kw][c][1] or DepthwiseConv1D [kw][c][1] -> [c][kh][kw]."""
    k = kernel if kernel.ndim == 4 else kernel[None]
    return _f32(k[..., 0].transpose(2, 0, 1))


@dataclass(frozen=True)
class BatchNorm:
    """Inference-mode BatchNormalization: y = (x - mean) / sqrt(var + eps) * gamma + beta."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    epsilon: float


def fold_batchnorm(weights: np.ndarray, bias: np.ndarray | None, bn: BatchNorm
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias (FTTE layouts, output channel first) of a layer followed by `bn`:
    each output channel's row scaled by gamma / sqrt(var + eps), the bias shifted. float64
    inside, float32 out."""
    scale = bn.gamma.astype(np.float64) / np.sqrt(bn.variance.astype(np.float64) + bn.epsilon)
    rows = weights.reshape(weights.shape[0], -1).astype(np.float64) * scale[:, None]
    b = np.zeros(weights.shape[0]) if bias is None else bias.astype(np.float64)
    folded_bias = (b - bn.mean) * scale + bn.beta
    return _f32(rows.reshape(weights.shape)), _f32(folded_bias)
