"""What only volumes need of the shared listing code (bocker/cli/filters.py,
gotemplate.py, output.print_template): the row `volume ls --format` runs
on, its table headers, and `volume prune`'s label!= filter.
"""

# Docker's column names of `volume ls --format 'table ...'`
HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
           "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Label": "LABEL",
           "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
           "Group": "GROUP", "Status": "STATUS", "CreatedAt": "CREATED AT"}

# `volume prune --filter`: Docker's keys (label!= is the one ls lacks)
PRUNE_KEYS = ("label", "label!")


class VolumeRow:
    """A volume (its inspect dict) as `volume ls --format` sees it: Docker's
    fields, every one a string (.Labels is k=v,k=v; .Label "k" one value)."""

    def __init__(self, volume):
        self._v = volume

    @property
    def Name(self):
        return self._v.get("Name", "")

    @property
    def Driver(self):
        return self._v.get("Driver", "local")

    @property
    def Scope(self):
        return self._v.get("Scope", "local")

    @property
    def Mountpoint(self):
        return self._v.get("Mountpoint", "")

    @property
    def CreatedAt(self):
        return self._v.get("CreatedAt", "")

    @property
    def Labels(self):
        labels = self._v.get("Labels")
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) \
            if isinstance(labels, dict) else ""

    def Label(self, key):
        """The value of one label ('' if the volume has none by that key)."""
        labels = self._v.get("Labels")
        return labels.get(key, "") if isinstance(labels, dict) else ""

    # Docker prints N/A for these without `-s` or a cluster volume
    Links = Size = Availability = Group = Status = property(lambda self: "N/A")

    def as_json(self):
        """What {{json .}} and --format json print (Docker's keys)."""
        keys = ["Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name",
                "Scope", "Size", "Status"]
        return {k: getattr(self, k) for k in keys}


def prune_keep(parsed):
    """A predicate for `volume prune --filter` (filters.parse(values,
    PRUNE_KEYS)'s output): True for a volume the filters spare.  label=
    must all match (shared rule); label!=KEY[=VALUE]: a volume with such a
    label is kept."""
    from bocker.cli import filters

    def wanted(volume):
        if "label" in parsed and not filters.labels_match(parsed["label"],
                                                          volume.get("Labels")):
            return False
        return not any(filters.labels_match([item], volume.get("Labels"))
                       for item in parsed.get("label!", ()))
    return lambda volume: not wanted(volume)
