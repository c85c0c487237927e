"""`bocker build`: a Dockerfile built step by step on btrfs snapshots.

One job per module: dockerfile (the text parsed into stages and
instructions), words (Docker's shell-word expansion and splitting),
ignore (.dockerignore), errors (BuildError), then the context, copying,
cache and the engine that runs the steps.  The parsers are pure: they
read no files and need no root.
"""
