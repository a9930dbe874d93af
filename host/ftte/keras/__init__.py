"""Bring your own model: Keras -> FTTE conversion. TensorFlow is imported only when loading."""

from ftte.keras.convert import (
    Conversion, Step, UnsupportedModelError, compare_outputs, convert_keras, load_keras,
)

__all__ = ["Conversion", "Step", "UnsupportedModelError", "compare_outputs", "convert_keras", "load_keras"]
