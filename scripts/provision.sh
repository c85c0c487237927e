#!/usr/bin/env bash
# Provision this host for bocker, idempotently, as root (Debian 12, Ubuntu 22.04+):
# system packages, a virtual environment with bocker in it, `bocker` and `bocker-oci` on PATH,
# then `bocker setup` (skipped with BOCKER_SKIP_SETUP=1).
#
#   BOCKER_VENV   where the virtual environment goes (default /opt/bocker/venv)
#   BOCKER_EXTRA  pip extras to install too (e.g. "test")
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${BOCKER_VENV:-/opt/bocker/venv}
packages=(btrfs-progs libbtrfsutil-dev libbtrfsutil1 busybox-static gcc libc6-dev
          libseccomp-dev
          python3-venv python3-dev libffi-dev nftables ca-certificates)

if [ "$(id -u)" -ne 0 ]; then
    echo "provision.sh: run me as root" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}" ${BOCKER_APT_EXTRA:-}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # another apt on the host (unattended-upgrades on a fresh machine) holds
    # dpkg's lock for a while: wait for it rather than fail
    apt_wait=(-o DPkg::Lock::Timeout=600)
    apt-get "${apt_wait[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_wait[@]}" install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

# PyPI's btrfsutil must match the system libbtrfsutil: 6.13 and newer call
# btrfs_util_subvolume_is_valid, which libbtrfsutil < 6.13 lacks (Debian 12
# has 6.2), while 6.12 builds against older libraries too.  Take the newest
# release not newer than the library, and 6.12 for libraries older than that.
libver=$(dpkg-query -W -f='${Version}' libbtrfsutil1 | sed -E 's/^[0-9]+://; s/^([0-9]+\.[0-9]+).*/\1/')
if dpkg --compare-versions "$libver" lt 6.13; then
    btrfsutil_spec="btrfsutil==6.12"
else
    btrfsutil_spec="btrfsutil>=6.12,<=${libver}.999"
fi

# Debian's own interpreter: a pyenv shim on PATH costs ~100 ms per start.
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel cffi
"$venv/bin/pip" install -q --disable-pip-version-check "$btrfsutil_spec"
extra=${BOCKER_EXTRA:+[$BOCKER_EXTRA]}
# compat mode: a plain path entry; the default editable finder costs ~20 ms per start
"$venv/bin/pip" install -q --disable-pip-version-check -e "$repo$extra" --config-settings editable_mode=compat
"$venv/bin/python" -c 'import bocker._shim, btrfsutil'
# $venv/bin/bocker is the C client (setup.py's BuildClient puts it there in
# either install mode), bocker-py the Python CLI it falls back to, and
# bocker-server the warm server it starts on first use (docs/architecture.md, "The CLI").
# Checked: a Python script there instead (an older setuptools, a hand-made
# venv) would still work, silently without the server.
if [ "$(head -c 4 "$venv/bin/bocker")" != $'\x7fELF' ] || [ ! -x "$venv/bin/bocker-py" ]; then
    echo "provision.sh: $venv/bin/bocker is not the C client" >&2
    exit 1
fi
# Bytecode now: with PYTHONDONTWRITEBYTECODE set, an editable install would
# recompile the package on every command (~12 ms per start).
"$venv/bin/python" -m compileall -q "$repo/bocker"
# a symlink is fine: the client finds its bin dir through /proc/self/exe
ln -sf "$venv/bin/bocker" /usr/local/bin/bocker
ln -sf "$venv/bin/bocker-oci" /usr/local/bin/bocker-oci  # the OCI runtime (podman --runtime, containerd BinaryName)

if [ "${BOCKER_SKIP_SETUP:-0}" != 1 ]; then
    bocker setup
fi
