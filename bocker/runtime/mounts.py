"""What a container sees mounted besides its rootfs: its own /etc/hostname,
/etc/hosts and /etc/resolv.conf (written beside the rootfs, never into the
image), and the -v and --tmpfs mounts, as the shim's Mount entries."""
import os

from bocker.errors import InvalidArgument
from bocker.kernel import native
from bocker.runtime.spec import parse_volume


def resolv_conf(req):
    """The container's resolv.conf text.  With the host's network, the
    host's own file as it is (its stub resolver on 127.0.0.53 is reachable
    there); otherwise without loopback resolvers, or with --dns."""
    if req.network == "host" and not req.dns:
        try:
            with open("/etc/resolv.conf") as f:
                return f.read()
        except OSError:
            return ""
    from bocker.net import etcfiles  # not network: --network none needs only the text

    return etcfiles.resolv_conf(req.dns or None)


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


def volume_mounts(volumes, tmpfs):
    """Mounts for -v and --tmpfs; a missing host path becomes a directory."""
    mounts = []
    for spec in volumes:
        host, target, readonly = parse_volume(spec)
        if not os.path.exists(host):
            os.makedirs(host)
        mounts.append(native.Mount(host, target, readonly=readonly,
                                   is_file=os.path.isfile(host)))
    for spec in tmpfs:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs '{spec}': the path must be absolute")
        mounts.append(native.Mount(None, path, data=opts or "mode=1777"))
    return mounts
