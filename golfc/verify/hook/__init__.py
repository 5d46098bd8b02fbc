"""The folder ``golfc verify`` puts first on the ``PYTHONPATH`` of a submission's processes: its
``sitecustomize.py`` installs the data-access ledger (an audit hook) in every Python process of the run."""
