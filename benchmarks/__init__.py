"""Start-latency and scale benchmarks for bocker (issues 7 and 16).

Run `python -m benchmarks` from the repository root, as root, with the
venv's python.  See benchmarks/README.md.
"""
