"""Seccomp for one container: a profile (seccomp_profile.py: Docker/OCI
JSON, parsed and validated as hostile input) evaluated for one container (its capabilities, the host's architecture and
kernel), compiled by libseccomp in the shim into the BPF program that the
container child installs last before execve.

    filter_for(caps)                       the default profile, compiled
    filter_for(caps, load_profile(path))   --security-opt seccomp=PATH
    filter_for(caps, "unconfined")         None: no filter
    for_container(paths, security_opt, caps, privileged)   what launch() uses

Compiling the default profile costs about 2 ms (libseccomp), parsing it
0.3 ms; so a compiled program is kept in memory for the process and on
disk under the bocker root (cache/seccomp/), keyed by a digest of
everything that goes into it, and read back in some 25 us.
"""
import os

from bocker.confine.seccomp_profile import (_KERNEL, ACTIONS, ARCHES, ARG_KEYS, BPF_MAXINSNS,
                                            COND_KEYS, DEFAULT_PROFILE, INSN_BYTES,
                                            MAX_PROFILE_BYTES, NATIVE, OPS, RULE_KEYS, TOP_KEYS,
                                            UNCONFINED, InvalidArgument, Profile, default_profile,
                                            load_profile, parse, pin_profile, sha256)


def _host(machine=None, release=None):
    uname = os.uname()
    machine = machine or uname.machine
    if machine not in NATIVE:
        raise InvalidArgument(f"seccomp: no profile support for architecture {machine}")
    m = _KERNEL.match(release or uname.release)
    kernel = tuple(int(g or 0) for g in m.groups()) if m else (0, 0, 0)
    return machine, kernel


def plan(profile, caps, machine=None, release=None):
    """What to compile for this container: (default action word, libseccomp
    architecture names, [(name, action word, args)], every name the profile
    knows, whose newest bounds the ENOSYS prologue; empty: no prologue).  caps are capability names without CAP_ (capabilities.effective).
    Pure: no kernel calls."""
    machine, kernel = _host(machine, release)
    native, goarch = NATIVE[machine]
    caps = frozenset(c[4:] if c.startswith("CAP_") else c for c in caps)
    if profile.arch_map:   # Docker's form: the native entry and its subarchitectures
        arches = [native] + profile.arch_map.get(native, [])
    else:                  # OCI's form: the listed ones (the native one always)
        arches = [native] + [a for a in profile.architectures if a != native]
    rules = [(name, r.action, r.args) for r in profile.rules
             if r.applies(caps, goarch, kernel) for name in r.names]
    # The ENOSYS bound only makes sense for a profile that refuses by
    # default: under an allowing (or logging, or tracing) default a newer
    # system call is allowed anyway, and the bound would refuse it.
    refusing = profile.default_action & 0xffff0000 not in (
        ACTIONS["SCMP_ACT_ALLOW"], ACTIONS["SCMP_ACT_LOG"], ACTIONS["SCMP_ACT_TRACE"])
    known = sorted({name for r in profile.rules for name in r.names}) if refusing else []
    return profile.default_action, [ARCHES[a] for a in dict.fromkeys(arches)], rules, known


def compile_profile(profile, caps):
    """The BPF program (bytes) for profile under caps, on this host."""
    from bocker.kernel import native

    default, arches, rules, known = plan(profile, caps)
    try:
        blob = native.seccomp_compile(default, arches, rules, known, BPF_MAXINSNS * INSN_BYTES)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {profile.source}: {e.strerror}") from None
    return blob


def _cache_key(profile_digest, caps):
    from bocker import __version__
    from bocker.kernel import native

    parts = [b"bocker-seccomp-1", __version__.encode(), native.seccomp_build_id().encode(),
             str(os.stat(__file__).st_mtime_ns).encode(),
             " ".join(os.uname()[2:5]).encode(), profile_digest.encode(),
             ",".join(sorted(caps)).encode()]
    return sha256(b"\0".join(parts)).hexdigest()


def _cache_read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        blob = os.read(fd, BPF_MAXINSNS * INSN_BYTES + 1)
    finally:
        os.close(fd)
    ok = blob and len(blob) % INSN_BYTES == 0 and len(blob) <= BPF_MAXINSNS * INSN_BYTES
    return blob if ok else None


def _cache_write(path, blob):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, blob)
    finally:
        os.close(fd)
    os.rename(tmp, path)


_memo = {}


_digests = {}  # (inode, size, mtime, ctime) of the default profile -> its digest


def _default_digest():
    # Hashing the 15 kB profile is ~0.1 ms of every start in a warm process
    # (the API, the server's workers): a stat tells whether it changed.
    with open(DEFAULT_PROFILE, "rb") as f:
        st = os.fstat(f.fileno())
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        digest = _digests.get(seen)
        if digest is None:
            _digests.clear()
            digest = _digests[seen] = sha256(f.read()).hexdigest()
    return digest


def filter_for(caps, profile=None, cache_dir=None):
    """The compiled filter (bytes) for a container holding caps, or None for
    profile "unconfined".  profile: None (bocker's default), "unconfined",
    or a Profile from load_profile().  With cache_dir, a program compiled
    once is read back from there (keyed by profile, caps, host and bocker
    build) instead of compiled again."""
    if profile == UNCONFINED:
        return None
    if profile is not None and not isinstance(profile, Profile):
        raise InvalidArgument(f"seccomp: bad profile {str(profile)[:60]!r}")
    digest = profile.digest if profile else _default_digest()
    key = _cache_key(digest, caps)
    blob = _memo.get(key)
    path = os.path.join(cache_dir, key + ".bpf") if cache_dir else None
    if blob is None and path:
        blob = _cache_read(path)
    if blob is None:
        blob = compile_profile(profile or default_profile(), caps)
        if path:
            _cache_write(path, blob)
    _memo[key] = blob
    return blob


def for_container(paths, security_opt, caps, privileged=False):
    """The filter a container starts with, from its --security-opt values
    (security.parse_security_opts reads them): none when privileged or
    seccomp=unconfined, the profile file of seccomp=PATH, else bocker's
    default; cached under the bocker root."""
    if privileged:
        return None
    from bocker.confine import security

    choice = security.parse_security_opts(security_opt or ())["seccomp"]
    if choice == "default":
        profile = None
    elif choice == UNCONFINED:
        profile = UNCONFINED
    else:
        profile = load_profile(choice)
    return filter_for(caps, profile, cache_dir=os.path.join(paths.root, "cache", "seccomp"))


# The profile's names are re-exported: callers see one seccomp module.
__all__ = ["filter_for", "for_container", "plan", "compile_profile", "parse", "load_profile",
           "pin_profile", "default_profile", "Profile", "InvalidArgument", "UNCONFINED",
           "DEFAULT_PROFILE", "ACTIONS", "OPS", "TOP_KEYS", "RULE_KEYS", "ARG_KEYS", "COND_KEYS",
           "MAX_PROFILE_BYTES", "BPF_MAXINSNS"]
