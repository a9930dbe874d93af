"""FTTE, the Federated Tiny Training Engine: the host-side Python package.

The C kernels in ``kernels/`` are reached only through the cffi extension ``ftte._native``.
"""

__version__ = "0.1.0"
