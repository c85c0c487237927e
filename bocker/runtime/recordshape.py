"""What a container record holds, and Docker's view of it.

A record stores the request once (Spec), what bocker resolved from the
image and the host when it made the container (Config: the command,
environment, hostname, working directory and user it runs with; IdMaps:
its user namespace's id maps, if any), its State and NetworkSettings.
Docker's HostConfig and Confinement, and the Path/Args/ImageName copies,
are not stored: with_view() derives them from Spec whenever a record is
loaded, so there is one source of truth.
"""
import time

from bocker.errors import InvalidArgument
from bocker.runtime import spec

# Keys with_view() adds and stored() removes again.
DERIVED = ("ImageName", "Path", "Args", "HostConfig", "Confinement")


def new_record(cid, req, image_id, image_config):
    """The stored record of a container about to be created from req."""
    from bocker.runtime import networking

    argv = spec.build_argv(req.command, image_config, req.entrypoint)
    config = {"Cmd": argv, "Env": [], "Hostname": req.hostname or _hostname(req, cid),
              "Domainname": req.domainname or "",
              # -a: Docker's flags (every stream when -a is not given; stdin: -i)
              "AttachStdin": "stdin" in req.attach if req.attach else False,
              "AttachStdout": "stdout" in req.attach if req.attach else True,
              "AttachStderr": "stderr" in req.attach if req.attach else True,
              "WorkingDir": req.workdir or image_config.get("WorkingDir") or "",
              "User": req.user or image_config.get("User") or "",
              # the image's labels (checked by create.image_fields) under the run's
              "Labels": {**(image_config.get("Labels") or {}), **req.labels},
              "ExposedPorts": networking.exposed_ports(req, image_config)}
    if req.stop_signal or image_config.get("StopSignal"):  # stop's signal, SIGTERM if none
        config["StopSignal"] = req.stop_signal or image_config["StopSignal"]
    if req.stop_timeout is not None:
        config["StopTimeout"] = req.stop_timeout
    return {
        "Id": cid,
        "Name": req.name or cid,
        "Created": time.time(),
        "Image": image_id,
        # Env is filled in at each start (it depends on the user's home)
        "Config": config,
        "IdMaps": {},
        "State": {"Status": "created", "Running": False, "Restarting": False, "Pid": 0,
                  "ExitCode": 0, "OOMKilled": False, "StartedAt": "", "FinishedAt": "",
                  "Error": ""},
        # the restart policy's own state (restarter.py): restarts since the
        # user's last start, the last backoff, and Docker's flag for a
        # container the user stopped or killed
        "RestartCount": 0, "RestartDelayMs": 0, "HasBeenManuallyStopped": False,
        "NetworkSettings": {},
        "Spec": req.to_dict(),
        # what a later start needs of the image (User, Env, WorkingDir...):
        # the image may be removed (rmi -f) while the container stays, and
        # its start must not then run as root with no environment
        "ImageConfig": image_config_kept(image_config),
    }


# The image config's keys a start (or a later verb) reads again.
IMAGE_CONFIG_KEPT = ("User", "Env", "WorkingDir", "Entrypoint", "Cmd", "StopSignal",
                     "ExposedPorts", "Volumes", "Labels")


def image_config_kept(image_config):
    """The part of an image's config a container record keeps."""
    return {k: image_config[k] for k in IMAGE_CONFIG_KEPT if k in image_config}


def image_config(record, load_image):
    """The image config a start of record uses: the copy kept at create;
    a record older than that copy asks load_image(image_id) ({} if gone)."""
    kept = record.get("ImageConfig")
    return kept if isinstance(kept, dict) else load_image(record["Image"])


def _hostname(req, cid):
    # --uts host: the host's own name (it is the container's too)
    if req.uts == "host":
        import os

        return os.uname().nodename
    return cid


def stored(record):
    """The part of record that is written to disk.  A record written by an
    older bocker (HostConfig stored, id maps inside it) is upgraded: its id
    maps move to IdMaps, the derived copies are dropped."""
    out = {k: v for k, v in record.items() if k not in DERIVED}
    if "IdMaps" not in out:
        host = record.get("HostConfig") or {}
        out["IdMaps"] = ({"UidMap": host["UidMap"], "GidMap": host["GidMap"]}
                         if host.get("UidMap") else {})
    out["Config"] = {k: v for k, v in out["Config"].items() if k != "Image"}
    return out


def with_view(record):
    """record (stored form) plus Docker's derived fields, for inspect and ps."""
    req = request(record)
    cmd = record["Config"]["Cmd"]
    return dict(record, ImageName=req.image, Path=cmd[0], Args=cmd[1:],
                Mounts=mounts(record, req),
                RestartCount=record.get("RestartCount", 0),
                Config=dict(record["Config"], Image=req.image),
                HostConfig=host_config(req, record["IdMaps"]),
                Confinement=confinement(req, record["IdMaps"]))


def mounts(record, req):
    """Docker's Mounts of a record: stored at create; a record from before
    volumes had -v host paths only, so its binds are derived from them."""
    if "Mounts" in record:
        return record["Mounts"]
    if not req.volumes:  # (ps loads every record: no import for none)
        return []
    from bocker.volume import plan

    try:
        return plan.legacy_binds(req.volumes)
    except InvalidArgument:
        return []


def request(record):
    """The RunRequest a record stores."""
    return spec.RunRequest.from_dict(record["Spec"])


def host_config(req, id_maps):
    """Docker's HostConfig: the request's host-side options."""
    from bocker.confine import security
    from bocker.runtime import networking

    return {"RestartPolicy": restart_policy(req.restart), "Memory": req.memory,
            "CpuShares": req.cpu_shares, "NanoCpus": int((req.cpus or 0) * 1e9),
            "PidsLimit": security.pids_limit(req.pids_limit) or 0,
            "NetworkMode": req.network, "AutoRemove": req.remove,
            "PortBindings": networking.port_bindings(req), "PublishAllPorts": req.publish_all,
            "ExtraHosts": req.extra_hosts, "Dns": req.dns,
            "DnsSearch": req.dns_search, "DnsOptions": req.dns_options,
            "Annotations": req.annotations or None,
            "Privileged": req.privileged, "Binds": req.volumes, "Tmpfs": req.tmpfs,
            "Mounts": [_mount_view(m) for m in req.mounts], "VolumesFrom": req.volumes_from,
            "UsernsMode": req.userns, "CapAdd": req.cap_add, "CapDrop": req.cap_drop,
            "SecurityOpt": req.security_opt,
            "Sysctls": dict(s.split("=", 1) for s in req.sysctls),
            "Ulimits": req.ulimits, "ReadonlyRootfs": req.read_only,
            "MemorySwap": _memory_swap(req), "CpusetCpus": req.cpuset_cpus or "",
            "ShmSize": req.shm_size or 64 << 20, "Init": req.init or None,
            "GroupAdd": req.group_add or None, "PidMode": req.pid or "",
            "IpcMode": req.ipc or "private", "UTSMode": req.uts or "", **id_maps,
            **_resources_view(req)}


# Docker's HostConfig keys of those flags as it shows them when unset
_RESOURCE_DEFAULTS = {
    "MemoryReservation": 0, "MemorySwappiness": None, "OomKillDisable": False,
    "OomScoreAdj": 0, "CpuPeriod": 0, "CpuQuota": 0, "CpusetMems": "",
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "KernelMemory": 0,
    "CgroupnsMode": "private", "CgroupParent": "", "Devices": [], "DeviceCgroupRules": None,
}


def _resources_view(req):
    """HostConfig's keys of Docker's further resource and device flags
    (runtime/resources.py is loaded only for a request that has them)."""
    if not spec.has_resources(req):  # (fresh lists: a caller may change its copy)
        return {k: list(v) if isinstance(v, list) else v for k, v in _RESOURCE_DEFAULTS.items()}
    from bocker.runtime import resources

    return resources.host_config(req)


def _memory_swap(req):
    """HostConfig.MemorySwap as Docker shows it: 0 without a memory limit,
    else the memory+swap limit (twice the memory unless --memory-swap)."""
    if not req.memory:
        return 0
    from bocker.kernel import cgroups

    return cgroups.Limits(memory=req.memory, memory_swap=req.memory_swap).memsw()


def _mount_view(text):
    """Docker's HostConfig.Mounts entry of a --mount value."""
    from bocker.volume import parse

    try:
        m = parse.parse_mount(text)
    except InvalidArgument:  # a record's own field: shown as given, inspect goes on
        return {"Raw": text}
    return {"Type": m.kind, "Source": m.source or "", "Target": m.target,
            "ReadOnly": m.readonly}


def restart_policy(value):
    """Docker's HostConfig.RestartPolicy of a stored --restart value."""
    if value in (None, "", "no"):  # the default: restartpolicy.py is not loaded for it
        return {"Name": "no", "MaximumRetryCount": 0}
    from bocker.runtime import restartpolicy

    return restartpolicy.docker(restartpolicy.of_spec({"restart": value}))


def confinement(req, id_maps):
    """What inspect shows of the container's confinement, layer by layer."""
    from bocker.confine import capabilities, security

    sec = security.parse_security_opts(req.security_opt)
    caps = capabilities.effective(req.cap_add, req.cap_drop, req.privileged)
    return {"Capabilities": capabilities.names(caps),
            "Seccomp": "unconfined" if req.privileged else sec["seccomp"],
            "NoNewPrivileges": not req.privileged,
            "MaskedPaths": not req.privileged, "ReadonlyPaths": not req.privileged,
            "UserNamespace": dict(Mode="auto", **id_maps) if id_maps else {"Mode": "host"}}
