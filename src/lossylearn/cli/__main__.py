"""``python -m lossylearn.cli``: the same as the ``lossylearn`` console script."""

from lossylearn.cli import main

main()
