"""Registry credentials, stored and found as Docker does.

Docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json):
`auths` holds base64 user:password per registry key; `credHelpers` (per
registry) or `credsStore` (for all) name a docker-credential-<name> program
to ask instead.  `bocker login` writes `auths` entries, mode 0600.
"""
import base64
import json
import os

from bocker.image import reference


def docker_config_path():
    """Docker's config.json: $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _auth_keys(registry):
    # Every key Docker (and tools that write its file) use for a registry;
    # the first is the one a login writes.
    if registry == reference.DOCKER_HUB:
        return ["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}",
            f"https://{registry}/v1/", f"https://{registry}/v2/"]


def load_credentials(registry, path=None):
    """(user, password) for registry from Docker's config.json, or None.

    As Docker: a credHelpers entry for the registry, else credsStore, names
    a docker-credential-<name> program to ask; else `auths` holds them.
    """
    try:
        with open(path or docker_config_path()) as f:
            config = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    keys = _auth_keys(registry)
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[k] for k in keys if k in helpers), None) or config.get("credsStore")
    if helper:
        found = _from_helper(helper, keys[0])
        if found:
            return found
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if entry and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


def _from_helper(helper, server):
    """Ask docker-credential-<helper> for server's credentials; None if it has none."""
    import subprocess  # only when a helper is configured
    try:
        out = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(out.stdout)
        return answer["Username"], answer["Secret"]
    except (ValueError, KeyError):
        return None


def save_credentials(registry, user, password, path=None):
    """Store credentials as `docker login` does (config.json, mode 0600)."""
    path = path or docker_config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        with open(path) as f:
            config = json.load(f)
    except (FileNotFoundError, ValueError):
        config = {}
    key = _auth_keys(registry)[0]
    config.setdefault("auths", {})[key] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    # Created 0600 before the secret is written, then renamed over the old file.
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent="\t")
    os.rename(tmp, path)


def remove_credentials(registry, path=None):
    """Forget registry's credentials, as `docker logout`: its `auths`
    entries under every key Docker uses for it go (config.json rewritten,
    mode 0600), and a credential helper configured for it is asked to
    erase them.  Returns the key it was stored under, or None if there
    were none."""
    path = path or docker_config_path()
    try:
        with open(path) as f:
            config = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    keys = _auth_keys(registry)
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    found = [k for k in keys if k in auths]
    helpers = config.get("credHelpers") if isinstance(config.get("credHelpers"), dict) else {}
    helper = next((helpers[k] for k in keys if k in helpers), None) or config.get("credsStore")
    if isinstance(helper, str) and helper and _erase_with_helper(helper, keys[0]):
        found = found or [keys[0]]
    if not any(k in auths for k in keys):
        return found[0] if found else None
    for key in keys:
        auths.pop(key, None)
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent="\t")
    os.rename(tmp, path)
    return found[0]


def _erase_with_helper(helper, server):
    """docker-credential-<helper> erase server; True if it erased something."""
    import subprocess
    try:
        out = subprocess.run([f"docker-credential-{helper}", "erase"], input=server.encode(),
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0
