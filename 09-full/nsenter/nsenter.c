/*
 * Join the namespaces of a running process before the Go runtime starts.
 *
 * setns(2) refuses to move a multithreaded process into another user
 * namespace, mount namespace (it needs an fs_struct no other thread
 * shares) or time namespace, and by the time a Go main() runs the runtime
 * has started several threads. So the join happens here, in a constructor
 * that the C library runs before it calls the Go runtime's entry point,
 * while the process still has a single thread. See README.md.
 *
 * A binary that imports the package always runs this function; without
 * the environment variable it returns at once (one getenv).
 *
 * With it, this process is "stage 0": it reads its orders from the socket
 * the variable names (nsenter.h has the format), opens every namespace
 * file, joins them, then clones the final process with CLONE_PARENT (so
 * that the Go caller is its parent and can wait for it) and reports the
 * final process's pid. The final process waits for CONTINUE, which the
 * caller sends once it has put it in the container's cgroup, and then
 * returns from here: the Go runtime starts inside every namespace.
 *
 * Every failure is reported as an ERROR frame (what failed, and errno),
 * never only on stderr, so the caller can print one clear line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsenter.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080 /* Linux 5.6 */
#endif
#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE _IO(0xb7, 0x3) /* Linux 4.11 */
#endif

int berth_nsenter_fd = -1;

/* The socket to the caller: orders in, reports out. */
static int sock = -1;

/*
 * The kinds of namespace, in the order a pass joins them (see join_all).
 * Mount comes last, as nsenter(1) does it: nothing after it may need the
 * caller's filesystem. Every file is opened before the first join anyway,
 * because after joining a mount (or user) namespace a path such as
 * /proc/PID/ns/net would be looked up in the container, if it could be
 * opened at all.
 */
static struct ns {
	int flag;
	const char *name;
	int wanted; /* ordered by the caller and not already ours */
	int joined;
	int fd;
	char path[BERTH_NSENTER_MAX_PATH + 1];
} nss[] = {
	{ CLONE_NEWUSER, "user", 0, 0, -1, "" },
	{ CLONE_NEWCGROUP, "cgroup", 0, 0, -1, "" },
	{ CLONE_NEWIPC, "ipc", 0, 0, -1, "" },
	{ CLONE_NEWUTS, "uts", 0, 0, -1, "" },
	{ CLONE_NEWNET, "net", 0, 0, -1, "" },
	{ CLONE_NEWPID, "pid", 0, 0, -1, "" },
	{ CLONE_NEWTIME, "time", 0, 0, -1, "" },
	{ CLONE_NEWNS, "mnt", 0, 0, -1, "" },
};
#define NKINDS (sizeof(nss) / sizeof(nss[0]))

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_all returns 0 when it read n bytes, 1 on end of file before the
 * first byte (the caller is gone), -1 on an error or a short message. */
static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return got == 0 ? 1 : -1;
		got += (size_t)r;
	}
	return 0;
}

/* send_frame sends a header and up to two payload parts in one write. */
static int send_frame(uint32_t type, const void *a, uint32_t alen, const void *b, uint32_t blen)
{
	char buf[8 + BERTH_NSENTER_MAX_PAYLOAD];
	uint32_t hdr[2] = { type, alen + blen };
	if (alen + blen > BERTH_NSENTER_MAX_PAYLOAD)
		return -1;
	memcpy(buf, hdr, 8);
	if (alen)
		memcpy(buf + 8, a, alen);
	if (blen)
		memcpy(buf + 8 + alen, b, blen);
	return write_all(sock, buf, 8 + alen + blen);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	(void)send_frame(BERTH_NSENTER_MSG_LOG, text, (uint32_t)n, NULL, 0);
}

/* bail reports what failed (with err, an errno value, or 0) and exits. If
 * the caller cannot be told, stderr is the last resort. */
static void bail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void bail(int err, const char *fmt, ...)
{
	char text[BERTH_NSENTER_MAX_PATH + 128];
	uint32_t e = (uint32_t)err;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > BERTH_NSENTER_MAX_PAYLOAD - 4)
		n = BERTH_NSENTER_MAX_PAYLOAD - 4;
	if (sock < 0 || send_frame(BERTH_NSENTER_MSG_ERROR, &e, 4, text, (uint32_t)n) < 0) {
		if (err)
			fprintf(stderr, "berth-nsenter: %.*s: %s\n", n, text, strerror(err));
		else
			fprintf(stderr, "berth-nsenter: %.*s\n", n, text);
	}
	_exit(125);
}

static struct ns *kind_of(uint32_t flag)
{
	for (size_t i = 0; i < NKINDS; i++)
		if ((uint32_t)nss[i].flag == flag)
			return &nss[i];
	return NULL;
}

/* read_orders reads JOIN frames until START. */
static void read_orders(void)
{
	static char payload[BERTH_NSENTER_MAX_PAYLOAD];
	for (;;) {
		uint32_t hdr[2];
		int r = read_all(sock, hdr, sizeof(hdr));
		if (r == 1)
			_exit(125); /* the caller went away: no one to tell */
		if (r < 0)
			bail(errno, "read orders");
		if (hdr[1] > sizeof(payload))
			bail(0, "an order of %u bytes is longer than %d", hdr[1], BERTH_NSENTER_MAX_PAYLOAD);
		if (hdr[1] > 0 && read_all(sock, payload, hdr[1]) != 0)
			bail(errno, "read orders: short message");

		switch (hdr[0]) {
		case BERTH_NSENTER_MSG_JOIN: {
			uint32_t flag, len;
			if (hdr[1] < 5)
				bail(0, "JOIN without a path");
			len = hdr[1] - 4; /* <= BERTH_NSENTER_MAX_PATH: hdr[1] is bounded */
			memcpy(&flag, payload, 4);
			struct ns *ns = kind_of(flag);
			if (ns == NULL)
				bail(0, "JOIN of an unknown namespace kind %#x", flag);
			if (ns->wanted)
				bail(0, "JOIN %s twice", ns->name);
			if (memchr(payload + 4, '\0', len) != NULL)
				bail(0, "JOIN %s: the path holds a NUL byte", ns->name);
			memcpy(ns->path, payload + 4, len);
			ns->path[len] = '\0';
			ns->wanted = 1;
			break;
		}
		case BERTH_NSENTER_MSG_START: {
			uint32_t version;
			if (hdr[1] != 4)
				bail(0, "START of %u bytes", hdr[1]);
			memcpy(&version, payload, 4);
			if (version != BERTH_NSENTER_VERSION)
				bail(0, "protocol version %u, this binary speaks %d", version, BERTH_NSENTER_VERSION);
			return;
		}
		default:
			bail(0, "unexpected message type %u before START", hdr[0]);
		}
	}
}

static const char *name_of(int flag)
{
	struct ns *ns = kind_of((uint32_t)flag);
	return ns ? ns->name : "unknown";
}

/*
 * open_all opens every namespace file before anything is joined, checks it
 * is a namespace of the kind ordered, and drops those we are already in:
 * setns into one's own user namespace is an error (EINVAL), and joining a
 * namespace we share would need privileges over it that a rootless caller
 * may lack (the host's network namespace, say).
 */
static void open_all(void)
{
	for (size_t i = 0; i < NKINDS; i++) {
		struct ns *ns = &nss[i];
		if (!ns->wanted)
			continue;
		/* O_NONBLOCK: a FIFO named by mistake must not hang us. */
		ns->fd = open(ns->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (ns->fd < 0)
			bail(errno, "open %s namespace %s", ns->name, ns->path);
		int type = ioctl(ns->fd, NS_GET_NSTYPE);
		if (type < 0 && errno == ENOTTY)
			bail(0, "open %s namespace %s: not a namespace file", ns->name, ns->path);
		if (type >= 0 && type != ns->flag)
			bail(0, "open %s namespace %s: it is a %s namespace", ns->name, ns->path, name_of(type));

		struct stat want, have;
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/ns/%s", ns->name);
		if (fstat(ns->fd, &want) < 0)
			bail(errno, "stat %s", ns->path);
		if (stat(self, &have) == 0 && have.st_dev == want.st_dev && have.st_ino == want.st_ino) {
			say("%s: already there (%s)", ns->name, ns->path);
			close(ns->fd);
			ns->fd = -1;
			ns->wanted = 0;
		}
	}
}

/*
 * become_root makes us uid and gid 0 in the user namespace just joined.
 * setns leaves our ids as they were: for the host's root they are
 * unmapped in the container (they show as 65534), and what the process
 * creates would belong to no one there. The engine sets the container's
 * user later; it needs to start as the namespace's root to do so.
 * setgroups is refused (EPERM) where the namespace's owner wrote "deny"
 * to /proc/PID/setgroups, as an unprivileged mapping must: then the
 * supplementary groups stay as they are, which is all such a namespace
 * allows.
 */
static void become_root(void)
{
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		bail(errno, "setgroups() in the joined user namespace");
	if (setresgid(0, 0, 0) < 0)
		bail(errno, "setresgid(0) in the joined user namespace (is gid 0 mapped?)");
	if (setresuid(0, 0, 0) < 0)
		bail(errno, "setresuid(0) in the joined user namespace (is uid 0 mapped?)");
}

/*
 * join_pass joins the wanted namespaces of one group: the user namespace
 * alone (user != 0) or all the others. With tolerate, EPERM leaves a
 * namespace for a later pass instead of failing.
 */
static void join_pass(int user, int tolerate)
{
	for (size_t i = 0; i < NKINDS; i++) {
		struct ns *ns = &nss[i];
		if (!ns->wanted || ns->joined || (ns->flag == CLONE_NEWUSER) != (user != 0))
			continue;
		if (setns(ns->fd, ns->flag) < 0) {
			if (errno == EPERM && tolerate)
				continue;
			bail(errno, "setns %s %s", ns->name, ns->path);
		}
		ns->joined = 1;
		close(ns->fd);
		ns->fd = -1;
		say("joined %s %s", ns->name, ns->path);
		if (ns->flag == CLONE_NEWUSER)
			become_root();
	}
}

/*
 * join_all joins in three passes, as runc and nsenter(1) do:
 *
 *  1. every namespace but the user one, with the caller's own privileges.
 *     Root on the host may join anything here; a namespace owned by some
 *     other user namespace (a host network namespace a pod shares, say)
 *     can only be joined now, before we drop into the container's.
 *  2. the user namespace: from here on our capabilities are those of the
 *     container's root, valid only over what its user namespace owns.
 *  3. what pass 1 was not allowed to join. A rootless caller has no
 *     CAP_SYS_ADMIN on the host, so every join of pass 1 failed with
 *     EPERM; as the owner of the container's user namespace it has every
 *     capability inside once it is a member, and these joins succeed.
 */
static void join_all(void)
{
	join_pass(0, 1);
	join_pass(1, 0);
	join_pass(0, 0);
}

static void final_process(void);

__attribute__((constructor)) static void berth_nsenter(void)
{
	const char *v = getenv(BERTH_NSENTER_ENV);
	if (v == NULL)
		return; /* an ordinary start: nothing to do */

	char *end;
	errno = 0;
	long fd = strtol(v, &end, 10);
	struct stat st;
	if (errno != 0 || end == v || *end != '\0' || fd < 3 || fd > INT_MAX) {
		fprintf(stderr, "berth-nsenter: %s=%s is not a file descriptor\n", BERTH_NSENTER_ENV, v);
		_exit(125);
	}
	if (fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "berth-nsenter: %s=%s is not a socket\n", BERTH_NSENTER_ENV, v);
		_exit(125);
	}
	sock = (int)fd;

	/*
	 * Non-dumpable from the first instruction until the command's execve
	 * (which resets it): a process in the container, even its root, may
	 * then not ptrace us, nor open our /proc/PID/exe, fd/, mem or environ,
	 * while we hold the caller's files and run the caller's code. Joining
	 * a user namespace changes our credentials, and the kernel then sets
	 * the flag to fs.suid_dumpable: it is set again after the joins.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail(errno, "prctl(PR_SET_DUMPABLE, 0)");
	/* ps shows "3" (the memfd's fd number) otherwise. */
	(void)prctl(PR_SET_NAME, (unsigned long)"berth-nsenter", 0, 0, 0);

	read_orders();
	open_all();
	join_all();
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail(errno, "prctl(PR_SET_DUMPABLE, 0)");

	/*
	 * setns into a PID namespace changes only the namespace our children
	 * are created in: a process never changes its PID, so we stay where
	 * we are. So clone once more.
	 * CLONE_PARENT makes the new process a child of our parent, the Go
	 * caller, which can then wait for it and get its exit status without
	 * a subreaper or a process in between that forwards it. The raw
	 * system call, as Go's syscall package makes it: with no new stack
	 * the child continues on a copy of ours, like fork().
	 */
	long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) {
		if (errno == ENOMEM && kind_of(CLONE_NEWPID)->joined)
			bail(errno, "clone into the PID namespace (has its init exited?)");
		bail(errno, "clone the final process");
	}
	if (pid == 0) {
		final_process();
		return; /* the Go runtime starts */
	}
	int32_t p = (int32_t)pid;
	say("cloned the final process %ld", pid);
	if (send_frame(BERTH_NSENTER_MSG_PID, &p, 4, NULL, 0) < 0) {
		kill((pid_t)pid, SIGKILL);
		_exit(125);
	}
	_exit(0);
}

/*
 * final_process waits for the caller's CONTINUE: until then the caller
 * may move us into the container's cgroup, so that not one instruction of
 * the Go runtime, let alone of the command, runs outside it.
 */
static void final_process(void)
{
	uint32_t hdr[2];
	int r = read_all(sock, hdr, sizeof(hdr));
	if (r == 1)
		_exit(125); /* the caller gave up */
	if (r < 0)
		bail(errno, "read CONTINUE");
	if (hdr[0] != BERTH_NSENTER_MSG_CONTINUE || hdr[1] != 0)
		bail(0, "expected CONTINUE, got message type %u", hdr[0]);
	berth_nsenter_fd = sock;
}
