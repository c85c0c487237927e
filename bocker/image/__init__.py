"""Images: references and digests (reference, digest), the image store
(images), layers and their safe extraction (layers), the registry client
(registry) and pull on top of it (pull), and docker-archive load/save
(archive)."""
