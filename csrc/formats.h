/* formats.h - the rules and on-disk formats that C and Python share.
 *
 * One definition each.  The enum is fed to cffi (build_shim.py reads this
 * CDEF block as well as shim.h's), so Python gets the very values through
 * bocker/kernel/native.py; the #defines below it are strings and sizes
 * Python writes or reads on its own, and tests/unit/test_formats.py parses
 * them here and fails if Python's side drifts.  monitor.c, which is not
 * linked with the shim, includes this file too.
 */
#ifndef BOCKER_FORMATS_H
#define BOCKER_FORMATS_H

/* CDEF-BEGIN */

/* A container's exit code when it did not run to its own exit (Docker's
 * rules): the runtime or a child step before execve failed; execve found
 * the command but could not run it; execve found no such command; the
 * command was killed by signal N (SIGNAL_BASE + N). */
enum shim_exit_code {
    SHIM_EXIT_RUNTIME = 125,
    SHIM_EXIT_CANNOT_EXECUTE = 126,
    SHIM_EXIT_NOT_FOUND = 127,
    SHIM_EXIT_SIGNAL_BASE = 128
};

/* CDEF-END */

/* A container's log: one record per line of its output,
 * "<RFC 3339 UTC time> <stream> <text>\n", where stream is LOG_STDOUT or
 * LOG_STDERR; a line longer than LINE_MAX_BYTES is cut into records of
 * that many bytes (bocker/runtime/attach.py writes the same records). */
#define LINE_MAX_BYTES 16384
#define LOG_RECORD_HEAD "%s %s "
#define LOG_STDOUT "stdout"
#define LOG_STDERR "stderr"

/* exit.json, written once by the container's monitor (monitor.c), which
 * reaped it, and read by bocker/runtime/records.py: the exit code, the
 * finish time (RFC 3339 UTC), whether the OOM killer struck. */
#define EXIT_JSON_FORMAT \
    "{\"ExitCode\": %d, \"FinishedAt\": \"%s\", \"OOMKilled\": %s}\n"

/* The attach protocol: a container's monitor listens on "attach", a unix
 * SOCK_SEQPACKET socket in the container's directory, and the starter of
 * an attached run holds a connected one from the clone on.  Each message
 * is one type byte and its payload, at most ATTACH_DATA_MAX bytes of it
 * (bocker/runtime/protocol.py encodes and decodes the same messages).
 * Monitor to client: */
#define ATTACH_DATA_MAX 16384
#define ATTACH_STDOUT 'o'   /* output bytes (a -t container's pty: all of it) */
#define ATTACH_STDERR 'e'
#define ATTACH_LOST 'l'     /* uint32: bytes dropped for this client (it read too slowly) */
#define ATTACH_EXIT 'x'     /* int32: the exit code (exit.json is written) */
/* Client to monitor: */
#define ATTACH_STDIN 'i'    /* bytes for the container's stdin */
#define ATTACH_STDIN_EOF 'c' /* the client's stdin ended */
#define ATTACH_RESIZE 'w'   /* uint16 rows, uint16 cols: the pty's window size */
#define ATTACH_DETACH 'q'   /* the client leaves on purpose: no StdinOnce close */
#define ATTACH_CLEANED 'f'  /* the starter ran the cleanup (or undid the start) */
/* (every integer in native byte order: both ends run on one host) */

#endif
