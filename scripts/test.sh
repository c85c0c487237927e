#!/usr/bin/env bash
# The whole test suite, as root, provisioning everything it needs first.
# Integration tests make (and remove) their own loop-btrfs root, cgroups,
# network namespaces and registry; nothing is left on the host.  podman and
# containerd (tests/integration/test_oci_*.py) run with private roots; a
# missing one fails those tests rather than skipping them.  The build tests
# (tests/integration/test_build*.py) make a Debian image with debootstrap,
# its tree cached as a tarball under /var/cache/bocker-test (a fresh
# directory per run in CI: .ci/run); buildah is the build benchmark's.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BOCKER_VENV=${BOCKER_VENV:-/opt/bocker/venv}
BOCKER_SKIP_SETUP=1 BOCKER_EXTRA=test \
    BOCKER_APT_EXTRA="docker-registry skopeo openssl crun runc bubblewrap podman conmon containernetworking-plugins containerd debootstrap buildah" \
    "$repo/scripts/provision.sh"
cd "$repo"
# Twice: the whole suite with the CLI through the warm server (the C
# client's default path), then the integration tests, which run the CLI,
# with BOCKER_TEST_CLI=direct (the client execs the Python CLI itself), so
# every command is seen to behave the same both ways.
run_pass() {
    local status
    set +e
    "$BOCKER_VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    status=$?
    set -e
    if [ $status -eq 5 ]; then
        echo "test.sh: pytest collected no tests: that is a failure" >&2
        return 1
    fi
    return $status
}
status=0
BOCKER_TEST_CLI=server run_pass "$@" tests || status=$?
BOCKER_TEST_CLI=direct run_pass "$@" tests/integration || status=$?
exit $status
