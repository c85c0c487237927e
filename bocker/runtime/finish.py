"""`python -m bocker.finish ROOT CONTAINER_ID`: what a detached
container's monitor execs once the container has exited and exit.json is
written — release the cgroup (and network, ports), update the record,
and remove the container if it was run with --rm."""
import sys


def main(argv):
    """Entry point; exits 0 even when there is nothing left to release."""
    from bocker.runtime import containers
    from bocker.state import Paths

    root, cid = argv
    containers.finish(Paths(root), cid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
