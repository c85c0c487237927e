"""Images: names and references (names, reference, digest), the image store
(images), layers (extract: the hostile-layer extractor; layer_store), the
registry client (registry over transport, auth, credentials, platforms),
one install from (config, layers) to an image (install, manifest) that
pull and docker-archive/OCI load (archive, archive_source) share."""
