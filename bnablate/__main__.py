"""`python -m bnablate` = the `bnablate` command."""

from .cli import main

main()
