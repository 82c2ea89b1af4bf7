"""The ``lossylearn`` command line: thin wrappers over the library (parse, call, print).

Modules: :mod:`.main` (the root command and the one error path), :mod:`.parse` (comma lists and
choices), :mod:`.compress` (``compress``, ``inspect``, ``export``), :mod:`.codec` (``codec train``,
``codec eval``), :mod:`.study` (``study lcon``, ``study urdc``), :mod:`.theory` and
:mod:`.theory_tables` (``theory ...``). Importing it does not load torch.
"""

from lossylearn.cli.main import app, main

__all__ = ["app", "main"]
