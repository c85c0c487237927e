"""Containers: the run request and what it becomes (spec), container
records (records), the start path and the lifecycle verbs (containers),
moving bytes between the user, the container and its log (attach), and the
cleanup a detached container's monitor runs (finish)."""
