"""`image prune`: the images no container uses (only the dangling ones,
those without a name, unless all_images), and the layers no image is
built on any more."""
from bocker import state
from bocker.errors import BockerError


def unused(image_records, used, all_images=False):
    """The records of image_records to prune: not in used (the image IDs
    containers were made from) and, unless all_images, without a name."""
    return [r for r in image_records
            if r["id"] not in used and (all_images or not r.get("names"))]


def prune(paths, used, all_images=False):
    """Remove the unused images (see unused) and every layer no image left
    uses; returns ([removed image IDs], bytes reclaimed: the images'
    recorded sizes, their rootfs's apparent size)."""
    import os

    from bocker.image import images, layer_store

    removed, size = [], 0
    for record in unused(images.list_all(paths), used, all_images):
        try:
            images.remove(paths, record["id"])  # its layers go when no image uses them
        except BockerError:
            continue  # removed by someone else meanwhile
        removed.append(record["id"])
        size += record.get("size", 0)
    if os.path.isdir(paths.layers):
        with layer_store.locked(paths):
            layer_store.prune(paths, {c for r in images.list_all(paths)
                                      for c in r.get("layers", ())})
    return removed, size


def prune_build_cache(paths, everything=False):
    """Remove the build cache entries no image uses (bocker/build/cache.py;
    everything: all of them), and killed builds' temporaries; returns
    ([removed keys], bytes reclaimed)."""
    import os

    if not os.path.isdir(paths.buildcache):
        return [], 0
    from bocker.build import cache
    from bocker.image import images

    return cache.prune(paths, cache.used_keys(images.list_all(paths)), everything)


def prune_leftovers(paths):
    """What killed image commands left (images.prune_leftovers,
    layer_store.prune_leftovers, install.prune_leftovers), under the
    root's lock and the images' (images.locked); returns lines naming
    what was removed."""
    from bocker.image import images, install, layer_store

    with state.locked(paths.lock), images.locked(paths):
        return ([f"half-made image {e}" for e in images.prune_leftovers(paths)]
                + [f"half-made layer {e}" for e in layer_store.prune_leftovers(paths)]
                + [f"download directory {e}" for e in install.prune_leftovers(paths)])
