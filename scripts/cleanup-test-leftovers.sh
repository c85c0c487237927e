#!/usr/bin/env bash
# Remove what an interrupted test run may have left: mounts of the test
# roots (their loop devices auto-detach), their backing files, the test
# registries' servers, the OCI client tests' podman/containerd processes,
# and the test cgroup parents.  Touches only names the test suite itself
# uses (/tmp/bocker-test-*, /tmp/bkp-*, bkt<N> bridges and their
# bocker_bkt<N> tables, /bocker-test-* cgroups, half-written tarballs in
# /var/cache/bocker-test, whose whole ones it keeps: a local rerun's cache);
# it runs alone, after the suite (.ci/run).
set -u
# bocker servers (bocker/server): the one of the venv this cleans (its
# socket is named by the FNV-1a-64 of the venv's bin dir, as
# bocker/server/address.py names it) and those of the tests' own socket
# dirs (/tmp/bocker-test-srv-*), by their .pid file, and only if that PID's
# argv is a bocker server's (a stale .pid may name another process by now)
venv_bin=$(realpath "${BOCKER_VENV:-/opt/bocker/venv}/bin" 2>/dev/null)
venv_sock=$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("/run/bocker/cli-%016x.sock" % h)' "$venv_bin")
is_server() {  # PID: is it a bocker server (or a worker, its fork)?
    { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null \
        | grep -qE '(^|[ /])(bocker-server|-m bocker\.server\.main)( |$)'
}
stopping=()
for pidfile in "$venv_sock.pid" /tmp/bocker-test-srv-*/cli-*.sock.pid; do
    [ -f "$pidfile" ] || continue
    read -r pid < "$pidfile" 2>/dev/null || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    is_server "$pid" && kill "$pid" 2>/dev/null && stopping+=("$pid")
done
# a server drains its pools (rootfs entries, network slots) as it exits:
# let it, before the roots go (bounded: 30 s, then SIGKILL; what it left
# is removed below as a dead owner's)
for pid in ${stopping[@]+"${stopping[@]}"}; do
    for _ in $(seq 300); do
        is_server "$pid" || break
        sleep 0.1
    done
    is_server "$pid" && kill -9 "$pid" 2>/dev/null
done
rmdir /tmp/bocker-test-srv-* 2>/dev/null
for d in /tmp/bocker-test-srv-*; do
    [ -d "$d" ] && rm -rf --one-file-system "$d"
done
# pool leftovers: rootfs pool entries (<root>/pool/<image>.<pid>.<n>, and
# .<pid>.<n> half-made ones, .owner.<pid>) of a dead owner in every test
# root still mounted, and pooled host veths (bp + 7 hex PID + 5 hex) whose
# maker is no live server (a live one's are its own, under any root)
for pooldir in /tmp/bocker-test-*/root/pool /tmp/bocker-test-*/*/root/pool /tmp/bkp-*/root/pool; do
    [ -d "$pooldir" ] || continue
    for entry in "$pooldir"/* "$pooldir"/.[!.]*; do
        [ -e "$entry" ] || continue
        name=${entry##*/}
        if [[ $name =~ ^[^.]+\.([0-9]+)\.[0-9]+$ || $name =~ ^\.([0-9]+)\.[0-9]+$ \
              || $name =~ ^\.owner\.([0-9]+)$ ]]; then
            is_server "${BASH_REMATCH[1]}" && continue
        fi
        if [ -d "$entry" ]; then
            btrfs subvolume delete "$entry" >/dev/null 2>&1 || rm -rf --one-file-system "$entry"
        else
            rm -f "$entry"
        fi
    done
done
for link in /sys/class/net/bp*; do
    name=${link##*/}
    [[ $name =~ ^bp([0-9a-f]{7})[0-9a-f]{5}$ ]] || continue
    is_server $((16#${BASH_REMATCH[1]})) || ip link delete "$name" 2>/dev/null
done
# the pull tests' docker-registry servers, by the PID whose config lives in
# a test directory (never by name: another registry on the host is not ours)
for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}; pid=${pid%/cmdline}
    { tr '\0' ' ' < "$cmdline"; } 2>/dev/null \
        | grep -qE '^docker-registry serve /tmp/bkp-reg-[^ ]+/' && kill "$pid" 2>/dev/null
done
# the OCI client tests' daemons (podman's conmon and `container cleanup`,
# containerd in its own mount namespace, its shims), by the PID whose argv
# names a /tmp/bocker-test-oci-* directory; then what still runs in their
# cgroup parents (/bocker-test-oci-*: the containers), so the groups can go
for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}; pid=${pid%/cmdline}
    { tr '\0' ' ' < "$cmdline"; } 2>/dev/null \
        | grep -qE '(^| )[^ ]*/tmp/bocker-test-oci-[^ /]+/' && kill -9 "$pid" 2>/dev/null
done
for procs in /sys/fs/cgroup/*/bocker-test-oci-*/cgroup.procs \
             /sys/fs/cgroup/*/bocker-test-oci-*/*/cgroup.procs \
             /sys/fs/cgroup/bocker-test-oci-*/cgroup.procs \
             /sys/fs/cgroup/bocker-test-oci-*/*/cgroup.procs; do
    [ -f "$procs" ] || continue
    while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$procs"
done
# the build tests' debootstrap (tests/integration/buildfixtures.py), cut
# short: what still runs chrooted in its tree (/tmp/bocker-test-debian-*,
# whose /proc and /sys mounts go with the test directories below), and a
# half-written tarball in the cache (.<key>.tar.<pid>) of a dead writer
for root in /proc/[0-9]*/root; do
    pid=${root#/proc/}; pid=${pid%/root}
    [[ $(readlink "$root" 2>/dev/null) =~ ^/tmp/bocker-test-debian-[^/]+/ ]] \
        && kill -9 "$pid" 2>/dev/null
done
for partial in /var/cache/bocker-test/.*.tar.*; do
    [[ $partial =~ \.tar\.([0-9]+)$ ]] || continue
    [ -d "/proc/${BASH_REMATCH[1]}" ] || rm -f "$partial"
done
sleep 0.5
grep -oE ' /tmp/bkp-[^ ]+ ' /proc/self/mountinfo | sort -ru | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
for d in /tmp/bkp-*; do
    [ -e "$d" ] || continue
    grep -q " $d" /proc/self/mountinfo || rm -rf --one-file-system "$d"
done
grep -oE ' /tmp/bocker-test-[^ ]+ ' /proc/self/mountinfo | sort -ru | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
for d in /tmp/bocker-test-*; do
    [ -e "$d" ] || continue
    grep -q " $d" /proc/self/mountinfo || rm -rf --one-file-system "$d"
done
# the session bridges (bkt<tag>) and their nftables tables, which a
# session's teardown leaves when the run is killed before it
for link in /sys/class/net/bkt*; do
    name=${link##*/}
    [[ $name =~ ^bkt[0-9]+$ ]] && ip link delete "$name" 2>/dev/null
done
nft list tables 2>/dev/null | while read -r _ family table; do
    [[ $table =~ ^bocker_bkt[0-9]+$ ]] && nft delete table "$family" "$table" 2>/dev/null
done
for c in /sys/fs/cgroup/*/bocker-test-* /sys/fs/cgroup/bocker-test-*; do
    [ -d "$c" ] || continue
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
exit 0
