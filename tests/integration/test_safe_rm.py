"""rm removes containers only (an img_ ID aside), rm -f of a missing one is
no error, rmi refuses an image a container uses (unless -f), untags a name
of several, and a container whose image went still starts as its image
said (issue 15: it ran as root once its image's User was gone)."""
import pytest

from bocker.image import images
from bocker.runtime import containers

TAG = "bkrm"


@pytest.fixture
def nobody_image(paths):
    """An image of busybox's content whose config runs as nobody."""
    base = images.resolve(paths, "busybox")
    made = images.create(paths, "test", None, name=f"{TAG}-nobody:v1",
                         config={"User": "nobody", "Env": ["PATH=/bin", "MARK=kept"]},
                         snapshot_of=images.rootfs(paths, base))
    yield made
    try:
        images.remove(paths, made)
    except Exception:
        pass  # the test removed it


def test_rm_of_an_image_name_never_removes_the_image(bocker, paths, nobody_image):
    proc = bocker("rm", f"{TAG}-nobody:v1")
    assert (proc.returncode, proc.stderr) == (
        1, f"bocker: No container named '{TAG}-nobody:v1' exists\n")
    assert images.resolve(paths, f"{TAG}-nobody:v1") == nobody_image
    proc = bocker("rm", "-f", f"{TAG}-nobody:v1", "ps_000000000000")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_rm_of_a_running_container_is_refused_in_one_line(bocker, cleanup):
    cid = bocker("run", "-d", "busybox", "sleep", "30", check=True).stdout.strip()
    cleanup.append(cid)
    proc = bocker("rm", cid)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "is running: stop it first or use -f" in proc.stderr
    assert bocker("rm", "-f", cid, check=True).stdout == f"Removed: {cid}\n"


def test_rmi_refuses_an_image_in_use_and_start_keeps_its_user(bocker, paths, nobody_image,
                                                               cleanup):
    name = f"{TAG}-nobody:v1"
    proc = bocker("run", "--name", f"{TAG}-user", name, "sh", "-c", "id -u; echo $MARK")
    cleanup.append(f"{TAG}-user")
    assert (proc.returncode, proc.stdout) == (0, "65534\nkept\n"), proc.stderr
    cid = containers.resolve(paths, f"{TAG}-user")
    proc = bocker("rmi", name)
    assert proc.returncode == 1 and proc.stderr == (
        f"bocker: image '{name}' is used by container {cid}: remove the container first "
        f"or use -f\n")
    proc = bocker("rm", nobody_image)  # an explicit img_ ID goes the rmi way: refused too
    assert proc.returncode == 1 and "is used by container" in proc.stderr
    # -f by name: untagged, the image stays for its container (nameless)
    assert bocker("rmi", "-f", name, check=True).stdout == f"Untagged: {name}\n"
    assert images.load(paths, nobody_image)["names"] == []
    # -f by ID: deleted; the container still starts as nobody, with its env
    assert bocker("rmi", "-f", nobody_image, check=True).stdout == f"Removed: {nobody_image}\n"
    assert nobody_image not in {r["id"] for r in images.list_all(paths)}
    proc = bocker("start", "-a", f"{TAG}-user")
    assert (proc.returncode, proc.stdout) == (0, "65534\nkept\n"), proc.stderr


def test_rmi_of_one_name_of_several_untags_it(bocker, paths, nobody_image):
    assert bocker("tag", f"{TAG}-nobody:v1", f"{TAG}-other", check=True).stdout == ""
    assert sorted(images.load(paths, nobody_image)["names"]) == [
        f"{TAG}-nobody:v1", f"{TAG}-other:latest"]
    proc = bocker("rmi", nobody_image)
    assert proc.returncode == 1 and proc.stderr == (
        f"bocker: image '{nobody_image}' has 2 names ({TAG}-nobody:v1, {TAG}-other:latest): "
        f"remove them one by one or use -f\n")
    assert bocker("rmi", f"{TAG}-other").stdout == f"Untagged: {TAG}-other:latest\n"
    assert images.load(paths, nobody_image)["names"] == [f"{TAG}-nobody:v1"]
    proc = bocker("tag", f"{TAG}-nobody:v1", "Bad:Name!")
    assert (proc.returncode, proc.stderr) == (1, "bocker: invalid image name 'Bad:Name!'\n")
    assert bocker("rmi", f"{TAG}-nobody:v1").stdout == f"Removed: {nobody_image}\n"
