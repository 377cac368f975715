"""Builds the `cphoc._cphoc` C extension; all other metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cphoc._cphoc", ["cphoc/cphoc.c"])])
