"""Start-latency and scale benchmarks for bocker (issue 7).

Run `python -m benchmarks` from the repository root, as root, with the
venv's python.  See benchmarks/README.md.
"""
