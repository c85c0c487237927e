"""`bocker inspect` shows what confines a container: its effective
capabilities, seccomp mode, no_new_privs, masks and user namespace."""
import json


def _inspect(bocker, *run_args):
    cid = bocker("run", "-d", "--network", "none", *run_args, "busybox", "true",
                 check=True).stdout.strip()
    try:
        bocker("wait", cid, check=True)
        return json.loads(bocker("inspect", cid, check=True).stdout)[0]
    finally:
        bocker("rm", "-f", cid)


def test_default_container(bocker):
    rec = _inspect(bocker)
    conf = rec["Confinement"]
    assert "CAP_NET_BIND_SERVICE" in conf["Capabilities"]
    assert "CAP_MKNOD" not in conf["Capabilities"]
    assert "CAP_SYS_ADMIN" not in conf["Capabilities"]
    assert conf["Seccomp"] == "default"
    assert conf["NoNewPrivileges"] is True and conf["MaskedPaths"] is True
    assert conf["UserNamespace"] == {"Mode": "host"}
    assert rec["HostConfig"]["PidsLimit"] == 2048


def test_options_show_up(bocker):
    rec = _inspect(bocker, "--cap-drop", "ALL", "--cap-add", "kill", "--security-opt",
                   "seccomp=unconfined", "--pids-limit", "-1", "--read-only",
                   "--ulimit", "nofile=64:128", "--sysctl", "net.ipv4.ip_forward=1")
    conf, host = rec["Confinement"], rec["HostConfig"]
    assert conf["Capabilities"] == ["CAP_KILL"]
    assert conf["Seccomp"] == "unconfined"
    assert host["PidsLimit"] == 0 and host["ReadonlyRootfs"] is True
    assert host["Ulimits"] == ["nofile=64:128"]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}


def test_user_namespace_mapping(bocker):
    rec = _inspect(bocker, "--userns=auto")
    ns = rec["Confinement"]["UserNamespace"]
    assert ns["Mode"] == "auto"
    (uid_map,) = ns["UidMap"]
    assert uid_map["ContainerID"] == 0 and uid_map["Size"] == 65536
    assert uid_map["HostID"] > 0 and ns["GidMap"][0]["HostID"] > 0


def test_privileged_is_unconfined(bocker):
    conf = _inspect(bocker, "--privileged")["Confinement"]
    assert conf["Seccomp"] == "unconfined" and conf["NoNewPrivileges"] is False
    assert "CAP_SYS_ADMIN" in conf["Capabilities"]
