"""What confines a container, from options to what the shim applies:
capabilities, the seccomp profile and its compiler (seccomp, profiles/),
sysctls, ulimits and --security-opt (security), and user-namespace id
allocation (userns)."""
