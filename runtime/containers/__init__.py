"""Containers: records and state under ROOT/containers/<id>/, the monitor that owns a running one,
and the lifecycle verbs (start, stop, kill, rm, wait, pause, ...) that the CLI calls.

    ROOT/containers/<id>/config.json   what `run` asked for (immutable once created)
                         state.json    status, pids (with start times), exit code, OOMKilled
                         container.log json lines, as Docker's json-file driver
                         upper/ work/  the container's own overlay layer
                         rootfs/       mount point of the merged tree (inside the monitor only)
"""
