// SPDX-License-Identifier: GPL-2.0
/*
 * hostctl - talk to the host-side VM runner (scripts/vm.py) from the guest.
 *
 *   hostctl hmp 'device_del llmdev3'   run an HMP command, print its output
 *   hostctl qmp '{"execute":"query-status"}'   run a QMP command, print the reply
 *   hostctl boot-count                 print how many times the VM has booted
 *   hostctl ping                       check that the runner answers
 *   hostctl boot                       (used by /init) register a new boot and
 *                                      print its number
 *
 * Transport: the second serial port (/dev/ttyS1, raw mode), which the runner
 * connects to its QMP socket. Protocol, one line each way:
 *
 *   request:  <id> <verb> <escaped argument>\n
 *   reply:    <id> ok <escaped payload>\n   or   <id> err <escaped message>\n
 *
 * Escaping (both directions): '\\' -> "\\\\", '\n' -> "\\n", '\r' -> "\\r".
 * The id is unique per request; lines with another id (stale replies, e.g.
 * one that arrived after a system_reset) are ignored.
 *
 * Exit status: 0 success, 1 usage error, 2 runtime error (with a message):
 * no answer, a QMP error reply, or HMP output starting with "Error: " or
 * "unknown command: " (HMP has no other way to report failure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT	"/dev/ttyS1"
#define DEFAULT_TIMEOUT	120	/* seconds; TCG guests are slow */
#define MAX_LINE	(1 << 20)

static const char *port = DEFAULT_PORT;
static int timeout_s = DEFAULT_TIMEOUT;

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fputs("hostctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f, int status)
{
	fprintf(f,
		"usage: hostctl [-p PORT] [-t SECONDS] COMMAND [ARG]\n"
		"  hmp 'HMP COMMAND'   run an HMP command on the host QEMU, print its output\n"
		"  qmp 'JSON'          run a QMP command, print the JSON reply\n"
		"  boot-count          print the number of boots of this VM (1 = first)\n"
		"  ping                check that the host runner answers\n"
		"  boot                (for /init) register a new boot, print its number\n"
		"  -p PORT             serial port to the runner (default %s)\n"
		"  -t SECONDS          reply timeout (default %d)\n"
		"exit status: 0 ok, 1 usage, 2 error\n",
		DEFAULT_PORT, DEFAULT_TIMEOUT);
	exit(status);
}

static char *escape(const char *s)
{
	char *out = malloc(2 * strlen(s) + 1), *o = out;

	if (!out)
		fail("out of memory");
	for (; *s; s++) {
		switch (*s) {
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		default: *o++ = *s;
		}
	}
	*o = 0;
	return out;
}

/* in place */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*o++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail("write %s: %s", port, strerror(errno));
		}
		buf += n;
		len -= n;
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Read one '\n'-terminated line (without it) into a malloc'ed buffer. */
static char *read_line(int fd, long long deadline)
{
	static char buf[MAX_LINE];
	static size_t len;
	char *nl;

	for (;;) {
		nl = memchr(buf, '\n', len);
		if (nl) {
			size_t n = nl - buf;
			char *line = malloc(n + 1);

			if (!line)
				fail("out of memory");
			memcpy(line, buf, n);
			line[n] = 0;
			memmove(buf, nl + 1, len - n - 1);
			len -= n + 1;
			return line;
		}
		if (len == sizeof(buf))
			fail("reply line too long");

		long long left = deadline - now_ms();
		if (left <= 0)
			fail("no reply from the host runner within %d s on %s", timeout_s, port);

		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);

		if (r < 0 && errno != EINTR)
			fail("poll %s: %s", port, strerror(errno));
		if (r <= 0)
			continue;
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			fail("read %s: %s", port, strerror(errno));
		if (n > 0)
			len += n;
	}
}

static int open_port(void)
{
	struct termios t;
	int fd = open(port, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		fail("open %s: %s", port, strerror(errno));
	/* one request at a time, even with several hostctl processes */
	if (flock(fd, LOCK_EX) < 0)
		fail("flock %s: %s", port, strerror(errno));
	if (tcgetattr(fd, &t) < 0)
		fail("%s is not a serial port: %s", port, strerror(errno));
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		fail("tcsetattr %s: %s", port, strerror(errno));
	tcflush(fd, TCIOFLUSH);
	return fd;
}

int main(int argc, char **argv)
{
	const char *verb, *arg = "";
	char id[64], *req, *esc, *line;
	long long deadline;
	int opt, fd;

	while ((opt = getopt(argc, argv, "+hp:t:")) != -1) {
		switch (opt) {
		case 'p': port = optarg; break;
		case 't':
			timeout_s = atoi(optarg);
			if (timeout_s <= 0)
				usage(stderr, 1);
			break;
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, 1);
		}
	}
	if (optind >= argc)
		usage(stderr, 1);
	verb = argv[optind++];
	if (!strcmp(verb, "hmp") || !strcmp(verb, "qmp")) {
		if (optind != argc - 1)
			usage(stderr, 1);
		arg = argv[optind];
	} else if (!strcmp(verb, "boot-count") || !strcmp(verb, "ping") ||
		   !strcmp(verb, "boot")) {
		if (optind != argc)
			usage(stderr, 1);
	} else {
		fprintf(stderr, "hostctl: unknown command '%s'\n", verb);
		usage(stderr, 1);
	}

	fd = open_port();
	snprintf(id, sizeof(id), "%d.%lld", (int)getpid(), now_ms());
	esc = escape(arg);
	if (asprintf(&req, "%s %s %s\n", id, verb, esc) < 0)
		fail("out of memory");
	write_all(fd, req, strlen(req));
	tcdrain(fd);

	deadline = now_ms() + timeout_s * 1000LL;
	for (;;) {
		size_t idlen = strlen(id);
		char *rest;

		line = read_line(fd, deadline);
		/* tolerate a stray '\r' and garbage from before our request */
		if (line[0] && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = 0;
		if (strncmp(line, id, idlen) || line[idlen] != ' ') {
			free(line);
			continue;
		}
		rest = line + idlen + 1;
		if (!strncmp(rest, "ok", 2) && (rest[2] == ' ' || !rest[2])) {
			char *payload = rest[2] ? rest + 3 : rest + 2;
			size_t n;

			unescape(payload);
			n = strlen(payload);
			fputs(payload, stdout);
			if (n && payload[n - 1] != '\n')
				fputc('\n', stdout);
			return fflush(stdout) ? 2 : 0;
		}
		if (!strncmp(rest, "err", 3)) {
			char *msg = rest[3] ? rest + 4 : rest + 3;

			unescape(msg);
			fail("%s: %s", verb, msg);
		}
		fail("malformed reply from the host runner: %s", line);
	}
}
