"""Container names: a claim (bocker/claims.py) names/<name> -> <ps_id>
per named container, made by symlink(2), so of many `run --name X` at
once exactly one gets X, with no lock held and no record listed.

A claim lives from create (after the container's directory is made) to
rm (after the directory is gone).  A claim whose container directory is
missing is stale (a crash between the two) and is taken over; dropping a
claim is done under the names directory's flock, so a takeover never
drops the claim another process has just made.
"""
import os

from bocker import claims, ids, state
from bocker.errors import Conflict


def claim(paths, name, cid):
    """Give name to cid, or raise Conflict naming the container that has it."""
    _ensure_dir(paths)
    link = os.path.join(paths.names, name)
    while True:
        try:
            os.symlink(cid, link)
            return
        except FileExistsError:
            pass
        with state.locked(paths.names, directory=True):
            try:
                owner = os.readlink(link)
            except FileNotFoundError:
                continue  # dropped meanwhile: claim it again
            if _exists(paths, owner):
                raise Conflict(f"Conflict. The container name \"/{name}\" is already in use "
                               f"by container \"{owner}\". You have to remove (or rename) "
                               "that container to be able to reuse that name.")
            os.unlink(link)  # its container is gone (a crash): stale


# Generated names: Docker's adjective_surname form (our own short lists:
# 48 x 48 names; a taken one is drawn again, then a digit is appended, as
# Docker does after its retries).
ADJECTIVES = ("admiring", "agile", "amazing", "bold", "brave", "bright", "busy", "calm",
              "clever", "cool", "crisp", "dazzling", "eager", "elated", "epic", "fervent",
              "fond", "gentle", "happy", "hopeful", "jolly", "keen", "kind", "lucid",
              "merry", "modest", "nifty", "noble", "patient", "peaceful", "plucky", "proud",
              "quick", "quiet", "relaxed", "serene", "sharp", "sleepy", "steady", "stoic",
              "sunny", "swift", "tender", "upbeat", "vibrant", "vivid", "witty", "zealous")
SURNAMES = ("agnesi", "archimedes", "babbage", "banach", "bohr", "boole", "cantor", "curie",
            "darwin", "dijkstra", "euler", "faraday", "fermat", "feynman", "franklin",
            "galileo", "gauss", "germain", "goodall", "hamilton", "hertz", "hopper",
            "hypatia", "kepler", "knuth", "kovalevskaya", "lamarr", "leavitt", "lovelace",
            "maxwell", "meitner", "mendel", "newton", "noether", "pascal", "planck",
            "ramanujan", "riemann", "shannon", "somerville", "tesla", "thompson", "turing",
            "volta", "wiles", "wright", "yalow", "zuse")
_DRAWS = 10


def generate(draw=None):
    """A random adjective_surname (draw(n) -> index below n; default os.urandom)."""
    draw = draw or (lambda n: int.from_bytes(os.urandom(2), "little") % n)
    return f"{ADJECTIVES[draw(len(ADJECTIVES))]}_{SURNAMES[draw(len(SURNAMES))]}"


def claim_generated(paths, cid, draw=None):
    """Claim a generated name for cid and return it: drawn again while
    taken, then with a random digit appended (never more than a few
    tries: names are claims, so two creates never get the same one)."""
    draw = draw or (lambda n: int.from_bytes(os.urandom(2), "little") % n)
    for attempt in range(2 * _DRAWS):
        name = generate(draw)
        if attempt >= _DRAWS:
            name += str(draw(10))
        try:
            claim(paths, name, cid)
            return name
        except Conflict:
            continue
    name = f"{generate(draw)}_{cid[-8:]}"  # every draw taken: unique by the ID
    claim(paths, name, cid)
    return name


def release(paths, cid, name=None):
    """Drop cid's claim on name (or on every name it holds); a no-op if it holds none."""
    with state.locked(paths.names, directory=True) as here:
        if not here:
            return
        if name:  # one readlink, not every claim's: a start's end stays flat
            held = {name: claims.owner_of(paths.names, name)}  # with many containers
        else:
            held = claims.claims(paths.names)
        for n, owner in held.items():
            if owner == cid:
                claims.drop(paths.names, n)


def claimed(paths):
    """{name: container ID} of every claim."""
    return claims.claims(paths.names)


def prune(paths, keep):
    """Drop every claim whose container is not in keep; {name: owner} of those dropped."""
    with state.locked(paths.names, directory=True) as here:
        return claims.prune(paths.names, keep) if here else {}


def _exists(paths, cid):
    return ids.is_id(cid, "ps") and os.path.isdir(paths.container(cid))


def _ensure_dir(paths):
    # A root from before names were claims: claim the names its records
    # hold, in a directory of its own renamed into place, so that of two
    # first runs one moves its directory in and the other uses it.
    if os.path.isdir(paths.names):
        return
    from bocker.runtime import records

    tmp = f"{paths.names}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    os.mkdir(tmp, 0o700)
    try:
        for r in records.list_all(paths):
            if r["Name"] != r["Id"]:
                os.symlink(r["Id"], os.path.join(tmp, r["Name"]))
        os.rename(tmp, paths.names)
    except OSError:
        if not os.path.isdir(paths.names):
            raise
    finally:
        if os.path.isdir(tmp):
            for entry in os.listdir(tmp):
                os.unlink(os.path.join(tmp, entry))
            os.rmdir(tmp)
