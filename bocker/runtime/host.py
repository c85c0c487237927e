"""The start path's seam (youki's Syscall trait, in small): the objects a
create or launch step calls to change the system.  The defaults are the
real ones; the unit tests pass a fake that records each step and its
undo."""
from bocker.kernel import cgroups, native, store


class Host:
    """What the start path calls to change the system: the shim module,
    the cgroup driver, the btrfs store and the network module (loaded only
    for --network bridge).  The defaults are the real ones."""

    def __init__(self, native_mod=native, cgroup_driver=None, store_mod=store, network=None):
        self.native = native_mod
        self.cgroups = cgroup_driver or cgroups.driver()
        self.store = store_mod
        self._network = network

    @property
    def network(self):
        """bocker.net.network, or the fake a test passed."""
        if self._network is None:
            from bocker.net import network

            self._network = network
        return self._network
