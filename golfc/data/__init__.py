"""Challenge-format data: shards, tokenizer training, the stand-in corpus build and the FineWeb download.

The modules here are independent of the rest of golfc; ``golfc data ...`` (``command.py``) is their CLI and
``build.build_dataset`` is the function ``golfc demo`` calls.
"""
