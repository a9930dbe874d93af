"""The reference models: one per target data set, reused by tests, benchmarks and later issues."""

from ftte.zoo.reference import REFERENCE_MODELS, ReferenceModel, reference_model

__all__ = ["REFERENCE_MODELS", "ReferenceModel", "reference_model"]
