"""`python -m logsieve.cli`."""

from logsieve.cli import main

main()
