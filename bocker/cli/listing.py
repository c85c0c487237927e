"""The rows `ps` and `images` print: one object per container or image
whose attributes are Docker's --format field names (.ID, .Names,
.Status, .Label "k" ...), plus bocker's own (.Address, .Source).  The
default tables are made of the same fields, so a --format column and a
table column always agree."""
import time

from bocker.cli import output
from bocker.units import human_size

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Address": "ADDRESS"}

IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                 "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "Source": "SOURCE", "Containers": "CONTAINERS"}

# Docker cuts .Command at 20 characters (without --no-trunc); bocker's own
# table kept p8952/bocker's 30.
COMMAND_CUT = 20


def created_at(ts):
    """Docker's CreatedAt: Go's time.Time.String() in local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(ts))


def _labels(labels):
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) \
        if isinstance(labels, dict) else ""


class ContainerRow:
    """A container as `ps --format` sees it (fields are Docker's)."""

    def __init__(self, record, trunc=True, size=None):
        self._r, self._trunc, self._size = record, trunc, size

    @property
    def ID(self):
        return self._r["Id"]

    @property
    def Image(self):
        return self._r.get("ImageName") or self._r.get("Image") or ""

    @property
    def Command(self):
        text = " ".join(self._r["Config"].get("Cmd") or [])
        if self._trunc and len(text) > COMMAND_CUT:
            text = text[:COMMAND_CUT - 1] + "\u2026"  # Docker's Ellipsis: 19 and a …
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    @property
    def CreatedAt(self):
        return created_at(self._r["Created"])

    @property
    def RunningFor(self):
        return output.ago(self._r["Created"])

    @property
    def Ports(self):
        ports = (self._r.get("NetworkSettings") or {}).get("Ports") or {}
        return output.ports({k: v for k, v in ports.items() if k != "any"}) \
            if self._r["State"].get("Running") else ""

    @property
    def State(self):
        from bocker.cli.filters import container_state

        return container_state(self._r)

    @property
    def Status(self):
        return output.status(self._r["State"])

    @property
    def Size(self):
        # computed on first use: `--format '{{.Size}}'` needs no -s, as Docker's
        if self._size is None:
            return "0B"
        rw, virtual = self._size(self._r)
        return f"{human_size(rw)} (virtual {human_size(virtual)})"

    @property
    def Names(self):
        return self._r.get("Name") or ""

    @property
    def Labels(self):
        return _labels((self._r.get("Config") or {}).get("Labels"))

    def Label(self, key):
        """The value of one label ('' if the container has none by that key)."""
        labels = (self._r.get("Config") or {}).get("Labels")
        return labels.get(key, "") if isinstance(labels, dict) else ""

    @property
    def Mounts(self):
        from bocker.cli.filters import mounts_of

        return ",".join(m.get("Name") or m.get("Source") or m.get("Destination") or ""
                        for m in mounts_of(self._r))

    @property
    def LocalVolumes(self):
        from bocker.cli.filters import mounts_of

        return str(sum(1 for m in mounts_of(self._r) if m.get("Type") == "volume"))

    @property
    def Networks(self):
        from bocker.cli.filters import _network

        return _network(self._r)

    @property
    def Address(self):
        """bocker's ADDRESS column: the bridge address while it runs."""
        net = self._r.get("NetworkSettings") or {}
        return net.get("IPAddress", "") if self._r["State"].get("Running") else ""

    def command_column(self):
        """bocker's table: the command unquoted, cut at 30 (p8952/bocker's)."""
        text = " ".join(self._r["Config"].get("Cmd") or [])
        return output.shorten(text, 30) if self._trunc else text

    def as_json(self):
        """What {{json .}} and --format json print: every field, as strings."""
        keys = ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
                "Names", "Networks", "Ports", "RunningFor", "State", "Status", "Address"]
        if self._size is not None:
            keys.append("Size")
        return {k: getattr(self, k) for k in sorted(keys)}


class ImageRow:
    """One image name (or <none>) as `images --format` sees it."""

    def __init__(self, record, name, trunc=True):
        self._r, self._name, self._trunc = record, name, trunc

    @property
    def ID(self):
        return self._r["id"]

    @property
    def Repository(self):
        if not self._name:
            return "<none>"
        repo, sep, tag = self._name.rpartition(":")
        return repo if sep and "/" not in tag else self._name

    @property
    def Tag(self):
        if not self._name:
            return "<none>"
        repo, sep, tag = self._name.rpartition(":")
        return tag if sep and "/" not in tag else "latest"

    @property
    def Digest(self):
        digest = self._r.get("digest")
        return digest if isinstance(digest, str) and digest else "<none>"

    @property
    def CreatedSince(self):
        return output.ago(self._r["created"])

    @property
    def CreatedAt(self):
        return created_at(self._r["created"])

    @property
    def Size(self):
        return human_size(self._r.get("size", 0))

    @property
    def Source(self):
        """bocker's SOURCE column: a directory, or where it was pulled from."""
        return str(self._r.get("source") or "")

    @property
    def Containers(self):
        return "N/A"

    def as_json(self):
        keys = ["Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                "Size", "Source", "Tag"]
        return {k: getattr(self, k) for k in keys}


def image_rows(records, trunc=True):
    """One row per name of each image (Docker's), <none> for one without."""
    return [ImageRow(r, name, trunc) for r in records for name in (r.get("names") or [None])]
