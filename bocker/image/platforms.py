"""Platforms: which manifest of an image index this host (or --platform) runs.

A platform is (os, architecture, variant) in OCI spelling, e.g.
('linux', 'arm64', 'v8').  Used by pull (a registry's index) and load (an
OCI layout's index).  Pure apart from reading the machine's name.
"""
import platform as _platform

from bocker.errors import InvalidArgument, NotFound

# uname -m spellings to OCI's architecture names.
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    """(os, architecture, variant) of this machine, in OCI spelling."""
    machine = _platform.machine()
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine)
    return "linux", _ARCH.get(machine, machine), variant


def parse_platform(text):
    """'linux/arm64[/v8]' -> ('linux', 'arm64', 'v8' or None)."""
    parts = text.split("/") if text else []
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform '{text}': use os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_platform(index, want):
    """The descriptor of index that matches want (os, arch, variant).

    index is hostile JSON: anything not shaped like a descriptor is passed
    over.  Attestation manifests (and 'unknown/unknown' entries) are
    skipped.  No variant asked for means any, preferring none or arm64's
    v8.  Raises NotFound when nothing matches.
    """
    os_, arch, variant = want
    found = []
    entries = index.get("manifests") if isinstance(index, dict) else None
    for desc in entries if isinstance(entries, list) else []:
        if not isinstance(desc, dict):
            continue
        plat = desc.get("platform") or {}
        ann = desc.get("annotations") or {}
        if not isinstance(plat, dict) or not isinstance(ann, dict):
            continue
        if ann.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if plat.get("os") != os_ or plat.get("architecture") != arch:
            continue
        have = plat.get("variant")
        if arch == "arm64" and have in (None, "v8") and variant in (None, "v8"):
            found.append((0, desc))
        elif variant is None or have == variant:
            found.append((0 if have is None else 1, desc))
    if not found:
        name = "/".join(p for p in want if p)
        raise NotFound(f"no image for platform {name}")
    return min(found, key=lambda f: f[0])[1]


def of_record(record):
    """(os, architecture, variant) of an image record: what pull or load
    stored; an image made here (init, commit, import) is the host's."""
    if not record.get("os") and not record.get("architecture"):
        return host_platform()
    return (record.get("os") or "linux", record.get("architecture") or host_platform()[1],
            record.get("variant") or None)


def require(have, text, what="image"):
    """Refuse (InvalidArgument, 125) a --platform text that is not have
    (os, arch, variant): a bocker image has one platform, so save, rmi,
    history or import of another is refused in one line.  A text without
    a variant matches any variant.  Returns have."""
    want = parse_platform(text)
    if want[:2] != tuple(have[:2]) or (want[2] is not None and want[2] != have[2]):
        shown = "/".join(p for p in have if p)
        raise InvalidArgument(f"{what} is {shown}, not {text} (a bocker image has "
                              f"one platform)")
    return have
