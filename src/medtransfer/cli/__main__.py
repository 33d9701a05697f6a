"""``python -m medtransfer.cli``."""

from medtransfer.cli import main

main()
