/*
 * berth-monitor: the monitor of one detached container of `berth`
 * (09-full), its init's parent for as long as it exists, as podman's
 * conmon. berth starts it (09-full/engine/launch.go); it is not meant to be
 * run by hand. Chapter: docs/09-full.md, "The monitor".
 *
 * It is C, for the reason conmon is: one idles beside every running
 * container, and a Go runtime alone costs more idle memory (its heap
 * arenas, stacks and per-P caches: ~570 kB private) than conmon's whole
 * PSS. One thread, one poll(2) loop; no allocation while idle.
 */
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The command line (main.c:parse_flags), as engine.launch passes it. */
struct config {
	const char *id, *berth, *live, *log;
	long long log_max_size; /* 0: never rotate */
	int log_max_file;
	int tty, stdin_open, stdin_once;
	long long health_ns; /* 0: no health checks */
};
extern struct config cfg;

/* main.c: the monitor's own log (monitor.log) and the container's stdin. */
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void stdin_write(const unsigned char *p, size_t n);
void stdin_close_once(void);
void tty_resize(unsigned rows, unsigned cols);
long long now_mono_ms(void);

/* logs.c: Docker's json-file log, exactly as 09-full/logfile writes it. */
#define MAX_LINE (16 * 1024) /* logfile.MaxLine */
#define MAX_FILES 100        /* logfile.MaxFiles */
struct logw {
	const char *path;
	long long max_size, size;
	int max_file, fd;
};
struct lines {
	const char *stream;
	size_t len;
	unsigned char buf[MAX_LINE];
};
int logw_open(struct logw *w, const char *path, long long max_size, int max_file);
void logw_close(struct logw *w);
void lines_write(struct lines *l, struct logw *w, const unsigned char *p, size_t n);
void lines_flush(struct lines *l, struct logw *w);
size_t json_string(char *out, const unsigned char *s, size_t n);
size_t rfc3339nano(char *out, const struct timespec *t);

/* attach.c: the attach socket (09-full/attach's frames). */
enum { F_STDIN = 0, F_STDOUT = 1, F_STDERR = 2, F_HELLO = 8, F_EXIT = 9, F_RESIZE = 10, F_CLOSE_STDIN = 11 };
#define MAX_PAYLOAD (1 << 20) /* attach.MaxPayload */
#define MAX_QUEUED (1 << 20)  /* attach's maxQueued: bytes a slow client may lag */
#define MAX_CLIENTS 32
struct pollfd;
int srv_listen(const char *path);
int srv_pollfds(struct pollfd *pfd, int max, int read_clients);
void srv_handle(struct pollfd *pfd, int n);
void srv_output(int kind, const unsigned char *p, size_t n);
void srv_exit(int code);
int srv_flushing(void);
void srv_close(void);

/* spawn.c: the helpers (berth internal create|exit|healthcheck). */
pid_t spawn(const char *const argv[], const int fds[], int nfds);
char *read_report(int sock, int *held, int *nheld, int maxheld);
int recv_fd(int sock);
int write_exit(int code);
const char *describe(int status, char *buf, size_t len);
int status_code(int status);
pid_t wait_pid(pid_t pid, int *status);

#endif
