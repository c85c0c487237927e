"""`update`'s input: --resources FILE|- (linux.resources JSON) and
runc's single flags (--memory, --cpu-shares, ...) merged over it."""
from bocker.errors import InvalidArgument

MAX_RESOURCES_JSON = 1 << 20

FLAGS = [  # option, resources section, key, parse
    ("memory", "memory", "limit", "size"), ("memory_reservation", "memory", "reservation", "size"),
    ("memory_swap", "memory", "swap", "size"), ("kernel_memory", "memory", "kernel", "size"),
    ("kernel_memory_tcp", "memory", "kernelTCP", "size"),
    ("cpu_shares", "cpu", "shares", "int"), ("cpu_quota", "cpu", "quota", "int"),
    ("cpu_period", "cpu", "period", "int"), ("cpu_rt_period", "cpu", "realtimePeriod", "int"),
    ("cpu_rt_runtime", "cpu", "realtimeRuntime", "int"), ("cpuset_cpus", "cpu", "cpus", "str"),
    ("cpuset_mems", "cpu", "mems", "str"), ("pids_limit", "pids", "limit", "int"),
    ("blkio_weight", "blockIO", "weight", "int"),
]


def parse_value(option, kind, text):
    """A single flag's text as its resources value: sizes take runc's
    units (64m, 1g; -1 is unlimited), the rest are integers or strings."""
    from bocker import units

    if kind == "str":
        return text
    if kind == "size" and text.strip() == "-1":
        return -1
    if kind == "size":
        return units.parse_size(text)
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid --{option.replace('_', '-')} {text!r}: a number") \
            from None


def read_resources(path):
    """--resources FILE ('-': stdin): a bounded JSON object."""
    from bocker.oci import jsonfields

    return jsonfields.read_object_file(path, "--resources", MAX_RESOURCES_JSON)


def merge(resources, flags):
    """resources with each single flag given (not None) set in its section."""
    for option, section, key, kind in FLAGS:
        if flags.get(option) is not None:
            resources.setdefault(section, {})[key] = parse_value(option, kind, flags[option])
    return resources
