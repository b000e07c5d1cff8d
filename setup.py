"""Build hook: compiles the C core in native/ through cffi (API mode, out-of-line)."""

from setuptools import setup

setup(cffi_modules=["executor/_build_native.py:ffibuilder"])
