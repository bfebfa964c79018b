"""`python -m bnablate` = the `bnablate` command."""

from .launch import main

main()
