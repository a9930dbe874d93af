"""The C layer table of a model, pointing at the model's own numpy arrays (no copies)."""

from __future__ import annotations

import numpy as np

from ftte.model.model import Model
from ftte.native import FtteError, check, ffi, lib, op_id


class LayerTable:
    """`ftte_model` over a Model. The model's arrays must keep their identity while it lives:
    update them in place (Model.set_parameters), never rebind them."""

    def __init__(self, model: Model):
        self.model = model
        self.records = ffi.new("ftte_layer[]", len(model.layers))
        self._keep: list = []
        for index, layer in enumerate(model.layers):
            self._fill(ffi.addressof(self.records, index), layer)
            status = lib.ftte_layer_validate(ffi.addressof(self.records, index))
            if status != lib.FTTE_OK:
                raise FtteError(status, f"layer {index} ({layer.name}, {layer.op} {layer.in_shape}->{layer.out_shape})")
        self.c_model = ffi.new("ftte_model *", {"layers": self.records, "num_layers": len(model.layers)})
        check(lib.ftte_model_validate(self.c_model), f"model {model.name}")

    def _pointer(self, array: np.ndarray | None, expected: int, what: str):
        if array is None:
            return ffi.NULL
        if array.dtype != np.float32 or not array.flags.c_contiguous or array.size != expected:
            raise ValueError(f"{what}: need a C-contiguous float32 array of {expected} values, "
                             f"got {array.dtype} {array.shape}")
        buffer = ffi.from_buffer("float[]", array)
        self._keep.append(buffer)
        return buffer

    def _fill(self, record, layer) -> None:
        record.op = op_id(layer.op)
        shape_in = getattr(record, "in")  # a view into the record ("in" is a Python keyword)
        shape_in.h, shape_in.w, shape_in.c = layer.in_shape
        record.out.h, record.out.w, record.out.c = layer.out_shape
        record.kernel_h, record.kernel_w = layer.kernel
        record.stride_h, record.stride_w = layer.stride
        record.pad_top, record.pad_left = layer.pad
        row = lib.ftte_layer_row_length(record)
        record.weights = self._pointer(layer.weights, row * layer.channels, f"{layer.name} weights")
        record.bias = self._pointer(layer.bias, layer.channels, f"{layer.name} bias")
        if layer.has_weights and layer.weights is None:
            raise ValueError(f"{layer.name}: {layer.op} needs weights")

    @property
    def layout_hash(self) -> int:
        """The model layout hash the C side computes (geometry only, never the weights)."""
        return lib.ftte_model_layout_hash(self.c_model)

    def row_length(self, index: int) -> int:
        return lib.ftte_layer_row_length(ffi.addressof(self.records, index))

    def macs(self, index: int) -> int:
        """Multiply-accumulates of one sample's forward pass through layer `index`."""
        return lib.ftte_layer_macs(ffi.addressof(self.records, index))
