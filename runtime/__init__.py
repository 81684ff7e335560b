"""Where things run: namespaces, mounts, cgroups, the init, port forwarding, container lifecycle."""
