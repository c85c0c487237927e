"""The container process's five capability sets as the kernel will
take them (config.py parsed them; the shim sets them)."""
from bocker.oci import log


def raisable(caps):
    """The five sets as the kernel will take them: none beyond what we
    hold ourselves (a sandbox may lack CAP_SYS_RESOURCE: a process
    without a capabilities object asks for every one), ambient cut to
    what is in both permitted and inheritable (runc's default spec asks
    for ambient caps it gives no inheritable set).  What an explicit
    set loses is a warning."""
    held = _held_caps()
    every = (1 << (_cap_last() + 1)) - 1
    out = {}
    for name, mask in caps.items():
        out[name] = mask & held.get("bounding" if name == "bounding" else "permitted", every)
        if out[name] != mask and mask != every:
            _warn_cut(f"process.capabilities.{name}", mask & ~out[name], "this runtime "
                      "does not hold them")
    allowed = out.get("ambient", 0) & out.get("permitted", 0) & out.get("inheritable", 0)
    if out.get("ambient", 0) != allowed:
        _warn_cut("process.capabilities.ambient", out["ambient"] & ~allowed,
                  "not in both permitted and inheritable")
        out["ambient"] = allowed
    return out


def _warn_cut(field, bits, why):
    from bocker.confine import capabilities

    names = [f"CAP_{n}" for n, bit in capabilities.NUMBERS.items() if bits >> bit & 1]
    log.warning(f"{field}: {', '.join(names) or hex(bits)} not raised ({why})")


def _held_caps():
    """Our own bounding and permitted sets, from /proc/self/status."""
    out = {}
    with open("/proc/self/status", "rb") as f:
        for line in f.read(1 << 16).splitlines():
            if line.startswith(b"CapBnd:"):
                out["bounding"] = int(line.split()[1], 16)
            elif line.startswith(b"CapPrm:"):
                out["permitted"] = int(line.split()[1], 16)
    return out


def _cap_last():
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read(16))
    except (OSError, ValueError):
        return 40
