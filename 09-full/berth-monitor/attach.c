/*
 * The attach socket (attach.sock in the live directory): what the
 * container writes goes to every client attached, what they type to the
 * container's stdin. Frames as 09-full/attach's (Docker's stdcopy header:
 * kind, three zero bytes, big-endian length; then the payload). The server
 * never blocks on a client: one that falls MAX_QUEUED bytes behind is
 * dropped, and the container goes on writing (its log has everything).
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct client {
	int fd;
	int attached, closing; /* said hello; leaving once its queue is sent */
	int in_stdin, out_stdout, out_stderr, stdin_once;
	unsigned char hdr[8];
	size_t hdr_len;
	unsigned char *payload; /* the frame being read, allocated for it */
	size_t pay_len, pay_need;
	unsigned char *out; /* whole frames, waiting to be sent */
	size_t out_len, out_off, out_cap;
};

static struct {
	int fd;
	char path[4096];
	dev_t dev;
	ino_t ino;
	struct client *c[MAX_CLIENTS];
	int n;
} srv = {.fd = -1};

/* with_short_path calls bind or connect with a name for path that fits a
 * socket address (108 bytes): path itself, or, when longer,
 * /proc/self/fd/N/NAME through a descriptor of its directory, as conmon
 * does (a live directory under $XDG_RUNTIME_DIR with a 64-digit id). */
static int bind_short(int sock, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int dir = -1, r;
	if (strlen(path) < 100)
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	else {
		char d[4096];
		const char *slash = strrchr(path, '/');
		if (!slash || (size_t)(slash - path) >= sizeof d || strlen(slash + 1) > 60) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(d, path, (size_t)(slash - path));
		d[slash - path] = 0;
		dir = open(d[0] ? d : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dir < 0)
			return -1;
		snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dir, slash + 1);
	}
	r = bind(sock, (struct sockaddr *)&sa, sizeof sa);
	int saved = errno;
	if (dir >= 0)
		close(dir);
	errno = saved;
	return r;
}

/* srv_listen creates the socket at path, for its owner only (a monitor
 * that died left the old one: removed first). */
int srv_listen(const char *path)
{
	if (snprintf(srv.path, sizeof srv.path, "%s", path) >= (int)sizeof srv.path) {
		logmsg("listen on %s: path too long", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		logmsg("listen on %s: unlink: %s", path, strerror(errno));
		return -1;
	}
	srv.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv.fd < 0) {
		logmsg("listen on %s: socket: %s", path, strerror(errno));
		return -1;
	}
	/* Owner only from the start: no moment when others may connect. */
	mode_t old = umask(0177);
	int r = bind_short(srv.fd, path);
	int saved = errno;
	umask(old);
	struct stat st;
	if (r < 0) {
		logmsg("listen on %s: bind: %s", path, strerror(saved));
		goto fail;
	}
	if (listen(srv.fd, 16) < 0) {
		logmsg("listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	if (lstat(path, &st) < 0) {
		logmsg("stat %s: %s", path, strerror(errno));
		goto fail;
	}
	srv.dev = st.st_dev;
	srv.ino = st.st_ino;
	return 0;
fail:
	close(srv.fd);
	srv.fd = -1;
	return -1;
}

static void drop(int i)
{
	struct client *c = srv.c[i];
	close(c->fd);
	free(c->payload);
	free(c->out);
	free(c);
	srv.c[i] = srv.c[--srv.n];
}

/* queue appends a frame to c's queue; a client that would lag more than
 * MAX_QUEUED bytes behind is dropped (it returns -1). */
static int queue(struct client *c, int kind, const unsigned char *p, size_t n)
{
	size_t need = c->out_len - c->out_off + 8 + n;
	if (need > MAX_QUEUED)
		return -1;
	if (c->out_off > 0) { /* what was sent goes: the queue starts at 0 */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + 8 + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + 8 + n)
			cap *= 2;
		unsigned char *b = realloc(c->out, cap);
		if (!b)
			return -1;
		c->out = b;
		c->out_cap = cap;
	}
	unsigned char *h = c->out + c->out_len;
	h[0] = (unsigned char)kind;
	h[1] = h[2] = h[3] = 0;
	h[4] = (unsigned char)(n >> 24);
	h[5] = (unsigned char)(n >> 16);
	h[6] = (unsigned char)(n >> 8);
	h[7] = (unsigned char)n;
	if (n)
		memcpy(h + 8, p, n);
	c->out_len += 8 + n;
	return 0;
}

static int word(const unsigned char *p, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(p, w, n) == 0;
}

static void hello(struct client *c, const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
			i++;
		size_t s = i;
		while (i < n && !(p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
			i++;
		if (word(p + s, i - s, "stdin"))
			c->in_stdin = 1;
		else if (word(p + s, i - s, "stdout"))
			c->out_stdout = 1;
		else if (word(p + s, i - s, "stderr"))
			c->out_stderr = 1;
		else if (word(p + s, i - s, "stdin-once"))
			c->stdin_once = 1;
	}
	c->attached = 1;
}

/* number parses a decimal uint16 (strconv.ParseUint(s, 10, 16)). */
static int number(const unsigned char *p, size_t n, unsigned *v)
{
	if (n == 0 || n > 5)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(p[i] - '0');
	}
	return *v <= 65535 ? 0 : -1;
}

static void resize(const unsigned char *p, size_t n)
{
	size_t i = 0, s1, e1, s2, e2;
	while (i < n && p[i] == ' ')
		i++;
	for (s1 = i; i < n && p[i] != ' '; i++)
		;
	e1 = i;
	while (i < n && p[i] == ' ')
		i++;
	for (s2 = i; i < n && p[i] != ' '; i++)
		;
	e2 = i;
	while (i < n && p[i] == ' ')
		i++;
	unsigned rows, cols;
	if (i == n && number(p + s1, e1 - s1, &rows) == 0 && number(p + s2, e2 - s2, &cols) == 0)
		tty_resize(rows, cols);
}

/* frame handles one whole frame from client i; -1 drops the client. */
static int frame(struct client *c)
{
	int kind = c->hdr[0];
	const unsigned char *p = c->payload;
	size_t n = c->pay_need;
	if (!c->attached) {
		if (kind != F_HELLO)
			return -1;
		hello(c, p, n);
		/* Attached: the answer comes first in its queue, and nothing the
		 * container writes from now on is missed. */
		return queue(c, F_HELLO, NULL, 0);
	}
	switch (kind) {
	case F_STDIN:
		if (c->in_stdin)
			stdin_write(p, n);
		break;
	case F_CLOSE_STDIN:
		if (c->in_stdin && c->stdin_once)
			stdin_close_once();
		break;
	case F_RESIZE:
		resize(p, n);
		break;
	}
	return 0;
}

/* readable reads what client c sent, frame by frame; -1 drops it. */
static int readable(struct client *c)
{
	for (;;) {
		ssize_t r;
		if (c->hdr_len < 8)
			r = recv(c->fd, c->hdr + c->hdr_len, 8 - c->hdr_len, MSG_DONTWAIT);
		else
			r = recv(c->fd, c->payload + c->pay_len, c->pay_need - c->pay_len, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r <= 0)
			return -1; /* gone, or detached: it holds nothing of the container's */
		if (c->hdr_len < 8) {
			c->hdr_len += (size_t)r;
			if (c->hdr_len < 8)
				continue;
			c->pay_need = (size_t)c->hdr[4] << 24 | (size_t)c->hdr[5] << 16 | (size_t)c->hdr[6] << 8 | c->hdr[7];
			if (c->pay_need > MAX_PAYLOAD)
				return -1; /* a broken peer */
			c->pay_len = 0;
			if (c->pay_need > 0 && !(c->payload = malloc(c->pay_need)))
				return -1;
		} else
			c->pay_len += (size_t)r;
		if (c->pay_len == c->pay_need) {
			int rc = frame(c);
			free(c->payload);
			c->payload = NULL;
			c->hdr_len = c->pay_len = c->pay_need = 0;
			if (rc < 0)
				return -1;
			/* One frame per wakeup: the container's stdin may now be full
			 * (the loop stops reading clients until it drains). */
			return 0;
		}
	}
}

static int writable(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r < 0)
			return -1;
		c->out_off += (size_t)r;
	}
	/* Sent: an idle client holds no buffer. */
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
	return c->closing ? -1 : 0;
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(srv.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				logmsg("accept on %s: %s", srv.path, strerror(errno));
			return;
		}
		struct client *c = srv.n < MAX_CLIENTS ? calloc(1, sizeof *c) : NULL;
		if (!c) {
			logmsg("attach: %d clients already: one more refused", srv.n);
			close(fd);
			continue;
		}
		c->fd = fd;
		srv.c[srv.n++] = c;
	}
}

/* srv_pollfds fills pfd for the listener and the clients (the same order
 * srv_handle reads them back); read_clients 0 stops reading them (the
 * container's stdin is full). It returns how many it filled. */
int srv_pollfds(struct pollfd *pfd, int max, int read_clients)
{
	int k = 0;
	if (max < 1 + srv.n)
		return 0;
	pfd[k++] = (struct pollfd){.fd = srv.fd, .events = POLLIN};
	for (int i = 0; i < srv.n; i++) {
		struct client *c = srv.c[i];
		short ev = 0;
		if (!c->closing && read_clients)
			ev |= POLLIN;
		if (c->out_len > c->out_off)
			ev |= POLLOUT;
		pfd[k++] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	return k;
}

void srv_handle(struct pollfd *pfd, int n)
{
	if (n < 1)
		return;
	/* Clients first, from the last (drop moves the last into the hole),
	 * then new ones: the indexes are those srv_pollfds used. */
	for (int i = n - 2; i >= 0; i--) {
		struct client *c = srv.c[i];
		short re = pfd[1 + i].revents;
		if (re & POLLNVAL)
			continue;
		int bad = 0;
		if (re & POLLOUT)
			bad = writable(c) < 0;
		if (!bad && (re & POLLIN))
			bad = readable(c) < 0;
		if (!bad && (re & (POLLHUP | POLLERR)) && !(re & POLLIN))
			bad = 1;
		if (bad)
			drop(i);
	}
	if (srv.fd >= 0 && (pfd[0].revents & POLLIN))
		accept_clients();
}

/* srv_output sends what the container wrote on stream kind to the clients
 * that asked for it, in frames of at most 32 KiB. */
void srv_output(int kind, const unsigned char *p, size_t n)
{
	for (int i = srv.n - 1; i >= 0; i--) {
		struct client *c = srv.c[i];
		if (!c->attached || c->closing || (kind == F_STDOUT && !c->out_stdout) || (kind == F_STDERR && !c->out_stderr))
			continue;
		for (size_t off = 0; off < n; off += 32 * 1024) {
			size_t k = n - off < 32 * 1024 ? n - off : 32 * 1024;
			if (queue(c, kind, p + off, k) < 0) {
				drop(i); /* too slow: the container must not wait */
				break;
			}
		}
	}
}

/* srv_exit tells every attached client the container's status and lets
 * them go once it is sent; later clients attach to the next run. */
void srv_exit(int code)
{
	char b[16];
	int n = snprintf(b, sizeof b, "%d", code);
	for (int i = srv.n - 1; i >= 0; i--) {
		struct client *c = srv.c[i];
		if (!c->attached || c->closing)
			continue;
		c->closing = 1;
		if (queue(c, F_EXIT, (unsigned char *)b, (size_t)n) < 0 || c->out_len == c->out_off)
			drop(i);
	}
}

/* srv_flushing: some client still has frames to receive. */
int srv_flushing(void)
{
	for (int i = 0; i < srv.n; i++)
		if (srv.c[i]->out_len > srv.c[i]->out_off)
			return 1;
	return 0;
}

/* srv_close stops accepting, lets every client go and removes the socket,
 * unless a new run's monitor has made its own at that path meanwhile. The
 * caller has flushed what was queued (srv_flushing) for a few seconds. */
void srv_close(void)
{
	while (srv.n > 0)
		drop(srv.n - 1);
	if (srv.fd >= 0)
		close(srv.fd);
	srv.fd = -1;
	struct stat st;
	if (srv.path[0] && lstat(srv.path, &st) == 0 && st.st_dev == srv.dev && st.st_ino == srv.ino && unlink(srv.path) < 0)
		logmsg("remove %s: %s", srv.path, strerror(errno));
}
