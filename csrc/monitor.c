/* bocker-monitor - the keeper of one container, attached or detached,
 * like podman's conmon.
 *
 * The shim forks, spawns the container (so this process is its parent),
 * and execs this small program, which therefore owns almost no memory.
 * Whatever happens to the bocker process that started the container
 * (killed, detached, a `run -d` that returned), this process:
 *   1. owns the container's output: its stdout and stderr pipes or, for
 *      -t, the pty master the child sends over CONSOLE; every byte goes
 *      to the log, one line per record ("<RFC 3339 UTC time>
 *      <stdout|stderr> <text>", formats.h), and to every attached client;
 *   2. holds the write end of its stdin (-i) or the pty, fed by clients;
 *   3. serves the attach protocol (formats.h) on LISTEN, a SOCK_SEQPACKET
 *      socket in the container's directory, and on CLIENT, the starter's
 *      end of a socket pair, connected before the container runs so that
 *      an attached run sees all of its output.  Every buffer is bounded: a
 *      client too slow to take its output has it dropped (and is told how
 *      much), so no client ever blocks the container or its log;
 *   4. reaps the container, writes exit.json atomically (exit code, finish
 *      time, whether the OOM killer struck: formats.h) and sends the exit
 *      code to every client;
 *   5. execs the cleanup command (bocker's own `finish`, which releases the
 *      cgroup, address lease, guard entries and port rules, and removes a
 *      --rm container), unless the starter is still connected then: it
 *      runs the cleanup itself (a Python start saved) and says
 *      ATTACH_CLEANED, or it disconnects and we run it after all.
 *
 * usage: bocker-monitor PID PIDFD OUT ERR CONSOLE STDIN LISTEN CLIENT MODE
 *                       LOG EXIT_JSON OOM_FILE|- SOCKET [CLEANUP...]
 *   PID, PIDFD  the container (PIDFD -1: opened here); the shim puts them
 *   OUT, ERR    its output pipes' read ends, or -1 (-t)
 *   CONSOLE     the socket its child sends the pty master on (-t), or -1
 *   STDIN       the write end of its stdin pipe (-i without -t), or -1
 *   LISTEN      the listening attach socket; CLIENT the starter's, or -1
 *   MODE        letters: t (a pty), i (stdin open), o (StdinOnce: the first
 *               client's end of stdin, or its going away, closes it),
 *               p (no PID namespace of its own: PID 1's exit ends it), or -
 *   SOCKET      LISTEN's path, removed once the container has exited
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "formats.h"

#define MAX_CLIENTS 16
/* Kernel memory a client's socket may hold of output not read yet; past
 * it that client's output is dropped.  Charged only while queued. */
#define CLIENT_SNDBUF (2 << 20)

#define MONITOR_NOFILE 1024 /* its clients, log, pidfd and the cleanup's imports */
/* Reads of what a shared-PID container (--pid host) wrote before its PID
 * 1 exited: bounded, since a process it left behind may write for ever. */
#define DRAIN_READS 64

struct stream {
    int fd;
    char type;              /* ATTACH_STDOUT or ATTACH_STDERR */
    const char *name;       /* LOG_STDOUT or LOG_STDERR */
    size_t used;
    char buf[LINE_MAX_BYTES];
};

struct client {
    int fd;                 /* -1: a free slot */
    int primary;            /* the starter */
    int detached;           /* said ATTACH_DETACH */
    int gives_input;        /* has sent stdin (the starter of run -i: from
                               the start): StdinOnce applies to it */
    uint32_t dropped;       /* output bytes it missed, not told yet */
};

static struct stream streams[2];
static struct client clients[MAX_CLIENTS];
static int tty, stdin_once, shared_pid, cleaned;
/* in_fd: the stdin pipe, the pty master, IN_PTY_PENDING (the master has
 * not come yet: input waits in in_buf) or -1 (none, or closed) */
#define IN_PTY_PENDING (-2)
static int master = -1, in_fd = -1;
static char in_buf[ATTACH_DATA_MAX];
static size_t in_len;
static struct winsize winsize;
static int have_winsize;
static char frame[1 + ATTACH_DATA_MAX];

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

/* One log record; adds the newline a partial line lacks.  A pty ends its
 * lines with "\r\n": the log keeps "\n", as for a pipe. */
static void log_line(int log, const char *name, const char *text, size_t len)
{
    char head[64];
    char stamp[40];
    if (tty && len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n')
        len -= 2; /* the newline comes back below */
    timestamp(stamp, sizeof stamp);
    int n = snprintf(head, sizeof head, LOG_RECORD_HEAD, stamp, name);
    write_all(log, head, (size_t)n);
    write_all(log, text, len);
    if (len == 0 || text[len - 1] != '\n')
        write_all(log, "\n", 1);
}

/* Forget a client; StdinOnce: the going away of one that gave input (but
 * by ATTACH_DETACH) is the end of the container's stdin. */
static void drop_client(struct client *c)
{
    close(c->fd);
    c->fd = -1;
    if (stdin_once && c->gives_input && !c->detached && !tty && in_fd >= 0) {
        close(in_fd);
        in_fd = -1;
        in_len = 0;
    }
}

/* Send one message without ever waiting: 0, or -1 with errno. */
static int send_msg(int fd, char type, const void *data, size_t len)
{
    frame[0] = type;
    memcpy(frame + 1, data, len);
    return send(fd, frame, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* Tell a client how much output it missed, once it can take a message. */
static void tell_dropped(struct client *c)
{
    uint32_t n = c->dropped;
    if (send_msg(c->fd, ATTACH_LOST, &n, sizeof n) == 0)
        c->dropped = 0;
    else if (errno != EAGAIN)
        drop_client(c);
}

/* Output to every client: a full socket drops this chunk for that client
 * (counted, and told later); a dead one is forgotten. */
static void broadcast(char type, const char *data, size_t len)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (c->fd < 0)
            continue;
        if (c->dropped || send_msg(c->fd, type, data, len) < 0) {
            if (c->dropped == 0 && errno != EAGAIN) {
                drop_client(c);
                continue;
            }
            c->dropped += (uint32_t)len;
        }
    }
}

/* Read what is there; pass it to the clients, log every complete line,
 * keep the rest.  Returns 0 at EOF (a pty's EIO: every slave closed). */
static int pump(struct stream *s, int log)
{
    ssize_t n = read(s->fd, s->buf + s->used, sizeof s->buf - s->used);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (n <= 0) {
        if (s->used)
            log_line(log, s->name, s->buf, s->used);
        s->used = 0;
        return 0;
    }
    broadcast(s->type, s->buf + s->used, (size_t)n);
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

/* Write what stdin holds, as far as the container takes it now. */
static void flush_stdin(void)
{
    while (in_len > 0 && in_fd >= 0) {
        ssize_t w = write(in_fd, in_buf, in_len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w <= 0) { /* the container closed its stdin */
            in_len = 0;
            return;
        }
        memmove(in_buf, in_buf + w, in_len - (size_t)w);
        in_len -= (size_t)w;
    }
    if (in_fd < 0 && in_fd != IN_PTY_PENDING)
        in_len = 0;
}

/* -t: the child's pty master, sent once over the console socket. */
static void receive_master(int sock)
{
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = NULL;
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) > 0)
        cm = CMSG_FIRSTHDR(&msg);
    if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int))) {
        if (in_fd == IN_PTY_PENDING) /* the child failed a step before its console */
            in_fd = -1, in_len = 0;
        return;
    }
    memcpy(&master, CMSG_DATA(cm), sizeof(int));
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    streams[0].fd = master;
    if (in_fd == IN_PTY_PENDING) /* stdin open: the pty is it */
        in_fd = master;
    if (have_winsize)
        ioctl(master, TIOCSWINSZ, &winsize);
    flush_stdin(); /* what was typed before it came */
}

/* One message from a client. */
static void client_message(struct client *c)
{
    ssize_t n = recv(c->fd, frame, sizeof frame, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop_client(c);
        return;
    }
    size_t len = (size_t)n - 1;
    const char *data = frame + 1;
    if (frame[0] == ATTACH_STDIN || frame[0] == ATTACH_STDIN_EOF)
        c->gives_input = 1;
    switch (frame[0]) {
    case ATTACH_STDIN:
        /* in_buf is empty: we read clients only then (but at the end) */
        if ((in_fd >= 0 || in_fd == IN_PTY_PENDING) && len > 0 && in_len == 0) {
            memcpy(in_buf, data, len);
            in_len = len;
            flush_stdin(); /* keeps it until the pty comes */
        }
        break;
    case ATTACH_STDIN_EOF:
        if (stdin_once && !tty && in_fd >= 0) {
            close(in_fd);
            in_fd = -1;
        }
        break;
    case ATTACH_RESIZE:
        if (len == 2 * sizeof(uint16_t)) {
            uint16_t rc[2];
            memcpy(rc, data, sizeof rc);
            winsize = (struct winsize){ .ws_row = rc[0], .ws_col = rc[1] };
            have_winsize = 1;
            if (master >= 0)
                ioctl(master, TIOCSWINSZ, &winsize);
        }
        break;
    case ATTACH_DETACH:
        c->detached = 1;
        break;
    case ATTACH_CLEANED:
        if (c->primary)
            cleaned = 1;
        break;
    }
}

static struct client *add_client(int fd, int primary)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].fd < 0) {
            int size = CLIENT_SNDBUF;
            if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            clients[i] = (struct client){ .fd = fd, .primary = primary,
                                          .gives_input = primary && stdin_once };
            return &clients[i];
        }
    }
    close(fd); /* full: that client sees EOF at once */
    return NULL;
}

/* Stop reading one of the container's streams (at EOF, or at its end). */
static void close_stream(struct stream *s)
{
    if (s->fd == master) {
        if (in_fd == master)
            in_fd = -1, in_len = 0;
        master = -1;
    }
    close(s->fd);
    s->fd = -1;
}

/* A container without a PID namespace of its own (--pid host) has ended
 * when its PID 1 has: only a namespace's end makes the kernel kill the
 * rest, so a process left behind could hold the output open for ever
 * (finish's cgroup kill ends it).  Pass on what is written already, a
 * bounded amount, log a partial last line, and stop reading. */
static void drain_after_exit(int log)
{
    for (int n = 0; n < DRAIN_READS; n++) {
        struct pollfd pfd[2];
        for (int i = 0; i < 2; i++)
            pfd[i] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
        if (poll(pfd, 2, 0) <= 0)
            break;
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0 && pfd[i].revents && !pump(&streams[i], log))
                close_stream(&streams[i]);
    }
    for (int i = 0; i < 2; i++) {
        if (streams[i].fd < 0)
            continue;
        if (streams[i].used)
            log_line(log, streams[i].name, streams[i].buf, streams[i].used);
        streams[i].used = 0;
        close_stream(&streams[i]);
    }
}

/* The container's life: move bytes until it has exited and its output
 * has reached EOF.  pfd slots: the two streams, console, pidfd, listen,
 * stdin, then the clients. */
static void supervise(int console, int pidfd, int listener, int log)
{
    int exited = pidfd < 0; /* no pidfd (before 5.3): until the output ends */
    struct pollfd pfd[6 + MAX_CLIENTS];
    while (!exited || streams[0].fd >= 0 || streams[1].fd >= 0 || console >= 0) {
        for (int i = 0; i < 2; i++)
            pfd[i] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
        pfd[2] = (struct pollfd){ .fd = console, .events = POLLIN };
        pfd[3] = (struct pollfd){ .fd = exited ? -1 : pidfd, .events = POLLIN };
        pfd[4] = (struct pollfd){ .fd = listener, .events = POLLIN };
        pfd[5] = (struct pollfd){ .fd = in_len ? in_fd : -1, .events = POLLOUT };
        for (int i = 0; i < MAX_CLIENTS; i++) {
            /* While stdin is full, clients wait (their own sends block,
             * never the container's output), hangups and notes too: a
             * hung-up client polled then would wake us without end. */
            short ev = in_len ? 0 : POLLIN | (clients[i].dropped ? POLLOUT : 0);
            pfd[6 + i] = (struct pollfd){ .fd = ev ? clients[i].fd : -1, .events = ev };
        }
        /* Only up to the last client in use: poll refuses (EINVAL) more
         * entries than RLIMIT_NOFILE, and a `bocker run` with a low limit
         * hands us its own. */
        nfds_t used = 6 + MAX_CLIENTS;
        while (used > 6 && clients[used - 7].fd < 0)
            used--;
        if (poll(pfd, used, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (streams[i].fd >= 0 && pfd[i].revents && !pump(&streams[i], log))
                close_stream(&streams[i]);
        }
        if (console >= 0 && pfd[2].revents) {
            receive_master(console);
            close(console);
            console = -1;
        }
        if (pfd[3].revents)
            exited = 1;
        if (exited && shared_pid) {
            drain_after_exit(log);
            return;
        }
        if (pfd[4].revents & POLLIN) {
            int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                add_client(fd, 0);
        }
        if (pfd[5].revents)
            flush_stdin();
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            short rev = pfd[6 + i].revents;
            if (c->fd < 0 || !rev)
                continue;
            if ((rev & POLLOUT) && c->dropped)
                tell_dropped(c);
            /* (one client's input may have filled stdin just now) */
            if (c->fd >= 0 && (rev & (POLLIN | POLLHUP | POLLERR)) && !in_len)
                client_message(c);
        }
    }
}

/* The container's exit code, Docker-style: SIGNAL_BASE+N for signal N. */
static int reap_container(pid_t pid)
{
    int status = 0;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0)
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

/* exit.json, written to a temporary name and renamed into place: atomic,
 * not durable (no fsync, as all container state: on btrfs a flush costs
 * milliseconds, and this is on every attached run's path). */
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
    close(fd);
    rename(tmp, path);
}

/* The exit code to every client.  Others get one try (one that misses it
 * reads the record instead); the starter, if still there, gets it for
 * sure, and then we wait for its ATTACH_CLEANED or its going away. */
static void announce_exit(int32_t code)
{
    struct client *starter = NULL;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (c->fd < 0)
            continue;
        c->detached = 1; /* stdin is gone: nothing to close at its end */
        if (c->primary) {
            starter = c;
            continue;
        }
        send_msg(c->fd, ATTACH_EXIT, &code, sizeof code);
        drop_client(c);
    }
    if (!starter)
        return;
    int sent = 0;
    while (starter->fd >= 0 && !cleaned) {
        struct pollfd p = { .fd = starter->fd, .events = POLLIN | (sent ? 0 : POLLOUT) };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return;
        if (!sent && (p.revents & POLLOUT)) {
            if (starter->dropped)
                tell_dropped(starter);
            if (starter->fd >= 0 && !starter->dropped &&
                send_msg(starter->fd, ATTACH_EXIT, &code, sizeof code) == 0)
                sent = 1;
        }
        if (starter->fd >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
            client_message(starter);
    }
}

/* The caller's fd limit is not the monitor's: a `bocker run` started
 * with a low RLIMIT_NOFILE hands over fds numbered near it, and the log,
 * the clients and the cleanup must still get theirs.  Root may raise the
 * hard limit (CAP_SYS_RESOURCE); if that is refused, the soft one. */
static void own_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) < 0 || lim.rlim_cur >= MONITOR_NOFILE)
        return;
    struct rlimit want = { MONITOR_NOFILE, lim.rlim_max > MONITOR_NOFILE ? lim.rlim_max
                                                                          : MONITOR_NOFILE };
    if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

int main(int argc, char **argv)
{
    if (argc < 14) {
        fprintf(stderr, "usage: %s PID PIDFD OUT ERR CONSOLE STDIN LISTEN CLIENT MODE "
                "LOG EXIT_JSON OOM_FILE|- SOCKET [CLEANUP...]\n", argv[0]);
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    int pidfd = atoi(argv[2]);
    int console = atoi(argv[5]), listener = atoi(argv[7]), starter = atoi(argv[8]);
    tty = strchr(argv[9], 't') != NULL;
    stdin_once = strchr(argv[9], 'o') != NULL;
    shared_pid = strchr(argv[9], 'p') != NULL;
    in_fd = atoi(argv[6]);
    if (tty && strchr(argv[9], 'i'))
        in_fd = IN_PTY_PENDING;
    streams[0] = (struct stream){ .fd = atoi(argv[3]), .type = ATTACH_STDOUT,
                                  .name = LOG_STDOUT };
    streams[1] = (struct stream){ .fd = atoi(argv[4]), .type = ATTACH_STDERR,
                                  .name = LOG_STDERR };
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    signal(SIGPIPE, SIG_IGN);
    own_fd_limit();
    /* Hold no directory of the caller's busy (an unmount would fail). */
    if (chdir("/") < 0)
        return SHIM_EXIT_RUNTIME;
    if (pidfd < 0)
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    int log = open(argv[10], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { /* detach from whatever terminal started us */
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    if (in_fd >= 0)
        fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
    if (starter >= 0)
        add_client(starter, 1);

    supervise(console, pidfd, listener, log);
    if (log >= 0)
        close(log);

    int code = reap_container(pid);
    int oom = strcmp(argv[12], "-") != 0 && oom_killed(argv[12]);
    if (listener >= 0)
        close(listener);
    unlink(argv[13]); /* new attaches fail: the container is stopped */
    if (in_fd >= 0 && in_fd != master)
        close(in_fd);
    in_fd = -1, in_len = 0;
    write_exit(argv[11], code, oom);
    announce_exit(code);
    if (argc > 14 && !cleaned)
        execv(argv[14], argv + 14);
    return 0;
}
