"""`python -m bocker.cli`: the same as the `bocker` command."""
from bocker.cli import main

main()
