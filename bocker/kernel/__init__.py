"""The kernel side: the compiled shim's only Python face (native), btrfs
subvolumes (store), cgroups v1/v2 (cgroups), and bounded reads of files a
container controls (rootfs_read).  Nothing here knows about images or
containers as bocker models them."""
