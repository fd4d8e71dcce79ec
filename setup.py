"""Build step for the one C extension: the spawn helper's vfork-style start of a container
(pocketkube/runtime/_vspawn.c). Optional: without a C compiler the package installs without
it, and the helper forks in Python instead. Everything else is in pyproject.toml."""

import sys

from setuptools import Extension, setup

setup(ext_modules=[Extension("pocketkube.runtime._vspawn", ["pocketkube/runtime/_vspawn.c"],
                             optional=True)] if sys.platform.startswith("linux") else [])
