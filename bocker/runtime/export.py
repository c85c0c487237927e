"""`bocker export`: a container's filesystem (running or not) as one tar
stream, read with treeio's rules (no symlink followed, only regular files
opened; device nodes and FIFOs are archived as such, never opened)."""
import os

from bocker.kernel import treeio


def export(paths, record, out):
    """Write the container of record's rootfs as a tar to the binary file out."""
    rootfs = os.path.join(paths.container(record["Id"]), "rootfs")
    top = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        treeio.to_tar((e for e in treeio.walk(top, "/", specials=True) if e.rel), out)
    finally:
        os.close(top)
