"""`bocker inspect` in Docker's shapes.

container(record, image) turns a container record (recordshape.with_view's
output) into what `docker inspect` prints: Id, Created (RFC 3339, UTC,
nanoseconds), Path, Args, State, Image, Name "/name", HostConfig, Mounts,
Config (Entrypoint and Cmd apart again, Labels, ExposedPorts, Tty ...),
NetworkSettings with Networks.<network>.  bocker's own keys stay beside
Docker's: ImageName (the name it was run from), Confinement (what confines
it, layer by layer) and Spec (the request it stores, which `bocker start`
replays); Docker's tools ignore keys they do not know.

image(record) does the same for an image.json: Id is bocker's img_ ID
(what every bocker command takes; Docker's sha256 config digest is in
RepoDigests' manifests and ConfigDigest), RepoTags, RepoDigests, Created,
Config, Os, Architecture, RootFS {Type: layers, Layers}, Size, History.
"""
import time

# Docker's zero time, for a container that never started or ended
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts):
    """Seconds since the epoch (float) as Docker's RFC 3339 with nanoseconds, UTC."""
    if not isinstance(ts, (int, float)) or ts <= 0:
        return ZERO_TIME
    ns = int(round(ts * 1e9))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def _time_or_zero(text):
    return text if isinstance(text, str) and text else ZERO_TIME


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def container(record, image=None):
    """Docker's inspect JSON of a container record; image: its image.json
    (or None if it is gone), for the Entrypoint/Cmd split and defaults."""
    from bocker.cli.filters import container_state

    config = _dict(record.get("Config"))
    spec = _dict(record.get("Spec"))
    image_config = _dict((image or {}).get("config"))
    state = _dict(record.get("State"))
    argv = _list(config.get("Cmd"))
    entry = spec.get("entrypoint")
    if entry is None:
        entry = image_config.get("Entrypoint") or None
    entry = list(entry) if isinstance(entry, list) and entry else None
    cmd = argv[len(entry):] if entry and argv[:len(entry)] == entry else argv
    if entry and argv[:len(entry)] != entry:
        entry = None  # the argv is not that entrypoint's (a record of an older image)
    status = container_state(record)
    labels = config.get("Labels")
    if not isinstance(labels, dict):
        labels = _dict(image_config.get("Labels"))
    exposed = config.get("ExposedPorts")
    if not isinstance(exposed, dict):
        exposed = _dict(image_config.get("ExposedPorts")) or None
    net = _dict(record.get("NetworkSettings"))
    host = _dict(record.get("HostConfig"))
    mode = host.get("NetworkMode") or spec.get("network") or "bridge"
    name = record.get("Name") or record.get("Id")
    out = {
        "Id": record.get("Id"),
        "Created": rfc3339(record.get("Created")),
        "Path": record.get("Path") or (argv[0] if argv else ""),
        "Args": record.get("Args") if isinstance(record.get("Args"), list) else argv[1:],
        "State": {
            "Status": status,
            "Running": status == "running" or bool(state.get("Running")),
            "Paused": status == "paused",
            "Restarting": status == "restarting",
            "OOMKilled": bool(state.get("OOMKilled")),
            "Dead": status == "dead",
            "Pid": state.get("Pid") or 0,
            "ExitCode": state.get("ExitCode") or 0,
            "Error": state.get("Error") or "",
            "StartedAt": _time_or_zero(state.get("StartedAt")),
            "FinishedAt": _time_or_zero(state.get("FinishedAt")),
        },
        "Image": record.get("Image"),
        "ImageName": record.get("ImageName") or spec.get("image"),
        "Name": "/" + str(name),
        "RestartCount": record.get("RestartCount", 0),
        "HostConfig": host,
        "Mounts": _list(record.get("Mounts")),
        "Config": {
            "Hostname": config.get("Hostname", ""),
            "User": config.get("User", ""),
            "Env": _list(config.get("Env")),
            "Cmd": cmd,
            "Image": config.get("Image") or spec.get("image"),
            "WorkingDir": config.get("WorkingDir", ""),
            "Entrypoint": entry,
            "Labels": labels,
            "Tty": bool(config.get("Tty", spec.get("tty", False))),
            "OpenStdin": bool(config.get("OpenStdin", spec.get("interactive", False))),
            "StopSignal": config.get("StopSignal") or image_config.get("StopSignal")
            or "SIGTERM",
        },
        "NetworkSettings": network_settings(net, mode, running=status == "running"),
    }
    if exposed:
        out["Config"]["ExposedPorts"] = exposed
    for key in ("StopTimeout", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr"):
        if key in config:
            out["Config"][key] = config[key]
    for key in ("Confinement", "Spec", "IdMaps", "SizeRw", "SizeRootFs"):
        if key in record:
            out[key] = record[key]
    return out


def network_settings(net, mode, running=True):
    """Docker's NetworkSettings: the address fields at the top, Ports, and
    Networks.<bridge|host|none|...> with the same address.  An exited
    container's address is shown empty, as Docker's: its lease is given
    back and another container may hold it now.  bocker's own keys
    (HostVeth, Guarded: the anti-spoofing admission) stay as stored."""
    keep = running
    ip = net.get("IPAddress", "") if keep else ""
    gateway = net.get("Gateway", "") if keep else ""
    mac = net.get("MacAddress", "") if keep else ""
    prefix = net.get("IPPrefixLen", 0) if keep else 0
    ports = net.get("Ports")
    ports = {k: v for k, v in ports.items() if k != "any"} if isinstance(ports, dict) else {}
    out = {k: v for k, v in net.items() if k not in ("Ports",)}
    out.update({"Bridge": net.get("Bridge", ""), "IPAddress": ip, "IPPrefixLen": prefix,
                "Gateway": gateway, "MacAddress": mac, "Ports": ports,
                "Networks": {mode: {"IPAddress": ip, "Gateway": gateway, "MacAddress": mac,
                                    "IPPrefixLen": prefix, "NetworkID": mode}}})
    return out


def image(record, size_rw=None):
    """Docker's image inspect JSON of an image.json record."""
    config = _dict(record.get("config"))
    names = [n for n in _list(record.get("names")) if isinstance(n, str)]
    digests = [d for d in _list(record.get("repo_digests")) if isinstance(d, str)]
    layers = [layer for layer in _list(record.get("layers")) if isinstance(layer, str)]
    out = {
        "Id": record.get("id"),
        "RepoTags": names,
        "RepoDigests": digests,
        "Created": rfc3339(record.get("created")),
        # commit -a/-m (and import -m): Docker's Author and Comment
        "Author": record.get("author") if isinstance(record.get("author"), str) else "",
        "Comment": record.get("comment") if isinstance(record.get("comment"), str) else "",
        "Config": {**config, "Labels": _dict(config.get("Labels")) or None},
        "Os": record.get("os") or "linux",
        "Architecture": record.get("architecture") or _host_arch(),
        "Size": record.get("size", 0),
        "RootFS": {"Type": "layers", "Layers": layers},
        "Source": record.get("source"),
    }
    if record.get("variant"):
        out["Variant"] = record["variant"]
    if record.get("config_digest"):
        out["ConfigDigest"] = record["config_digest"]
    history = config.get("History") if "History" in config else record.get("history")
    if isinstance(history, list):
        out["History"] = history
    return out


def _host_arch():
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine)
