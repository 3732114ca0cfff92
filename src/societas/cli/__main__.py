"""``python -m societas.cli``: the same as the ``societas`` command."""

from societas.cli.app import main

main()
