"""bocker: Docker's core verbs in a small Python package over a C shim."""
__version__ = "0.1.0"
