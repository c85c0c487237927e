"""Containers: the public API (containers, which lists the flow of one
start); the request and its pure functions (spec); what a record stores
and Docker's view of it (recordshape) and records on disk (records); creating
a container (create), starting it (start, through the seam in host)
with its fds (stdio), the child's reports (reports),
the /etc files and volumes (mounts) and the bridge glue (networking);
a client of a container's monitor (attached: run, start -a, attach) and
its protocol (protocol), exec's bytes and the log (attach), `bocker run`
as one call (run), exec (exec_in), the release of an exited container
(finish), and the other verbs (signals: kill/stop/wait; lifecycle:
start/remove/commit)."""
