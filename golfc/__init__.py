"""golfc: compose, build and audit Parameter Golf submissions.

Plugin authors need three names from here::

    from golfc import hookimpl, Impl, HParams
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PROJECT = "golfc"
hookimpl = pluggy.HookimplMarker(PROJECT)

from golfc.hparams import HParams  # noqa: E402
from golfc.slots import Impl, PluginInfo  # noqa: E402  (after hookimpl: slots imports nothing from here)

__all__ = ["PROJECT", "HParams", "Impl", "PluginInfo", "__version__", "hookimpl"]
