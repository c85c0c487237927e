"""What a container sees mounted besides its rootfs: its own /etc/hostname,
/etc/hosts and /etc/resolv.conf (written beside the rootfs, never into the
image), and the volumes, binds and tmpfs mounts, as the shim's Mount entries.

The volumes and binds are the record's Mounts (decided at create,
bocker/volume/plan.py).  Every target is resolved by the shim after
pivot_root, inside the container (csrc/mounts.c, move_binds): a symlink
the container planted at a destination resolves within its own root,
never to the host's."""
import os

from bocker.errors import InvalidArgument
from bocker.kernel import native


def resolv_conf(req):
    """The container's resolv.conf text.  With the host's network, the
    host's own file as it is (its stub resolver on 127.0.0.53 is reachable
    there); otherwise without loopback resolvers, or with --dns."""
    if req.network == "host" and not (req.dns or req.dns_search or req.dns_options):
        try:
            with open("/etc/resolv.conf") as f:
                return f.read()
        except OSError:
            return ""
    from bocker.net import etcfiles  # not network: --network none needs only the text

    return etcfiles.resolv_conf(req.dns or None, search=req.dns_search or None,
                                options=req.dns_options or None)


def container_files(cdir, hostname, ip, resolv, extra_hosts=""):
    """/etc/hostname, /etc/hosts, /etc/resolv.conf for the container, kept
    beside its rootfs and bind-mounted, so the image is never altered.
    extra_hosts: --add-host's lines, after the container's own."""
    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             f"{ip or '127.0.1.1'}\t{hostname}\n{extra_hosts}")
    files = {"hostname": hostname + "\n", "hosts": hosts,
             "resolv.conf": resolv}
    mounts = []
    for name, text in files.items():
        path = os.path.join(cdir, name)
        with open(path, "w") as f:
            f.write(text)
        mounts.append(native.Mount(path, "/etc/" + name, is_file=True))
    return mounts


def volume_mounts(paths, record, req):
    """The shim's Mounts for the record's volumes and binds (a missing bind
    source becomes a directory, as -v makes it), --mount's tmpfs and
    --tmpfs, in the order they are mounted (parents first)."""
    mounts = []
    stored = record.get("Mounts")
    if stored is None:  # a record from before volumes: -v was host paths only
        from bocker.volume import plan

        stored = plan.legacy_binds(req.volumes)
    for m in stored:
        if m["Type"] == "volume":
            from bocker.volume import volumes

            source = volumes.data_dir(paths, m["Name"])  # (the name is checked)
        elif m["Type"] == "bind":
            source = m["Source"]
            if not os.path.exists(source):
                os.makedirs(source)
        else:
            continue  # tmpfs: from the request below
        mounts.append(native.Mount(source, m["Destination"], readonly=not m["RW"],
                                   is_file=os.path.isfile(source)))
    if req.mounts:
        from bocker.volume import parse

        for spec in map(parse.parse_mount, req.mounts):
            if spec.kind == "tmpfs":
                mounts.append(native.Mount(None, spec.target, data=spec.tmpfs_data(),
                                           readonly=spec.readonly))
    for spec in req.tmpfs:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs '{spec}': the path must be absolute")
        mounts.append(native.Mount(None, path, data=opts or "mode=1777"))
    return mounts
