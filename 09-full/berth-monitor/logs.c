/*
 * Docker's json-file log, written as 09-full/logfile's writer did (its
 * reader, in Go, serves `berth logs`): one JSON object per line,
 * {"log":"...","stream":"stdout","time":"..."}, the string escaped exactly
 * as Go's encoding/json escapes it, the time RFC 3339 with nanoseconds in
 * UTC, trailing zeros dropped (Go's time.RFC3339Nano). Rotation to .1, .2
 * ... past max-size, as Docker's.
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char hex[] = "0123456789abcdef";

/* utf8_len is the length of the valid UTF-8 sequence at s (Go's
 * utf8.DecodeRune: no overlong forms, no surrogates, nothing past
 * U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* json_string writes s as a JSON string, as encoding/json does: the usual
 * escapes, other control characters and <, >, & as \u00XX, invalid UTF-8
 * as \ufffd, U+2028 and U+2029 escaped. out needs 6*n+2 bytes. */
size_t json_string(char *out, const unsigned char *s, size_t n)
{
	char *o = out;
	*o++ = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c == '"' || c == '\\') {
				*o++ = '\\';
				*o++ = (char)c;
			} else if (c == '\n') {
				*o++ = '\\';
				*o++ = 'n';
			} else if (c == '\r') {
				*o++ = '\\';
				*o++ = 'r';
			} else if (c == '\t') {
				*o++ = '\\';
				*o++ = 't';
			} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				memcpy(o, "\\u00", 4);
				o += 4;
				*o++ = hex[c >> 4];
				*o++ = hex[c & 0xf];
			} else
				*o++ = (char)c;
			i++;
			continue;
		}
		size_t len = utf8_len(s + i, n - i);
		if (len == 0) {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
			continue;
		}
		if (len == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
			memcpy(o, "\\u202", 5);
			o += 5;
			*o++ = s[i + 2] == 0xA8 ? '8' : '9';
		} else {
			memcpy(o, s + i, len);
			o += len;
		}
		i += len;
	}
	*o++ = '"';
	return (size_t)(o - out);
}

/* rfc3339nano formats t in UTC as Go's time.RFC3339Nano does:
 * 2006-01-02T15:04:05.999999999Z, the fraction without trailing zeros
 * (and without its dot when it is zero). out needs 40 bytes. */
size_t rfc3339nano(char *out, const struct timespec *t)
{
	struct tm tm;
	time_t sec = t->tv_sec;
	if (!gmtime_r(&sec, &tm))
		memset(&tm, 0, sizeof tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	long ns = t->tv_nsec % 1000000000L;
	if (ns > 0) {
		char frac[24];
		snprintf(frac, sizeof frac, "%09ld", ns);
		size_t k = 9;
		while (k > 0 && frac[k - 1] == '0')
			k--;
		out[n++] = '.';
		memcpy(out + n, frac, k);
		n += k;
	}
	out[n++] = 'Z';
	out[n] = 0;
	return n;
}

static int logw_reopen(struct logw *w)
{
	w->fd = open(w->path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (w->fd < 0) {
		logmsg("open log %s: %s", w->path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(w->fd, &st) < 0) {
		logmsg("stat log %s: %s", w->path, strerror(errno));
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	w->size = st.st_size;
	return 0;
}

/* logw_open opens (creating) the log for appending. max_size 0 never
 * rotates; max_file is how many files are kept, the current one included
 * (1 when 0), at most MAX_FILES: each rotation renames every kept file. */
int logw_open(struct logw *w, const char *path, long long max_size, int max_file)
{
	if (max_file < 1)
		max_file = 1;
	if (max_file > MAX_FILES) {
		logmsg("log %s: max-file %d: at most %d", path, max_file, MAX_FILES);
		return -1;
	}
	*w = (struct logw){.path = path, .max_size = max_size, .max_file = max_file, .fd = -1};
	return logw_reopen(w);
}

void logw_close(struct logw *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

static int numbered(char *buf, size_t len, const char *path, int i)
{
	int n = snprintf(buf, len, "%s.%d", path, i);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* rotate starts a fresh file; the current one becomes .1 (and .1 .2 ...,
 * the oldest beyond max-file dropped). With max-file 1 the file is removed,
 * not truncated: a follower (logs -f) reads on at its offset in the file
 * it has open, and notices a new file as it notices a rename. */
static int rotate(struct logw *w)
{
	char from[4096], to[4096];
	close(w->fd);
	w->fd = -1;
	if (w->max_file == 1) {
		if (unlink(w->path) < 0 && errno != ENOENT) {
			logmsg("rotate log %s: unlink: %s", w->path, strerror(errno));
			return -1;
		}
		return logw_reopen(w);
	}
	for (int i = w->max_file - 1; i > 0; i--) {
		if (i > 1) {
			if (numbered(from, sizeof from, w->path, i - 1) < 0)
				return -1;
		} else if (snprintf(from, sizeof from, "%s", w->path) >= (int)sizeof from)
			return -1;
		if (numbered(to, sizeof to, w->path, i) < 0)
			return -1;
		if (rename(from, to) < 0 && errno != ENOENT) {
			logmsg("rotate log %s: rename %s: %s", w->path, from, strerror(errno));
			return -1;
		}
	}
	return logw_reopen(w);
}

/* entry appends one entry, in one write(2): a reader never sees half. */
static void entry(struct logw *w, const char *stream, const unsigned char *p, size_t n)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (w->fd < 0) {
		logmsg("write log %s: the log is closed", w->path);
		return;
	}
	/* At most 6 bytes per byte of the line, plus the frame around it:
	 * under 100 kB, allocated only while it is written (and, past
	 * malloc's mmap threshold, given back when freed). */
	char *b = malloc(6 * n + 128);
	if (!b) {
		logmsg("write log %s: out of memory", w->path);
		return;
	}
	size_t k = 0;
	memcpy(b, "{\"log\":", 7);
	k = 7;
	k += json_string(b + k, p, n);
	k += (size_t)sprintf(b + k, ",\"stream\":\"%s\",\"time\":\"", stream);
	k += rfc3339nano(b + k, &now);
	memcpy(b + k, "\"}\n", 3);
	k += 3;
	if (w->max_size > 0 && w->size > 0 && w->size + (long long)k > w->max_size && rotate(w) < 0) {
		free(b);
		return;
	}
	size_t off = 0;
	while (off < k) {
		ssize_t r = write(w->fd, b + off, k - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			logmsg("write log %s: %s", w->path, strerror(errno));
			break;
		}
		off += (size_t)r;
		w->size += r;
	}
	free(b);
}

/* lines_write turns what a stream of the container wrote into entries, one
 * per line (with its newline), a line longer than MAX_LINE cut into pieces
 * of MAX_LINE, as Docker does: write calls need not end on a line. */
void lines_write(struct lines *l, struct logw *w, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t room = MAX_LINE - l->len, take = n < room ? n : room;
		const unsigned char *nl = memchr(p, '\n', take);
		if (nl)
			take = (size_t)(nl - p) + 1;
		memcpy(l->buf + l->len, p, take);
		l->len += take;
		p += take;
		n -= take;
		if (nl || l->len == MAX_LINE) {
			entry(w, l->stream, l->buf, l->len);
			l->len = 0;
		}
	}
}

/* lines_flush writes what is left of a last line, without its newline, as
 * Docker does when the stream closes. */
void lines_flush(struct lines *l, struct logw *w)
{
	if (l->len > 0)
		entry(w, l->stream, l->buf, l->len);
	l->len = 0;
}
