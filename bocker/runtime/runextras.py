"""The checks of run's (and create's) smaller Docker flags: -a/--attach,
--annotation, --dns-search, --dns-option, --domainname (pure).

Each refusal is an InvalidArgument (125) of one line naming the bad
value.  What passes goes into a file or a syscall as it is: a search
domain or option with a space or newline would add lines to the
container's resolv.conf, so those are refused here.
"""
from bocker import patterns
from bocker.errors import InvalidArgument

STREAMS = ("stdin", "stdout", "stderr")
MAX_SEARCH = 6           # glibc's MAXDNSRCH: more are ignored by the resolver
MAX_SEARCH_TEXT = 256    # glibc's bound on the search line's names
MAX_OPTIONS = 32
DOMAIN_NAME_MAX = 64     # setdomainname(2): __NEW_UTS_LEN
MAX_ANNOTATIONS = 256
_LABEL = patterns.lazy(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_OPTION = patterns.lazy(r"[A-Za-z0-9_.-]{1,64}(:[0-9]{1,5})?\Z")


def parse_attach(values):
    """-a STDIN|STDOUT|STDERR (repeatable, any case) -> the sorted unique
    lower-case names; () when none was given (every stream, as Docker)."""
    out = set()
    for value in values:
        name = str(value).lower()
        if name not in STREAMS:
            raise InvalidArgument(f"invalid argument \"{value}\" for \"-a, --attach\": "
                                  f"valid streams are STDIN, STDOUT and STDERR")
        out.add(name)
    return tuple(s for s in STREAMS if s in out)


def parse_annotations(values):
    """--annotation KEY=VALUE (repeatable) -> {KEY: VALUE}; a KEY alone is
    KEY="" (Docker's map flag)."""
    out = {}
    for item in values:
        key, _, value = str(item).partition("=")
        if not key or "\0" in item:
            raise InvalidArgument(f"invalid --annotation '{item}': use KEY=VALUE")
        out[key] = value
    if len(out) > MAX_ANNOTATIONS:
        raise InvalidArgument(f"too many --annotation: at most {MAX_ANNOTATIONS}")
    return out


def check_dns_search(domains):
    """--dns-search: domain names (RFC 1123 labels, at most 253
    characters), or '.' alone (no search, as Docker's)."""
    if len(domains) > MAX_SEARCH:
        raise InvalidArgument(f"too many --dns-search: at most {MAX_SEARCH}")
    for d in domains:
        if d == ".":
            continue
        name = d[:-1] if d.endswith(".") else d
        if not 0 < len(name) <= 253 or not all(_LABEL.match(p) for p in name.split(".")):
            raise InvalidArgument(f"invalid --dns-search '{d}': not a domain name")
    if len(" ".join(domains)) > MAX_SEARCH_TEXT:
        raise InvalidArgument(f"--dns-search: the domains are longer than "
                              f"{MAX_SEARCH_TEXT} characters together")


def check_dns_options(options):
    """--dns-option: resolv.conf options such as ndots:2, edns0, timeout:3,
    attempts:1, rotate, use-vc (one word each, letters, digits, '-', '_',
    '.', and an optional :NUMBER)."""
    if len(options) > MAX_OPTIONS:
        raise InvalidArgument(f"too many --dns-option: at most {MAX_OPTIONS}")
    for o in options:
        if not _OPTION.match(o):
            raise InvalidArgument(f"invalid --dns-option '{o}': a resolv.conf option "
                                  f"such as ndots:2 or edns0")


def check_domainname(name):
    """--domainname: what setdomainname(2) takes and a hostname allows:
    RFC 1123 labels, at most 64 characters."""
    if not 0 < len(name) <= DOMAIN_NAME_MAX or \
            not all(_LABEL.match(p) for p in name.split(".")):
        raise InvalidArgument(f"invalid --domainname '{name}': letters, digits, '-' and "
                              f"'.', at most {DOMAIN_NAME_MAX} characters")


def check(req):
    """Every check of this module on a RunRequest (from checks.check)."""
    parse_attach(req.attach)
    check_dns_search(req.dns_search)
    check_dns_options(req.dns_options)
    if req.domainname is not None:
        check_domainname(req.domainname)
        if req.uts == "host":
            raise InvalidArgument("conflicting options: domainname and the UTS mode")
    parse_annotations([f"{k}={v}" for k, v in req.annotations.items()])
