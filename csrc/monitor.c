/* bocker-monitor - keeps one detached container, like podman's conmon.
 *
 * The shim forks, spawns the container (so this process is its parent),
 * and execs this small program, which therefore owns almost no memory.
 * It:
 *   1. copies the container's stdout and stderr into its log, one line per
 *      record: "<RFC 3339 UTC time> <stdout|stderr> <text>" (formats.h);
 *   2. reaps the container and writes exit.json atomically (exit code,
 *      finish time, whether the OOM killer struck: formats.h);
 *   3. execs the cleanup command (bocker's own, which releases the cgroup,
 *      address lease and port rules), if one is given.
 *
 * usage: bocker-monitor OUT_FD ERR_FD LOG EXIT_JSON OOM_FILE|- [CLEANUP...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "formats.h"

struct stream {
    int fd;
    const char *name;
    size_t used;
    char buf[LINE_MAX_BYTES];
};

/* "2026-11-27T23:59:59.123456789Z" */
static void timestamp(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk must not stop the container */
        p += w;
        n -= (size_t)w;
    }
}

/* One log record; adds the newline a partial line lacks. */
static void log_line(int log, const char *name, const char *text, size_t len)
{
    char head[64];
    char stamp[40];
    timestamp(stamp, sizeof stamp);
    int n = snprintf(head, sizeof head, LOG_RECORD_HEAD, stamp, name);
    write_all(log, head, (size_t)n);
    write_all(log, text, len);
    if (len == 0 || text[len - 1] != '\n')
        write_all(log, "\n", 1);
}

/* Read what is there; log every complete line, keep the rest.  Returns
 * 0 at EOF. */
static int pump(struct stream *s, int log)
{
    ssize_t n = read(s->fd, s->buf + s->used, sizeof s->buf - s->used);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0) {
        if (s->used)
            log_line(log, s->name, s->buf, s->used);
        s->used = 0;
        return 0;
    }
    s->used += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < s->used; i++) {
        if (s->buf[i] == '\n') {
            log_line(log, s->name, s->buf + start, i + 1 - start);
            start = i + 1;
        }
    }
    if (start == 0 && s->used == sizeof s->buf) { /* a line longer than the buffer */
        log_line(log, s->name, s->buf, s->used);
        start = s->used;
    }
    memmove(s->buf, s->buf + start, s->used - start);
    s->used -= start;
    return 1;
}

/* The container's exit code, Docker-style: SIGNAL_BASE+N for signal N. */
static int reap_container(void)
{
    int status = 0;
    pid_t pid;
    do
        pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    if (pid < 0)
        return 255;
    return WIFSIGNALED(status) ? SHIM_EXIT_SIGNAL_BASE + WTERMSIG(status)
                               : WEXITSTATUS(status);
}

/* 1 if the "oom_kill N" counter of a memory cgroup is above zero. */
static int oom_killed(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strstr(buf, "oom_kill ");
    return p && atol(p + 9) > 0;
}

/* exit.json, written to a temporary name and renamed into place. */
static void write_exit(const char *path, int code, int oom)
{
    char tmp[4096], body[256], stamp[40];
    timestamp(stamp, sizeof stamp);
    int n = snprintf(body, sizeof body, EXIT_JSON_FORMAT, code, stamp, oom ? "true" : "false");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    write_all(fd, body, (size_t)n);
    fsync(fd);
    close(fd);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    static struct stream streams[2];
    if (argc < 6) {
        fprintf(stderr, "usage: %s OUT_FD ERR_FD LOG EXIT_JSON OOM_FILE|- [CLEANUP...]\n",
                argv[0]);
        return 2;
    }
    streams[0].fd = atoi(argv[1]);
    streams[0].name = LOG_STDOUT;
    streams[1].fd = atoi(argv[2]);
    streams[1].name = LOG_STDERR;
    signal(SIGPIPE, SIG_IGN);
    /* Hold no directory of the caller's busy (an unmount would fail). */
    if (chdir("/") < 0)
        return SHIM_EXIT_RUNTIME;

    int log = open(argv[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { /* detach from whatever terminal started us */
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }

    int open_streams = 2;
    while (open_streams > 0) {
        struct pollfd pfd[2];
        for (int i = 0; i < 2; i++)
            pfd[i] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (streams[i].fd >= 0 && pfd[i].revents && !pump(&streams[i], log)) {
                close(streams[i].fd);
                streams[i].fd = -1; /* poll ignores negative fds */
                open_streams--;
            }
        }
    }
    if (log >= 0)
        close(log);

    int code = reap_container();
    int oom = strcmp(argv[5], "-") != 0 && oom_killed(argv[5]);
    write_exit(argv[4], code, oom);
    if (argc > 6)
        execv(argv[6], argv + 6);
    return 0;
}
