"""Build shim: the metadata and the build configuration are in pyproject.toml."""
from setuptools import setup

setup()
