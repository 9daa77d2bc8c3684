/*
 * berth-monitor's life: set up (its log, subreaper, the json-file log,
 * the attach socket), then for each run of the container: `berth internal
 * create` (with the container's stdio pipes or console socket), one poll
 * loop that copies the container's output to the log and to attached
 * clients, takes their input, runs health checks and waits for the init;
 * then the exit record, `berth internal exit` (cleanup, and whether to
 * restart), and a restart after the delay it says.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct config cfg = {.log_max_file = 1};
static int logfd = -1, ready = -1, sigfd = -1;
static struct logw logw;

void logmsg(const char *fmt, ...)
{
	char b[4096], at[40];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	now.tv_nsec = 0;
	rfc3339nano(at, &now);
	int n = snprintf(b, sizeof b, "%s monitor: ", at);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(b + n, sizeof b - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + m < (int)sizeof b - 1 ? n + m : (int)sizeof b - 2;
	b[n++] = '\n';
	if (logfd >= 0 && write(logfd, b, (size_t)n) < 0)
		return; /* nowhere left to say it */
}

long long now_mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ready_say writes the first run's report to the command that launched
 * the monitor (fd 3), once. */
static void ready_say(const char *line)
{
	if (ready < 0)
		return;
	size_t n = strlen(line);
	char *b = malloc(n + 1);
	if (b) {
		memcpy(b, line, n);
		for (size_t i = 0; i < n; i++)
			if (b[i] == '\n')
				b[i] = ' ';
		b[n] = '\n';
		if (write(ready, b, n + 1) < 0)
			logmsg("report to berth: %s", strerror(errno));
		free(b);
	}
	close(ready);
	ready = -1;
}

static int fail(const char *what)
{
	char b[4200];
	snprintf(b, sizeof b, "error 125 monitor: %s", what);
	logmsg("%s", what);
	ready_say(b);
	return 1;
}

/* ---- flags: Go's flag package's forms (-x v, --x v, --x=v, --bool) ---- */

/* duration parses a Go duration (time.Duration.String: 1h2m3.5s, 250ms). */
static int duration(const char *s, long long *ns)
{
	static const struct {
		const char *u;
		long long ns;
	} units[] = {{"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000}, {"ms", 1000000}, {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
	long double total = 0;
	if (!*s)
		return -1;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s) {
		char *end;
		errno = 0;
		long double v = strtold(s, &end);
		if (end == s || errno || v < 0 || *s == '-' || *s == '+' || *s == ' ')
			return -1;
		s = end;
		size_t best = 0;
		long long mul = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t l = strlen(units[i].u);
			if (strncmp(s, units[i].u, l) == 0 && l > best)
				best = l, mul = units[i].ns;
		}
		if (!best)
			return -1;
		s += best;
		total += v * (long double)mul;
	}
	if (total > (long double)LLONG_MAX)
		return -1;
	*ns = (long long)total;
	return 0;
}

static int integer(const char *s, long long lo, long long hi, long long *v)
{
	char *end;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return *s && !*end && !errno && *v >= lo && *v <= hi ? 0 : -1;
}

static int parse_flags(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			return fprintf(stderr, "berth-monitor: unexpected argument %s\n", a), -1;
		a += a[1] == '-' ? 2 : 1;
		char name[32];
		const char *val = strchr(a, '=');
		size_t nl = val ? (size_t)(val - a) : strlen(a);
		if (nl >= sizeof name)
			return fprintf(stderr, "berth-monitor: unknown flag %s\n", argv[i]), -1;
		memcpy(name, a, nl);
		name[nl] = 0;
		int *b = !strcmp(name, "tty") ? &cfg.tty : !strcmp(name, "stdin") ? &cfg.stdin_open : !strcmp(name, "stdin-once") ? &cfg.stdin_once : NULL;
		if (b) {
			if (val && strcmp(val + 1, "true") && strcmp(val + 1, "false"))
				return fprintf(stderr, "berth-monitor: bad value for --%s\n", name), -1;
			*b = !val || !strcmp(val + 1, "true");
			continue;
		}
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return fprintf(stderr, "berth-monitor: flag needs an argument: %s\n", argv[i]), -1;
		long long v;
		if (!strcmp(name, "id"))
			cfg.id = val;
		else if (!strcmp(name, "berth"))
			cfg.berth = val;
		else if (!strcmp(name, "live"))
			cfg.live = val;
		else if (!strcmp(name, "log"))
			cfg.log = val;
		else if (!strcmp(name, "log-max-size") && integer(val, 0, LLONG_MAX, &v) == 0)
			cfg.log_max_size = v;
		else if (!strcmp(name, "log-max-file") && integer(val, INT_MIN, INT_MAX, &v) == 0)
			cfg.log_max_file = (int)v;
		else if (!strcmp(name, "health-interval") && duration(val, &cfg.health_ns) == 0)
			;
		else
			return fprintf(stderr, "berth-monitor: bad flag --%s %s\n", name, val), -1;
	}
	if (!cfg.id || !cfg.berth || !cfg.live || !cfg.log || cfg.live[0] != '/' || cfg.log[0] != '/')
		return fprintf(stderr, "berth-monitor: started by berth, with --id, --berth, --live and --log (absolute)\n"), -1;
	/* The id is a path component and an argument of the helpers. */
	for (const char *p = cfg.id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return fprintf(stderr, "berth-monitor: bad id %s\n", cfg.id), -1;
	return 0;
}

/* ---- the container's stdin: a pipe, or the terminal's master ---- */

static struct run {
	int stdin_w, stdout_r, stderr_r, master;
	unsigned char *pending; /* input the container has not taken yet */
	size_t pending_len, pending_off;
} run = {-1, -1, -1, -1, NULL, 0, 0};

static int stdin_fd(void)
{
	return run.master >= 0 ? run.master : run.stdin_w;
}

/* stdin_write passes what a client typed on; what the container does not
 * take at once waits (and the loop reads no client until it has). */
void stdin_write(const unsigned char *p, size_t n)
{
	int fd = stdin_fd();
	if (fd < 0 || n == 0)
		return;
	if (run.pending) {
		/* Another client's frame of the same wakeup: after the first
		 * (no client is read again until all of it is taken). */
		unsigned char *b = realloc(run.pending, run.pending_len + n);
		if (!b) {
			logmsg("stdin: out of memory: %zu bytes dropped", n);
			return;
		}
		memcpy(b + run.pending_len, p, n);
		run.pending = b;
		run.pending_len += n;
		return;
	}
	ssize_t w;
	while ((w = write(fd, p, n)) < 0 && errno == EINTR)
		;
	if (w < 0 && errno != EAGAIN)
		return; /* the container closed its stdin: what it is sent is lost, as Docker's */
	size_t done = w < 0 ? 0 : (size_t)w;
	if (done < n && (run.pending = malloc(n - done))) {
		memcpy(run.pending, p + done, n - done);
		run.pending_len = n - done;
		run.pending_off = 0;
	}
}

static void stdin_drain(void)
{
	int fd = stdin_fd();
	while (fd >= 0 && run.pending_off < run.pending_len) {
		ssize_t w = write(fd, run.pending + run.pending_off, run.pending_len - run.pending_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0)
			break;
		run.pending_off += (size_t)w;
	}
	free(run.pending);
	run.pending = NULL;
	run.pending_len = run.pending_off = 0;
}

/* stdin_close_once: a stdin-once client's input ended, and the container
 * reads end of file (a terminal gets Ctrl-D). */
void stdin_close_once(void)
{
	if (!cfg.stdin_once)
		return;
	if (run.master >= 0) {
		if (write(run.master, "\x04", 1) < 0 && errno != EAGAIN)
			logmsg("write Ctrl-D to the terminal: %s", strerror(errno));
		return;
	}
	if (run.stdin_w >= 0) {
		stdin_drain();
		close(run.stdin_w);
		run.stdin_w = -1;
	}
}

void tty_resize(unsigned rows, unsigned cols)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	if (run.master >= 0 && ioctl(run.master, TIOCSWINSZ, &ws) < 0)
		logmsg("resize the terminal: %s", strerror(errno));
}

static void closefd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- one run ---- */

#define MAX_HELD 1024

struct created {
	pid_t pid;
	unsigned long long start;
	int held[MAX_HELD], nheld;
};

/* create runs `berth internal create` and reads its report; it returns 1
 * when the init waits (or, on a restart, runs), 0 when nothing was
 * created (the report says why), -1 on the monitor's own failure. */
static int create(int restart, struct created *cr)
{
	int rep[2] = {-1, -1}, con[2] = {-1, -1}, in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int rc = -1;
	char msg[512], d[64];
	cr->nheld = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rep) < 0) {
		snprintf(msg, sizeof msg, "socketpair: %s", strerror(errno));
		goto fail;
	}
	if (cfg.tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0) {
		snprintf(msg, sizeof msg, "socketpair: %s", strerror(errno));
		goto fail;
	}
	if (cfg.stdin_open && !cfg.tty) {
		if (pipe2(in, O_CLOEXEC) < 0) {
			snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
			goto fail;
		}
	} else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, sizeof msg, "open /dev/null: %s", strerror(errno));
		goto fail;
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
		goto fail;
	}
	const char *argv[] = {"berth", "internal", "create", restart ? "--restart" : cfg.id, restart ? cfg.id : NULL, NULL};
	int fds[] = {-1, logfd, logfd, rep[1], con[1], in[0], out[1], err[1]};
	pid_t helper = spawn(argv, fds, 8);
	closefd(&rep[1]);
	closefd(&con[1]);
	closefd(&in[0]);
	closefd(&out[1]);
	closefd(&err[1]);
	if (helper < 0) {
		snprintf(msg, sizeof msg, "start %s failed (see monitor.log)", cfg.berth);
		goto fail;
	}
	char *line = read_report(rep[0], cr->held, &cr->nheld, MAX_HELD);
	int st = 0;
	wait_pid(helper, &st);
	if (!line) {
		char b[160];
		snprintf(b, sizeof b, "error 125 berth internal create ended (%s) without a report", describe(st, d, sizeof d));
		ready_say(b);
		rc = -1;
		goto out;
	}
	if (strncmp(line, "ok ", 3) == 0) {
		char *end;
		errno = 0;
		long pid = strtol(line + 3, &end, 10);
		if (!errno && *end == ' ' && pid > 0 && pid <= INT_MAX) {
			char *s = end + 1;
			cr->start = strtoull(s, &end, 10);
			if (!errno && *s >= '0' && *s <= '9' && !*end) {
				cr->pid = (pid_t)pid;
				rc = 1;
			}
		}
	} else if (strncmp(line, "error ", 6) == 0 || strcmp(line, "stop") == 0)
		rc = 0;
	if (rc == 1 && cfg.tty && (run.master = recv_fd(con[0])) < 0) {
		ready_say("error 125 monitor: receive the terminal (see monitor.log)");
		rc = -2;
	}
	if (rc == -1) {
		char b[300];
		logmsg("internal create: bad report \"%.200s\"", line);
		snprintf(b, sizeof b, "error 125 monitor: bad report from berth internal create (see monitor.log)");
		ready_say(b);
	} else if (rc >= 0)
		ready_say(line);
	free(line);
	if (rc == -2)
		rc = -1;
	if (rc == 1) {
		run.stdin_w = in[1], in[1] = -1;
		run.stdout_r = out[0], out[0] = -1;
		run.stderr_r = err[0], err[0] = -1;
		/* The monitor never waits on the container: what it does not
		 * take at once waits in the loop. */
		if (stdin_fd() >= 0 && fcntl(stdin_fd(), F_SETFL, fcntl(stdin_fd(), F_GETFL) | O_NONBLOCK) < 0)
			logmsg("stdin: set non-blocking: %s", strerror(errno));
	}
	goto out;
fail:
	logmsg("%s", msg);
	{
		char b[600];
		snprintf(b, sizeof b, "error 125 monitor: %s", msg);
		ready_say(b);
	}
out:
	closefd(&rep[0]), closefd(&rep[1]), closefd(&con[0]), closefd(&con[1]);
	closefd(&in[0]), closefd(&in[1]), closefd(&out[0]), closefd(&out[1]);
	closefd(&err[0]), closefd(&err[1]);
	if (rc != 1)
		for (int i = 0; i < cr->nheld; i++)
			close(cr->held[i]);
	return rc;
}

/* reap collects every child that has exited: the init, a health check,
 * and any orphan of the container adopted as subreaper (no zombie
 * stays). It records the statuses of the two the monitor waits for. */
static void reap(pid_t init, int *init_st, int *init_done, pid_t *health)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p < 0 && errno == EINTR)
			continue;
		if (p <= 0)
			return;
		if (p == init) {
			*init_st = st;
			*init_done = 1;
		} else if (p == *health) {
			*health = 0;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				char d[64];
				logmsg("health check: %s", describe(st, d, sizeof d));
			}
		}
	}
}

static struct lines out_lines = {.stream = "stdout"}, err_lines = {.stream = "stderr"}, tty_lines = {.stream = "stdout"};

/* copy_out reads what the container wrote on *fd; at its end (EOF, or EIO
 * on a terminal once the last holder of its slave is gone) the rest of the
 * last line goes to the log and the fd is closed. */
static void copy_out(int *fd, int kind, struct lines *l)
{
	static unsigned char buf[32 * 1024];
	ssize_t n = read(*fd, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		srv_output(kind, buf, (size_t)n);
		lines_write(l, &logw, buf, (size_t)n);
		return;
	}
	if (n < 0 && errno != EIO)
		logmsg("read the container's %s: %s", l->stream, strerror(errno));
	lines_flush(l, &logw);
	closefd(fd);
}

/* health_run starts `berth internal healthcheck ID`; the next one is due
 * an interval after it ends, as Docker's. */
static pid_t health_run(void)
{
	const char *argv[] = {"berth", "internal", "healthcheck", cfg.id, NULL};
	int fds[] = {-1, logfd, logfd};
	return spawn(argv, fds, 3);
}

#define NPOLL (8 + MAX_CLIENTS)

/* wait_run copies the container's streams until its init has exited and
 * they have ended (or 2 s passed: a process that escaped the container's
 * PID namespace, none should, must not keep its exit from being
 * recorded). It returns the init's wait status. */
static int wait_run(pid_t init)
{
	int init_st = 0, init_done = 0;
	pid_t health = 0;
	long long interval_ms = cfg.health_ns / 1000000, health_due = -1, grace = -1;
	if (cfg.health_ns > 0 && interval_ms == 0)
		interval_ms = 1;
	if (interval_ms > 0)
		health_due = now_mono_ms() + interval_ms;
	reap(init, &init_st, &init_done, &health); /* it may have died already */
	for (;;) {
		if (init_done && health > 0) {
			/* Its container is gone: a check that still runs ends. */
			if (kill(health, SIGKILL) < 0)
				logmsg("kill health check %d: %s", (int)health, strerror(errno));
			int st;
			wait_pid(health, &st);
			health = 0;
		}
		if (init_done) {
			health_due = -1;
			if (run.stdout_r < 0 && run.stderr_r < 0 && run.master < 0)
				break;
			if (grace < 0)
				grace = now_mono_ms() + 2000;
			else if (now_mono_ms() >= grace) {
				logmsg("output still open 2 s after the init exited");
				break;
			}
		}
		long long now = now_mono_ms();
		if (health_due >= 0 && health == 0 && now >= health_due) {
			health = health_run();
			if (health < 0)
				health = 0; /* logged; the next one at the next interval */
			health_due = now + interval_ms; /* counted from the end, below */
		}
		struct pollfd pfd[NPOLL];
		int k = 0, ks;
		pfd[k++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		pfd[k++] = (struct pollfd){.fd = run.stdout_r, .events = POLLIN};
		pfd[k++] = (struct pollfd){.fd = run.stderr_r, .events = POLLIN};
		pfd[k++] = (struct pollfd){.fd = run.master, .events = POLLIN};
		pfd[k++] = (struct pollfd){.fd = run.pending ? stdin_fd() : -1, .events = POLLOUT};
		ks = k;
		k += srv_pollfds(pfd + k, NPOLL - k, run.pending == NULL);
		long long t = -1, wake = grace;
		if (health == 0 && health_due >= 0 && (wake < 0 || health_due < wake))
			wake = health_due;
		if (wake >= 0)
			t = wake > now ? wake - now : 0;
		int n = poll(pfd, (nfds_t)k, t > INT_MAX ? INT_MAX : (int)t);
		if (n < 0 && errno != EINTR) {
			logmsg("poll: %s", strerror(errno));
			return init_done ? init_st : -1;
		}
		if (n <= 0)
			continue;
		/* The clients first: what follows may drop some. */
		srv_handle(pfd + ks, k - ks);
		if (pfd[4].revents)
			stdin_drain();
		if (pfd[1].revents)
			copy_out(&run.stdout_r, F_STDOUT, &out_lines);
		if (pfd[2].revents)
			copy_out(&run.stderr_r, F_STDERR, &err_lines);
		if (pfd[3].revents)
			copy_out(&run.master, F_STDOUT, &tty_lines);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) > 0)
				;
			pid_t h = health;
			reap(init, &init_st, &init_done, &health);
			if (h > 0 && health == 0 && health_due >= 0)
				health_due = now_mono_ms() + interval_ms;
		}
	}
	return init_st;
}

/* exit_command runs `berth internal exit --pid P --start S ID`: cleanup,
 * and whether to restart ("restart MS") or not ("done"). It returns the
 * delay in ms, -1 for no restart, -2 when it failed. */
static long long exit_command(const struct created *cr)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		logmsg("pipe: %s", strerror(errno));
		return -2;
	}
	char pid[24], start[24], line[4096], d[64];
	snprintf(pid, sizeof pid, "%d", (int)cr->pid);
	snprintf(start, sizeof start, "%llu", cr->start);
	const char *argv[] = {"berth", "internal", "exit", "--pid", pid, "--start", start, cfg.id, NULL};
	int fds[] = {-1, p[1], logfd};
	pid_t h = spawn(argv, fds, 3);
	close(p[1]);
	if (h < 0) {
		close(p[0]);
		return -2;
	}
	size_t len = 0;
	while (len < sizeof line - 1) {
		ssize_t r = read(p[0], line + len, sizeof line - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(line, '\n', len))
			break;
	}
	close(p[0]);
	line[len] = 0;
	line[strcspn(line, "\r\n")] = 0;
	int st = 0;
	if (wait_pid(h, &st) < 0)
		return -2;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		logmsg("berth internal exit %s: %s", cfg.id, describe(st, d, sizeof d));
		return -2;
	}
	if (strncmp(line, "restart ", 8) == 0) {
		long long ms;
		if (integer(line + 8, 0, 24LL * 3600 * 1000, &ms) < 0) {
			logmsg("exit command: bad answer \"%.100s\"", line);
			return -2;
		}
		return ms;
	}
	return -1;
}

/* serve_for serves the attach socket alone for ms (between runs, and at
 * the end while clients are sent what they are owed). until_flushed stops
 * as soon as no client is owed anything. */
static void serve_for(long long ms, int until_flushed)
{
	long long end = now_mono_ms() + ms;
	for (;;) {
		long long now = now_mono_ms();
		if (now >= end || (until_flushed && !srv_flushing()))
			return;
		struct pollfd pfd[NPOLL];
		int k = 0;
		pfd[k++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		k += srv_pollfds(pfd + k, NPOLL - k, 1);
		int n = poll(pfd, (nfds_t)k, (int)(end - now));
		if (n < 0 && errno != EINTR) {
			logmsg("poll: %s", strerror(errno));
			return;
		}
		if (n <= 0)
			continue;
		srv_handle(pfd + 1, k - 1);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) > 0)
				;
			pid_t none = 0;
			int st, done;
			reap(-1, &st, &done, &none);
		}
	}
}

int main(int argc, char **argv)
{
	char path[4096];
	/* Buffers from 32 kB up are mapped for the time they are used and
	 * given back whole when freed: an idle monitor keeps no peak. */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024);
	if (parse_flags(argc, argv) < 0)
		return 2;
	/* fd 3 is the report to berth; nothing else of berth's is kept, and no
	 * fd of the monitor reaches a helper or the container. */
	if (fcntl(3, F_GETFD) >= 0)
		ready = 3;
	if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0 && ready >= 0)
		fcntl(3, F_SETFD, FD_CLOEXEC);
	if (snprintf(path, sizeof path, "%s/monitor.log", cfg.live) >= (int)sizeof path)
		return fail("live directory path too long");
	logfd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (logfd < 0) {
		char b[4200];
		snprintf(b, sizeof b, "open %s: %s", path, strerror(errno));
		return fail(b);
	}
	/* Orphans of the container (its init, once internal create exits) are
	 * reparented to the monitor, which waits for them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return fail("prctl(PR_SET_CHILD_SUBREAPER) failed");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0 || (sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		return fail("signalfd(SIGCHLD) failed");
	/* A client or a container that goes away is an error to handle, not a
	 * reason to die (helpers get SIGPIPE back: spawn). */
	signal(SIGPIPE, SIG_IGN);
	if (logw_open(&logw, cfg.log, cfg.log_max_size, cfg.log_max_file) < 0)
		return fail("cannot open the container's log (see monitor.log)");
	if (snprintf(path, sizeof path, "%s/attach.sock", cfg.live) >= (int)sizeof path || srv_listen(path) < 0)
		return fail("cannot listen on attach.sock (see monitor.log)");

	int code = 0;
	for (int restart = 0;; restart = 1) {
		struct created cr = {0};
		int rc = create(restart, &cr);
		if (rc <= 0) {
			code = rc < 0 ? 1 : 0;
			break;
		}
		int st = wait_run(cr.pid);
		int exit_code = st < 0 ? 255 : status_code(st);
		write_exit(exit_code);
		for (int i = 0; i < cr.nheld; i++) /* the published ports, slirp4netns: free now */
			close(cr.held[i]);
		closefd(&run.stdin_w), closefd(&run.stdout_r), closefd(&run.stderr_r), closefd(&run.master);
		free(run.pending);
		run.pending = NULL;
		run.pending_len = run.pending_off = 0;
		long long delay = exit_command(&cr);
		srv_exit(exit_code);
		if (delay < 0) {
			code = delay == -2 ? 1 : 0;
			break;
		}
		serve_for(delay, 0);
	}
	serve_for(5000, 1);
	srv_close();
	logw_close(&logw);
	return code;
}
