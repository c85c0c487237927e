"""bocker-oci: a runc-compatible OCI runtime over bocker's library and C
shim.  config.json is parsed and checked here as hostile input (config,
process, mountopts, ocisec, defaultspec), the container's cgroups are
kept by cgroup, and the CLI (cli) drives the state machine of the
runtime spec: create, start, kill, delete, exec and the rest of runc's
verbs, for podman, containerd and the runtime-tools suite."""
