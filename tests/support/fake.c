/* fake.c - runs the fake upstream for C tests and drives its control API. */
#include "fake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAKE_SCRIPT           "tests/fake_upstream/fake_upstream.py"
#define FAKE_START_TIMEOUT_MS 15000
#define FAKE_IO_TIMEOUT_S     15
#define FAKE_REPLY_MAX        65536

static pid_t fake_pid;
static int fake_port_no;
static char fake_url_text[64];
static char fake_port_file[PATH_MAX];
static int fake_atexit_done;

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while(nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The script: $RATEPOOL_FAKE_UPSTREAM, ./tests/..., or three levels above
 * the test binary (build/<name>/tests/test_x). */
static int find_script(char *out, size_t n)
{
	const char *env = getenv("RATEPOOL_FAKE_UPSTREAM");
	char exe[PATH_MAX];
	ssize_t len;
	int up;

	if(env && *env) {
		snprintf(out, n, "%s", env);
		return access(out, R_OK) ? -1 : 0;
	}
	if(!access(FAKE_SCRIPT, R_OK)) {
		snprintf(out, n, "%s", FAKE_SCRIPT);
		return 0;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if(len <= 0)
		return -1;
	exe[len] = '\0';
	for(up = 0; up < 4; up++) {
		char *slash = strrchr(exe, '/');
		if(!slash)
			return -1;
		*slash = '\0';
		if((size_t)snprintf(out, n, "%s/%s", exe, FAKE_SCRIPT) < n && !access(out, R_OK))
			return 0;
	}
	return -1;
}

static int connect_port(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = {FAKE_IO_TIMEOUT_S, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if(fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if(connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int read_port_file(void)
{
	char buf[32];
	ssize_t r;
	long v = 0;
	int fd = open(fake_port_file, O_RDONLY | O_CLOEXEC);
	int i;

	if(fd < 0)
		return 0;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if(r <= 0)
		return 0;
	buf[r] = '\0';
	for(i = 0; buf[i] >= '0' && buf[i] <= '9' && v < 65536; i++)
		v = v * 10 + (buf[i] - '0');
	return v > 0 && v < 65536 ? (int)v : 0;
}

int fake_start(void)
{
	char script[PATH_MAX];
	long deadline;
	int fd;

	if(fake_pid > 0)
		return 0;
	if(find_script(script, sizeof(script))) {
		fprintf(stderr, "fake: %s not found (set RATEPOOL_FAKE_UPSTREAM)\n", FAKE_SCRIPT);
		return -1;
	}
	snprintf(fake_port_file, sizeof(fake_port_file), "/tmp/ratepool-fake-port-XXXXXX");
	fd = mkstemp(fake_port_file);
	if(fd < 0) {
		perror("fake: mkstemp");
		return -1;
	}
	close(fd);
	unlink(fake_port_file); /* the fake creates it once it listens */

	fake_pid = fork();
	if(fake_pid < 0) {
		perror("fake: fork");
		fake_pid = 0;
		return -1;
	}
	if(fake_pid == 0) {
		const char *verbose = getenv("RATEPOOL_FAKE_VERBOSE");
		int devnull = open("/dev/null", O_RDWR);
		/* Die with the test, even when it crashes. (The signal fires
		 * when the forking *thread* ends: start from the main thread.) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if(devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			if(!verbose || !*verbose)
				dup2(devnull, STDERR_FILENO);
		}
		execlp("python3", "python3", script, "--port", "0", "--port-file", fake_port_file,
		       (char *)NULL);
		_exit(127);
	}
	if(!fake_atexit_done) {
		atexit(fake_stop);
		fake_atexit_done = 1;
	}

	deadline = now_ms() + FAKE_START_TIMEOUT_MS;
	while(now_ms() < deadline) {
		int status;
		int port = read_port_file();
		if(port) {
			int c = connect_port(port);
			if(c >= 0) {
				close(c);
				fake_port_no = port;
				snprintf(fake_url_text, sizeof(fake_url_text), "http://127.0.0.1:%d", port);
				return 0;
			}
		}
		if(waitpid(fake_pid, &status, WNOHANG) == fake_pid) {
			fprintf(stderr, "fake: %s exited early (status %d)\n", script, status);
			fake_pid = 0;
			unlink(fake_port_file);
			return -1;
		}
		nap_ms(20);
	}
	fprintf(stderr, "fake: no port after %d ms\n", FAKE_START_TIMEOUT_MS);
	fake_stop();
	return -1;
}

void fake_stop(void)
{
	long deadline;
	int status;

	if(fake_pid <= 0)
		return;
	kill(fake_pid, SIGTERM);
	deadline = now_ms() + 3000;
	while(waitpid(fake_pid, &status, WNOHANG) == 0) {
		if(now_ms() > deadline) {
			kill(fake_pid, SIGKILL);
			waitpid(fake_pid, &status, 0);
			break;
		}
		nap_ms(10);
	}
	fake_pid = 0;
	fake_port_no = 0;
	fake_url_text[0] = '\0';
	unlink(fake_port_file);
}

const char *fake_url(void)
{
	return fake_url_text;
}

int fake_port(void)
{
	return fake_port_no;
}

static int write_all(int fd, const char *p, size_t n)
{
	while(n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if(w < 0 && errno == EINTR)
			continue;
		if(w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int fake_http(const char *method, const char *path, const char *body, char *out, size_t n)
{
	char head[512];
	char *reply = NULL;
	size_t len = 0;
	size_t blen = body ? strlen(body) : 0;
	const char *p;
	int status = -1;
	int fd = -1;
	int w;

	if(out && n)
		out[0] = '\0';
	if(!fake_port_no)
		return -1;
	w = snprintf(head, sizeof(head),
	             "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
	             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	             method, path, fake_port_no, blen);
	if(w < 0 || (size_t)w >= sizeof(head))
		return -1;
	reply = malloc(FAKE_REPLY_MAX + 1);
	if(!reply)
		return -1;
	fd = connect_port(fake_port_no);
	if(fd < 0)
		goto out;
	if(write_all(fd, head, (size_t)w) || (blen && write_all(fd, body, blen)))
		goto out;
	/* HTTP/1.0: the server closes after the answer. */
	while(len < FAKE_REPLY_MAX) {
		ssize_t r = recv(fd, reply + len, FAKE_REPLY_MAX - len, 0);
		if(r < 0 && errno == EINTR)
			continue;
		if(r <= 0)
			break;
		len += (size_t)r;
	}
	reply[len] = '\0';
	if(len < 12 || strncmp(reply, "HTTP/1.", 7))
		goto out;
	status = (int)strtol(reply + 9, NULL, 10);
	p = strstr(reply, "\r\n\r\n");
	if(out && n && p)
		snprintf(out, n, "%s", p + 4);
out:
	if(fd >= 0)
		close(fd);
	free(reply);
	return status;
}

static int post_ok(const char *path, const char *json)
{
	int st = fake_http("POST", path, json ? json : "{}", NULL, 0);
	if(st != 200) {
		fprintf(stderr, "fake: POST %s %s -> %d\n", path, json ? json : "", st);
		return -1;
	}
	return 0;
}

int fake_fault(const char *json)
{
	return post_ok("/_fake/fault", json);
}

int fake_config(const char *json)
{
	return post_ok("/_fake/config", json);
}

int fake_reset(void)
{
	return post_ok("/_fake/reset", "{}");
}

int fake_calls(const char *endpoint)
{
	char body[8192];
	char key[128];
	const char *p;
	long v = 0;
	int st = fake_http("GET", "/_fake/calls", NULL, body, sizeof(body));

	if(st != 200)
		return -1;
	if((size_t)snprintf(key, sizeof(key), "\"%s\"", endpoint) >= sizeof(key))
		return -1;
	p = strstr(body, key);
	if(!p)
		return 0;
	p += strlen(key);
	while(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if(*p++ != ':')
		return -1;
	while(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if(*p < '0' || *p > '9')
		return -1;
	for(; *p >= '0' && *p <= '9' && v < 1000000000L; p++)
		v = v * 10 + (*p - '0');
	return (int)v;
}
