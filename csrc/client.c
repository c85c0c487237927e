/* bocker - the small native client of the warm bocker server (issue 16).
 *
 * Interpreter start and bocker's imports cost ~58 ms of a 70 ms CLI start;
 * a pre-imported server pays them once.  This program hands the server
 * everything a command's process state is made of (argv, environment,
 * umask, rlimits, cwd, fds 0 1 2 over SCM_RIGHTS), forwards its signals
 * and ends as the worker ended: the same exit code, or death by the same
 * signal.  Whenever there is no usable server it execs the Python CLI
 * ($BIN/bocker-py) with the same argv, so behaviour never depends on the
 * server being there (docs/architecture.md, "The CLI").
 *
 *   $BIN         dirname of /proc/self/exe
 *   socket       $BOCKER_SERVER_DIR (default /run/bocker)/cli-<FNV-1a of $BIN>.sock
 *   fallback     $BIN/bocker-py; first use also spawns $BIN/bocker-server
 *
 * Wire format (little-endian u32s):
 *   request  "BKR1" proto=1 payload_len fd_mask, payload; the fds named in
 *            fd_mask (bit i: fd i, bit 3: cwd) ride on the first sendmsg,
 *            in order 0 1 2 cwd.  payload: NUL-terminated records
 *            A<arg> E<NAME=VALUE> U<octal umask> L<res>:<soft>:<hard>
 *   replies  8 bytes: type(u8) 0 0 0 value(i32): S pid, X code, Q signo,
 *            R reason; after S the client sends K signo the same way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "formats.h"   /* the exit codes: SHIM_EXIT_* */

#define PROTO_VERSION 1
#define MAX_PAYLOAD (4u << 20)   /* the server refuses more */
#define NUM_RLIMITS 16           /* RLIMIT 0..15, as the wire format says */
#define CWD_BIT 3
#define DEFAULT_SERVER_DIR "/run/bocker"
#define SERVER_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SERVER_GONE "bocker: the bocker server went away\n"
#define EXIT_GONE SHIM_EXIT_RUNTIME   /* as the Python CLI's runtime failures */

extern char **environ;

/* Where this program lives and what it talks to, found once in main(). */
struct paths {
    char bindir[PATH_MAX];
    char fallback[PATH_MAX];    /* $BIN/bocker-py */
    char server[PATH_MAX];      /* $BIN/bocker-server */
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int trace_on;            /* BOCKER_TRACE=json */
static int sig_pipe[2] = {-1, -1};

/* The signals forwarded to the worker once it runs (SIGTSTP apart). */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1,
                                SIGUSR2, SIGCONT, SIGALRM, SIGTSTP};

/* ------------------------------------------------------------ helpers */

/* CLOCK_MONOTONIC in microseconds (trace.py's clock). */
static long long now_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return 0;
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The 64-bit FNV-1a hash of N bytes; bocker.server.address computes the
 * same.  Not static: tests/unit/test_client_build.py calls it through a
 * shared-object build of this file. */
uint64_t bocker_fnv1a64(const char *data, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)data[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Write all of BUF to FD, retrying on EINTR and short writes; to a
 * socket with send(MSG_NOSIGNAL), so a server gone is an error returned,
 * not a SIGPIPE. */
static int put_all(int fd, const void *buf, size_t n, int is_socket)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    return put_all(fd, buf, n, 0);
}

/* Append S to the JSON line in BUF (at *LEN, capacity CAP) as a JSON
 * string: quotes, backslash and control/non-ASCII bytes escaped (\u00XX,
 * one per byte: a path need not be UTF-8).  Truncates at CAP. */
static void json_string(char *buf, size_t *len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (*len + 1 < cap)
        buf[(*len)++] = '"';
    for (; *s && *len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(buf + *len, "\\u00", 4);
            buf[*len + 4] = hex[c >> 4];
            buf[*len + 5] = hex[c & 15];
            *len += 6;
        } else {
            buf[(*len)++] = (char)c;
        }
    }
    if (*len + 1 < cap)
        buf[(*len)++] = '"';
}

/* Print one trace.py JSON record on stderr when BOCKER_TRACE=json:
 * {"step","args","result","errno","start_us","dur_us","pid"}.  ARG_NAME
 * and ARG (a string) make the one argument, if ARG_NAME is not NULL;
 * HAS_RESULT says whether RESULT is a number or null. */
static void trace(const char *step, const char *arg_name, const char *arg, int has_result,
                  long long result, int err, long long start, long long end)
{
    char line[PATH_MAX + 512];
    size_t len = 0;
    int n;

    if (!trace_on)
        return;
    len += (size_t)snprintf(line, sizeof(line), "{\"step\": ");
    json_string(line, &len, sizeof(line), step);
    len += (size_t)snprintf(line + len, sizeof(line) - len, ", \"args\": {");
    if (arg_name) {
        json_string(line, &len, sizeof(line), arg_name);
        if (len + 2 < sizeof(line)) {
            line[len++] = ':';
            line[len++] = ' ';
        }
        json_string(line, &len, sizeof(line), arg);
    }
    if (has_result)
        n = snprintf(line + len, sizeof(line) - len, "}, \"result\": %lld", result);
    else
        n = snprintf(line + len, sizeof(line) - len, "}, \"result\": null");
    if (n < 0 || (size_t)n >= sizeof(line) - len)
        return;
    len += (size_t)n;
    n = snprintf(line + len, sizeof(line) - len,
                 ", \"errno\": %d, \"start_us\": %lld, \"dur_us\": %lld, \"pid\": %d}\n",
                 err, start, end - start, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(line) - len)
        return;
    (void)write_all(2, line, len + (size_t)n);   /* tracing never changes the outcome */
}

/* ------------------------------------------------------------- steps */

/* Step 0: $BIN from /proc/self/exe, and the paths made from it.  The
 * kernel's link is already canonical, as Python's realpath of its bin dir
 * is (so both hash the same string). */
static int find_paths(struct paths *p)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;
    const char *dir = getenv("BOCKER_SERVER_DIR");
    int w;

    if (n < 0)
        return -errno;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return -EINVAL;
    *slash = '\0';
    if (slash == exe)          /* a client in / itself */
        strcpy(exe, "/");
    memcpy(p->bindir, exe, strlen(exe) + 1);
    if (!dir || !*dir)
        dir = DEFAULT_SERVER_DIR;
    w = snprintf(p->fallback, sizeof(p->fallback), "%s/bocker-py",
                 strcmp(exe, "/") ? exe : "");
    if (w < 0 || (size_t)w >= sizeof(p->fallback))
        return -ENAMETOOLONG;
    w = snprintf(p->server, sizeof(p->server), "%s/bocker-server",
                 strcmp(exe, "/") ? exe : "");
    if (w < 0 || (size_t)w >= sizeof(p->server))
        return -ENAMETOOLONG;
    w = snprintf(p->socket, sizeof(p->socket), "%s/cli-%016" PRIx64 ".sock", dir,
                 bocker_fnv1a64(p->bindir, strlen(p->bindir)));
    if (w < 0 || (size_t)w >= sizeof(p->socket))
        return -ENAMETOOLONG;
    return 0;
}

/* The fallback: become the Python CLI with the same argv.  Only returns
 * if that exec failed (then the caller reports it). */
static void run_fallback(const struct paths *p, char **argv)
{
    execv(p->fallback, argv);
}

/* Step 1: which of fds 0 1 2 are open, asked before this program opens
 * any fd itself (a closed 0 would otherwise be reused by our socket). */
static unsigned open_std_fds(void)
{
    unsigned mask = 0;
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            mask |= 1u << fd;
    return mask;
}

/* Step 3: connect to the server; returns the socket or -errno.  The
 * server must run as our euid (SO_PEERCRED): anything else listening
 * there is not ours to hand fds to. */
static int connect_server(const struct paths *p)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    int fd, err;

    memcpy(addr.sun_path, p->socket, strlen(p->socket) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EISCONN)   /* an interrupted connect that completed */
            break;
        err = -errno;
        close(fd);
        return err;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    if (cred.uid != geteuid()) {
        close(fd);
        return -EPERM;
    }
    return fd;
}

/* Step 3 (no server yet): start one in the background, detached from our
 * session and stdio, with a clean environment, signals and fds; the
 * middle process exits at once and is reaped here, so the server is
 * nobody's child.  The command at hand still runs through the fallback. */
static void spawn_server(const struct paths *p)
{
    char *const server_argv[] = {"bocker-server", (char *)p->socket, NULL};
    char *const server_env[] = {SERVER_PATH_ENV, NULL};
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return;
    if (pid == 0) {
        if (setsid() < 0 || fork() != 0)
            _exit(0);                       /* the middle process, or no grandchild */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        sigset_t none;
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
            _exit(SHIM_EXIT_NOT_FOUND);
        /* nothing of our caller's (a test harness's pipe...) outlives it */
        if (close_range(3, ~0U, 0) < 0)
            _exit(SHIM_EXIT_NOT_FOUND);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);             /* EINVAL for SIGKILL etc.: fine */
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0 || chdir("/") < 0)
            _exit(SHIM_EXIT_NOT_FOUND);
        execve(p->server, server_argv, server_env);
        _exit(SHIM_EXIT_NOT_FOUND);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

/* Append one NUL-terminated record (TAG, then TEXT) to the payload; -E2BIG
 * past MAX_PAYLOAD. */
static int add_record(char *buf, size_t *len, char tag, const char *text)
{
    size_t n = strlen(text);
    if (n + 2 > MAX_PAYLOAD - *len)
        return -E2BIG;
    buf[(*len)++] = tag;
    memcpy(buf + *len, text, n + 1);
    *len += n + 1;
    return 0;
}

/* Step 4a: the payload: argv, environ, umask, rlimits 0..15.  Returns its
 * length, or -errno (-E2BIG: too big for the server). */
static ssize_t build_payload(char *buf, char **argv)
{
    char text[64];
    size_t len = 0;
    mode_t mask = umask(0);
    int err;

    (void)umask(mask);  /* only a read (umask cannot fail); single-threaded, so no window */
    for (char **a = argv; *a; a++)
        if ((err = add_record(buf, &len, 'A', *a)) < 0)
            return err;
    for (char **e = environ; e && *e; e++)
        if ((err = add_record(buf, &len, 'E', *e)) < 0)
            return err;
    snprintf(text, sizeof(text), "%o", (unsigned)mask);
    if ((err = add_record(buf, &len, 'U', text)) < 0)
        return err;
    for (int r = 0; r < NUM_RLIMITS; r++) {
        struct rlimit rl;
        char soft[24], hard[24];
        if (getrlimit((__rlimit_resource_t)r, &rl) < 0)
            return -errno;
        if (rl.rlim_cur == RLIM_INFINITY)
            strcpy(soft, "-1");
        else
            snprintf(soft, sizeof(soft), "%llu", (unsigned long long)rl.rlim_cur);
        if (rl.rlim_max == RLIM_INFINITY)
            strcpy(hard, "-1");
        else
            snprintf(hard, sizeof(hard), "%llu", (unsigned long long)rl.rlim_max);
        snprintf(text, sizeof(text), "%d:%s:%s", r, soft, hard);
        if ((err = add_record(buf, &len, 'L', text)) < 0)
            return err;
    }
    return (ssize_t)len;
}

/* Store V little-endian at P. */
static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static int send_all(int sock, const void *buf, size_t n)
{
    return put_all(sock, buf, n, 1);
}

/* Step 4b: send header + payload, the fds of FD_MASK (and CWD) riding on
 * the first sendmsg; the rest of a long payload follows with send(). */
static int send_request(int sock, const char *payload, size_t len, unsigned fd_mask, int cwd)
{
    unsigned char header[16];
    int fds[4], nfds = 0;
    union {
        char buf[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } control;
    struct iovec iov[2] = {{header, sizeof(header)}, {(void *)payload, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2,
                         .msg_control = control.buf};
    struct cmsghdr *cmsg;
    ssize_t sent;
    int err;

    memcpy(header, "BKR1", 4);
    put_u32(header + 4, PROTO_VERSION);
    put_u32(header + 8, (uint32_t)len);
    put_u32(header + 12, fd_mask | (1u << CWD_BIT));
    for (int fd = 0; fd < 3; fd++)
        if (fd_mask & (1u << fd))
            fds[nfds++] = fd;
    fds[nfds++] = cwd;
    memset(&control, 0, sizeof(control));
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nfds);
    while ((sent = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (sent < 0)
        return -errno;
    /* a stream socket may take less at once: the rest follows, fd-less */
    if ((size_t)sent < sizeof(header)) {
        if ((err = send_all(sock, header + sent, sizeof(header) - (size_t)sent)) < 0)
            return err;
        sent = sizeof(header);
    }
    sent -= (ssize_t)sizeof(header);
    return send_all(sock, payload + sent, len - (size_t)sent);
}

/* Read one 8-byte reply: 1 (with *TYPE and *VALUE set), 0 at EOF (also mid-reply),
 * or -errno. */
static int read_reply(int sock, char *type, int32_t *value)
{
    unsigned char r[8];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = recv(sock, r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        got += (size_t)n;
    }
    *type = (char)r[0];
    *value = (int32_t)((uint32_t)r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16 |
                       (uint32_t)r[7] << 24);
    return 1;
}

/* Send one 'K' (kill) message.  A server already gone shows as EOF on the
 * next read, so a failure here is not an error of its own. */
static void send_kill(int sock, int signo)
{
    unsigned char k[8] = {'K', 0, 0, 0};
    put_u32(k + 4, (uint32_t)signo);
    (void)send_all(sock, k, sizeof(k));
}

/* The handler of every forwarded signal: one byte into the self-pipe. */
static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    (void)!write(sig_pipe[1], &b, 1);   /* a full pipe drops it: nothing to do */
    errno = saved;
}

/* Step 6a: catch the forwarded signals into a non-blocking self-pipe. */
static int catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (sigaction(forwarded[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}

/* Step 7 ('Q'): die of SIGNO as the worker did, so our parent (a shell)
 * sees the same status; 128+SIGNO if that did not kill us. */
static void die_by_signal(int signo)
{
    struct rlimit no_core = {0, 0};
    sigset_t set;

    /* each step is best effort: should one fail, the exit below still
     * tells a shell which signal it was */
    if (signo > 0 && signo < NSIG) {
        (void)setrlimit(RLIMIT_CORE, &no_core);  /* a core of the client tells nothing */
        (void)signal(signo, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, signo);
        (void)sigprocmask(SIG_UNBLOCK, &set, NULL);
        (void)raise(signo);
    }
    exit(SHIM_EXIT_SIGNAL_BASE + (signo & 0x7f));
}

/* Step 6b: the pending signals in the self-pipe, forwarded; SIGTSTP stops
 * the worker (SIGSTOP, as it cannot be caught there either) and then us. */
static void forward_signals(int sock)
{
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(sig_pipe[0], sigs, sizeof(sigs))) > 0 || (n < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGTSTP) {
                send_kill(sock, SIGSTOP);
                (void)raise(SIGSTOP);   /* cannot fail for a valid signal */
            } else {
                send_kill(sock, sigs[i]);
            }
        }
    }
}

/* Steps 6-7: relay signals until the worker's end; never returns. */
static void wait_worker(int sock, long long sent_at)
{
    struct pollfd pfd[2] = {{.fd = sock, .events = POLLIN}, {.fd = sig_pipe[0], .events = POLLIN}};
    char type;
    int32_t value;
    int r;

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents & POLLIN)
            forward_signals(sock);
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        r = read_reply(sock, &type, &value);
        if (r <= 0)
            break;
        if (type == 'X' || type == 'Q') {
            trace("client wait", "reply", type == 'X' ? "X" : "Q", 1, value, 0, sent_at,
                  now_us());
            if (type == 'Q')
                die_by_signal(value);
            exit(value & 0xff);
        }
        /* any other reply after 'S' is ignored (a newer server's news) */
    }
    trace("client wait", NULL, NULL, 0, 0, EPIPE, sent_at, now_us());
    (void)write_all(2, SERVER_GONE, sizeof(SERVER_GONE) - 1);
    exit(EXIT_GONE);
}

/* Steps 3-5: talk to the server; returns only when the command must run
 * through the fallback instead (no server, refused, a protocol error). */
static void try_server(const struct paths *p, char **argv, unsigned fd_mask, long long t_main)
{
    long long t_connect = now_us(), t_request, t_sent;
    static char payload[MAX_PAYLOAD];   /* bss: only the pages used are touched */
    ssize_t len = 0;
    int sock, cwd, err = 0;
    char type;
    int32_t value;

    trace("client start", "bindir", p->bindir, 0, 0, 0, t_main, t_connect);
    sock = connect_server(p);
    trace("client connect", "path", p->socket, sock >= 0, sock, sock < 0 ? -sock : 0,
          t_connect, now_us());
    if (sock == -ENOENT || sock == -ECONNREFUSED)
        spawn_server(p);
    if (sock < 0)
        return;
    t_request = now_us();
    cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        err = -errno;
    if (!err && (len = build_payload(payload, argv)) < 0)
        err = (int)len;
    if (!err)
        err = send_request(sock, payload, (size_t)len, fd_mask, cwd);
    if (cwd >= 0)
        close(cwd);
    t_sent = now_us();
    trace("client request", NULL, NULL, 0, 0, -err, t_request, t_sent);
    /* 'S' first: anything else before it (R, EOF, junk) means fallback */
    if (err == 0 && read_reply(sock, &type, &value) == 1 && type == 'S') {
        /* The worker runs now: catch the signals to forward.  One arriving
         * in the microseconds before this has its default action here (for
         * SIGINT: we die, the server sees EOF and kills the worker), as it
         * would early in the Python CLI's start.  Should catching fail,
         * still wait for the worker: only forwarding is lost. */
        (void)catch_signals();
        wait_worker(sock, t_sent);
    }
    close(sock);
}

int main(int argc, char **argv)
{
    long long t_main = now_us();
    const char *no_server = getenv("BOCKER_NO_SERVER");
    const char *tr = getenv("BOCKER_TRACE");
    unsigned fd_mask = open_std_fds();
    static struct paths p;
    int err;

    (void)argc;
    trace_on = tr && strcmp(tr, "json") == 0;
    if ((err = find_paths(&p)) < 0) {
        fprintf(stderr, "bocker: cannot find my own directory: %s\n", strerror(-err));
        return SHIM_EXIT_NOT_FOUND;
    }
    if (!(no_server && *no_server) && geteuid() == 0)
        try_server(&p, argv, fd_mask, t_main);
    run_fallback(&p, argv);
    fprintf(stderr, "bocker: cannot run %s: %s\n", p.fallback, strerror(errno));
    return SHIM_EXIT_NOT_FOUND;
}
