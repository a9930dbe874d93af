# Only what pyproject.toml cannot say: cffi's `cffi_modules` is a setup() keyword that
# setuptools does not accept in pyproject.toml (python-cffi/cffi#55). Everything else is there.
from setuptools import setup

setup(cffi_modules=["host/ftte/_build_native.py:ffibuilder"])
