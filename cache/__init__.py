"""Where things are kept: blobs, layers, images, tags, the build-cache index, registry I/O, archives."""
