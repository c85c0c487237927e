/*
 * floor.c - the kernel floor for starting /bin/true in a container.
 *
 * The least a container runtime must do: clone into new namespaces, make
 * the mounts private, pivot_root into the rootfs, mount /proc and execve.
 * Nothing else (no cgroup, no snapshot, no network set-up, no checks), so
 * no runtime can start a container faster than this on the same machine.
 *
 *   floor fork-exec ROOTFS   fork + execve ROOTFS/bin/true, no namespaces
 *   floor ns ROOTFS          clone(NEWNS|NEWUTS|NEWIPC|NEWPID) + pivot_root
 *   floor ns-net ROOTFS      the same plus NEWNET (an empty network namespace)
 *
 * Exit status: the child's, or 125 if a step failed (message on stderr).
 * benchmarks/floor.py compiles it at run time into a temp directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;
static char *const true_argv[] = {"/bin/true", NULL};
static char *const true_envp[] = {"PATH=/bin:/sbin", NULL};

/* Report the failed step and leave; the parent maps it to 125. */
static void die(const char *step)
{
	fprintf(stderr, "floor: %s: %s\n", step, strerror(errno));
	_exit(125);
}

/* The container side: runs in the new namespaces until execve. */
static int container_child(void *arg)
{
	(void)arg;
	/* Private first, so nothing below propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("make / private");
	/* pivot_root needs the new root to be a mount point. */
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind rootfs");
	if (chdir(rootfs) < 0)
		die("chdir rootfs");
	/* pivot_root(".", ".") stacks the old root under the new one. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		die("detach old root");
	if (chdir("/") < 0)
		die("chdir /");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("mount /proc");
	execve(true_argv[0], true_argv, true_envp);
	die("execve /bin/true");
	return 125;
}

static int wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int fork_exec(void)
{
	char path[4096];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/bin/true", rootfs);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(path, true_argv, true_envp);
		die("execve");
	}
	return wait_for(pid);
}

static int clone_container(int flags)
{
	const size_t stack_size = 64 * 1024;
	char *stack = malloc(stack_size);
	pid_t pid;

	if (!stack)
		die("malloc");
	pid = clone(container_child, stack + stack_size, flags | SIGCHLD, NULL);
	if (pid < 0)
		die("clone");
	return wait_for(pid);
}

int main(int argc, char **argv)
{
	const int base = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;

	if (argc != 3) {
		fprintf(stderr, "usage: floor fork-exec|ns|ns-net ROOTFS\n");
		return 2;
	}
	rootfs = argv[2];
	if (strcmp(argv[1], "fork-exec") == 0)
		return fork_exec();
	if (strcmp(argv[1], "ns") == 0)
		return clone_container(base);
	if (strcmp(argv[1], "ns-net") == 0)
		return clone_container(base | CLONE_NEWNET);
	fprintf(stderr, "floor: unknown mode %s\n", argv[1]);
	return 2;
}
