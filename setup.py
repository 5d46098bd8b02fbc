"""Packaging glue: the `plugins/` folder ships as the importable package `golfc_plugins`.

pyproject.toml cannot express a renamed package tree whose sub-packages are discovered, so the
package list is computed here; everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

plugin_packages = ["golfc_plugins"] + [f"golfc_plugins.{name}" for name in find_packages("plugins")]
setup(
    packages=find_packages(include=["golfc", "golfc.*"]) + plugin_packages,
    package_dir={"golfc_plugins": "plugins"},
)
