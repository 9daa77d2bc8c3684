/*
 * The helpers the monitor runs (berth internal create, exit, healthcheck:
 * the heavy Go code, never resident here), what they report back, and the
 * exit record.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* spawn starts cfg.berth with argv and exactly fds[0..nfds) as its fds 0,
 * 1, ... (-1: closed; fd 0 -1 is /dev/null), waited for with wait_pid.
 * Every other fd of the monitor is close-on-exec, so none reaches the
 * helper (nor, through it, the container). It returns -1, logged, when the
 * program could not be started: a pipe tells the exec's failure back. */
pid_t spawn(const char *const argv[], const int fds[], int nfds)
{
	int errp[2], null = -1;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		logmsg("start %s: pipe: %s", cfg.berth, strerror(errno));
		return -1;
	}
	if (fds[0] < 0 && (null = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		logmsg("start %s: open /dev/null: %s", cfg.berth, strerror(errno));
		close(errp[0]);
		close(errp[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int tmp[16], err;
		if (nfds > 16)
			_exit(127);
		/* First out of the way (a source may be another's target), then
		 * in place; dup2 leaves the target without close-on-exec. */
		for (int i = 0; i < nfds; i++) {
			int src = i == 0 && fds[0] < 0 ? null : fds[i];
			tmp[i] = src < 0 ? -1 : fcntl(src, F_DUPFD_CLOEXEC, nfds);
			if (src >= 0 && tmp[i] < 0)
				goto fail;
		}
		for (int i = 0; i < nfds; i++) {
			if (tmp[i] < 0)
				close(i);
			else if (dup2(tmp[i], i) < 0)
				goto fail;
		}
		/* The monitor's signal state is not the helper's: SIGCHLD is
		 * blocked here (signalfd), SIGPIPE ignored; both are inherited
		 * through exec, and the container's init would inherit them. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(cfg.berth, (char *const *)argv, environ);
	fail:
		err = errno;
		if (write(errp[1], &err, sizeof err) < 0)
			_exit(126);
		_exit(127);
	}
	int saved = errno;
	if (null >= 0)
		close(null);
	close(errp[1]);
	if (pid < 0) {
		logmsg("start %s: fork: %s", cfg.berth, strerror(saved));
		close(errp[0]);
		return -1;
	}
	int err = 0;
	ssize_t r;
	while ((r = read(errp[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(errp[0]);
	if (r > 0) {
		logmsg("start %s: %s", cfg.berth, strerror(err));
		int st;
		wait_pid(pid, &st);
		return -1;
	}
	return pid;
}

/* wait_pid waits for pid (a child, or an orphan adopted as subreaper). */
pid_t wait_pid(pid_t pid, int *status)
{
	pid_t r;
	while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		logmsg("waitpid %d: %s", (int)pid, strerror(errno));
	return r;
}

/* status_code is a status as a shell reports it: the code, or 128+N. */
int status_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

const char *describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by %s", strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	return buf;
}

#define MAX_REPORT (64 * 1024)
#define SCM_MAX_FD 253 /* the most descriptors one sendmsg carries */

/* read_report reads the one line internal create sends (without its
 * newline, malloc'd) with the files it attaches (published ports,
 * slirp4netns's pipe) into held; NULL, logged, when there is none. The
 * control buffer has room for as many descriptors as one message can
 * carry: with less, the kernel closes the rest (MSG_CTRUNC), and the ports
 * they are lose their reservation. */
char *read_report(int sock, int *held, int *nheld, int maxheld)
{
	char *line = malloc(MAX_REPORT + 1);
	union {
		char buf[CMSG_SPACE(SCM_MAX_FD * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	size_t len = 0;
	*nheld = 0;
	if (!line) {
		logmsg("internal create: out of memory");
		return NULL;
	}
	for (;;) {
		struct iovec iov = {line + len, MAX_REPORT - len};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			logmsg("internal create: recvmsg: %s", strerror(errno));
			goto fail;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int *fds = (int *)(void *)CMSG_DATA(c);
			for (int i = 0; i < k; i++) {
				if (*nheld < maxheld)
					held[(*nheld)++] = fds[i];
				else
					close(fds[i]);
			}
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			logmsg("internal create: the report's files were cut short (MSG_CTRUNC)");
			goto fail;
		}
		if (n == 0) {
			logmsg("internal create: no report (end of file)");
			goto fail;
		}
		char *nl = memchr(line + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = 0;
			return line;
		}
		if (len >= MAX_REPORT) {
			logmsg("internal create: report too long");
			goto fail;
		}
	}
fail:
	free(line);
	return NULL;
}

/* recv_fd receives the terminal's master that the init sent over the
 * console socket. It did before it said it was ready, and internal create
 * has exited since: the message waits, so this never blocks. */
int recv_fd(int sock)
{
	char byte[256];
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {byte, sizeof byte};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		logmsg("receive the terminal: %s", strerror(errno));
		return -1;
	}
	int fd = -1, count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *fds = (int *)(void *)CMSG_DATA(c);
		for (int i = 0; i < k; i++, count++) {
			if (fd < 0)
				fd = fds[i];
			else
				close(fds[i]);
		}
	}
	if (count != 1 || (msg.msg_flags & MSG_CTRUNC)) {
		logmsg("receive the terminal: want one descriptor, got %d", count);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* write_exit writes the exit record the store reads (store.Exit:
 * {"exitCode":N,"finishedAt":"..."}), renamed into place. */
int write_exit(int code)
{
	char path[4096], tmp[4096], b[128], at[40];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	rfc3339nano(at, &now);
	int n = snprintf(b, sizeof b, "{\"exitCode\":%d,\"finishedAt\":\"%s\"}\n", code, at);
	if (snprintf(path, sizeof path, "%s/exit", cfg.live) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s/exit.tmp", cfg.live) >= (int)sizeof tmp) {
		logmsg("write %s/exit: path too long", cfg.live);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		logmsg("write %s: %s", tmp, strerror(errno));
		return -1;
	}
	ssize_t w;
	while ((w = write(fd, b, (size_t)n)) < 0 && errno == EINTR)
		;
	if (w != n) {
		logmsg("write %s: %s", tmp, w < 0 ? strerror(errno) : "short write");
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		logmsg("close %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (rename(tmp, path) < 0) {
		logmsg("rename %s to %s: %s", tmp, path, strerror(errno));
		return -1;
	}
	return 0;
}
