/* test_mqtt.c - the MQTT wrapper against a real mosquitto started by the
 * test on a free loopback port. Other clients are mosquitto_pub and
 * mosquitto_sub (an independent MQTT implementation) or a second wrapper.
 *
 * Waits are bounded by generous deadlines and poll for a state; nothing
 * asserts on how long something took. */
#include "ratepool/error.h"
#include "ratepool/log.h"
#include "ratepool/mqtt.h"
#include "ratepool/queue.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

extern char **environ;

#define MOSQUITTO   "/usr/sbin/mosquitto"
#define DEADLINE_MS 20000

/* --- small helpers ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Polls pred every 10 ms until it holds or DEADLINE_MS passed. */
static bool wait_for(bool (*pred)(void *), void *arg)
{
	int64_t end = now_ms() + DEADLINE_MS;

	while(!pred(arg)) {
		if(now_ms() > end)
			return false;
		sleep_ms(10);
	}
	return true;
}

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int run(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- the broker --------------------------------------------------------------------- */

struct broker {
	int port;
	pid_t pid;
	char dir[64];
	char conf[96];
	char sub_args[256]; /* extra mosquitto_sub arguments: credentials, TLS */
};

static struct broker broker;

/* Starts mosquitto as a child that dies with this process (PR_SET_PDEATHSIG),
 * so a crashed test never leaves a broker behind. */
static pid_t spawn_mosquitto(void)
{
	pid_t parent = getpid(), pid = fork();

	assert_true(pid >= 0);
	if(pid == 0) {
		/* only async-signal-safe calls between fork and exec */
		int null = open("/dev/null", O_WRONLY);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if(getppid() != parent)
			_exit(127);
		if(null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(MOSQUITTO, MOSQUITTO, "-c", broker.conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void broker_spawn(void)
{
	int64_t end;

	broker.pid = spawn_mosquitto();
	end = now_ms() + DEADLINE_MS;
	while(!port_open(broker.port)) {
		int st;
		if(waitpid(broker.pid, &st, WNOHANG) == broker.pid) {
			/* bind raced with a closing port: try again */
			sleep_ms(100);
			broker.pid = spawn_mosquitto();
		}
		assert_true(now_ms() < end);
		sleep_ms(20);
	}
}

/* SIGSTOP: the broker keeps its sockets but answers nothing, so no PUBACK
 * frees a slot of the window. */
static void broker_pause(void)
{
	assert_int_equal(kill(broker.pid, SIGSTOP), 0);
}

static void broker_resume(void)
{
	assert_int_equal(kill(broker.pid, SIGCONT), 0);
}

/* Kills the broker without a goodbye (works on a stopped one too). */
static void broker_crash(void)
{
	int st;

	assert_int_equal(kill(broker.pid, SIGKILL), 0);
	waitpid(broker.pid, &st, 0);
	broker.pid = 0;
}

static void broker_kill(void)
{
	int st;

	if(broker.pid > 0) {
		kill(broker.pid, SIGTERM);
		waitpid(broker.pid, &st, 0);
		broker.pid = 0;
	}
}

/* Creates the broker's directory and picks its port. The directory is
 * world-readable: mosquitto started as root drops to its own user before
 * it reads certificates and password files. */
static int broker_prepare(void)
{
	memset(&broker, 0, sizeof(broker));
	snprintf(broker.dir, sizeof(broker.dir), "/tmp/rp-mqtt-XXXXXX");
	if(!mkdtemp(broker.dir) || chmod(broker.dir, 0755) != 0)
		return -1;
	snprintf(broker.conf, sizeof(broker.conf), "%s/mosquitto.conf", broker.dir);
	broker.port = free_port();
	return 0;
}

static int broker_write_and_spawn(const char *extra)
{
	FILE *f = fopen(broker.conf, "w");

	if(!f)
		return -1;
	fprintf(f, "listener %d 127.0.0.1\npersistence false\nlog_dest none\n%s", broker.port, extra);
	/* As root, mosquitto would switch to its own user, which clears the
	 * parent-death signal: stay root so that it dies with the test. */
	if(geteuid() == 0)
		fprintf(f, "user root\n");
	fclose(f);
	broker_spawn();
	return 0;
}

static int broker_setup(void **state)
{
	if(broker_prepare() != 0)
		return -1;
	return broker_write_and_spawn("allow_anonymous true\n");
}

#define AUTH_USER "rp-user"
#define AUTH_PASS "s3cret-pass"

/* A broker that lets only 5 QoS 1 messages of a client fly at once: it
 * sends Receive Maximum 5 in its CONNACK. */
static int broker_setup_receive_max(void **state)
{
	if(broker_prepare() != 0)
		return -1;
	return broker_write_and_spawn("allow_anonymous true\nmax_inflight_messages 5\n");
}

/* A broker without a limit: its CONNACK carries no Receive Maximum. */
static int broker_setup_no_receive_max(void **state)
{
	if(broker_prepare() != 0)
		return -1;
	return broker_write_and_spawn("allow_anonymous true\nmax_inflight_messages 0\n");
}

static int broker_setup_auth(void **state)
{
	char extra[256];

	if(broker_prepare() != 0)
		return -1;
	if(run(NULL, 0, "mosquitto_passwd -b -c %s/passwd %s %s && chmod 644 %s/passwd", broker.dir,
	       AUTH_USER, AUTH_PASS, broker.dir) != 0)
		return -1;
	snprintf(extra, sizeof(extra), "allow_anonymous false\npassword_file %s/passwd\n", broker.dir);
	snprintf(broker.sub_args, sizeof(broker.sub_args), "-u %s -P %s", AUTH_USER, AUTH_PASS);
	return broker_write_and_spawn(extra);
}

/* A test CA, a server certificate for localhost signed by it, and a
 * second CA that signed nothing here. */
static int broker_setup_tls(void **state)
{
	char extra[512];

	if(broker_prepare() != 0)
		return -1;
	if(run(NULL, 0,
	       "cd %s && (printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
	       "-out ca.crt -days 2 -subj /CN=rp-test-ca && "
	       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other.key "
	       "-out other.crt -days 2 -subj /CN=rp-other-ca && "
	       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
	       "-out srv.csr -subj /CN=localhost && "
	       "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 "
	       "-extfile ext.cnf && chmod 644 *) >/dev/null 2>&1",
	       broker.dir) != 0)
		return -1;
	snprintf(extra, sizeof(extra),
	         "allow_anonymous true\ncafile %s/ca.crt\ncertfile %s/srv.crt\nkeyfile %s/srv.key\n",
	         broker.dir, broker.dir, broker.dir);
	snprintf(broker.sub_args, sizeof(broker.sub_args), "--cafile %s/ca.crt -h localhost", broker.dir);
	return broker_write_and_spawn(extra);
}

static int broker_teardown(void **state)
{
	broker_kill();
	if(strncmp(broker.dir, "/tmp/rp-mqtt-", 13) == 0)
		run(NULL, 0, "rm -rf '%s'", broker.dir);
	return 0;
}

/* Runs a shell command, returns its first output line (trailing newline
 * removed) in out. */
static int run(char *out, size_t n, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	if(out && n) {
		out[0] = '\0';
		if(fgets(out, (int)n, p))
			out[strcspn(out, "\n")] = '\0';
	}
	while(fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The retained message of topic as "<retain flag>|<payload>", "" if none. */
static void retained(const char *topic, char *out, size_t n)
{
	run(out, n,
	    "mosquitto_sub -h 127.0.0.1 -p %d %s -V mqttv5 -t '%s' -C 1 -W 2 -F '%%r|%%p' 2>/dev/null",
	    broker.port, broker.sub_args, topic);
}

/* Polls the retained message of topic until it is want. */
static bool retained_becomes(const char *topic, const char *want)
{
	int64_t end = now_ms() + DEADLINE_MS;
	char got[256];

	for(;;) {
		retained(topic, got, sizeof(got));
		if(strcmp(got, want) == 0)
			return true;
		if(now_ms() > end) {
			print_error("retained %s is \"%s\", want \"%s\"\n", topic, got, want);
			return false;
		}
		sleep_ms(50);
	}
}

/* --- a wrapper under test --------------------------------------------------------------- */

struct client {
	struct queue *inbox;
	struct mqtt *m;
	atomic_int on_connect_calls;
	atomic_int on_connect_reconnects;
	atomic_int on_disconnect_calls;
};

static void cb_connect(void *arg, bool reconnect)
{
	struct client *c = arg;

	atomic_fetch_add(&c->on_connect_calls, 1);
	if(reconnect)
		atomic_fetch_add(&c->on_connect_reconnects, 1);
	queue_wake(c->inbox);
}

static void cb_disconnect(void *arg)
{
	struct client *c = arg;

	atomic_fetch_add(&c->on_disconnect_calls, 1);
}

/* Optional overrides of the wrapper's options. */
struct client_cfg {
	const char *url;
	const char *username;
	const char *password;
	const char *ca_file;
	int max_buffered;
};

static void client_new_cfg(struct client *c, const char *prefix, int port, size_t inbox_cap,
                           size_t max_message, const struct client_cfg *cc)
{
	struct mqtt_options o;
	struct mqtt_callbacks cb = {.on_connect = cb_connect, .on_disconnect = cb_disconnect, .arg = c};
	struct rp_err err;
	char url[64], id[64];
	static int seq;

	memset(c, 0, sizeof(*c));
	assert_int_equal(queue_new(&c->inbox, inbox_cap), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	snprintf(id, sizeof(id), "test-%ld-%d", (long)getpid(), seq++);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.client_id = id;
	o.prefix = prefix;
	o.keepalive_s = 5;
	o.connect_timeout_s = 2;
	o.min_retry_s = 1;
	o.max_retry_s = 1;
	o.max_message = max_message;
	if(cc) {
		if(cc->url)
			o.url = cc->url;
		o.username = cc->username;
		o.password = cc->password;
		o.ca_file = cc->ca_file;
		o.max_buffered = cc->max_buffered;
	}
	if(mqtt_new(&c->m, &o, &cb, c->inbox, &err) != 0)
		fail_msg("mqtt_new: %s", err.msg);
}

static void client_new(struct client *c, const char *prefix, int port, size_t inbox_cap, size_t max_message)
{
	client_new_cfg(c, prefix, port, inbox_cap, max_message, NULL);
}

static void client_free(struct client *c)
{
	mqtt_free(c->m);
	queue_free(c->inbox, mqtt_msg_free);
	c->m = NULL;
	c->inbox = NULL;
}

static bool is_connected(void *arg)
{
	return mqtt_connected(((struct client *)arg)->m);
}

static bool is_disconnected(void *arg)
{
	return !mqtt_connected(((struct client *)arg)->m);
}

struct want_count {
	struct client *c;
	uint64_t subscribes;
	uint64_t received;
	int on_connect_calls;
};

static bool subscribed_enough(void *arg)
{
	struct want_count *w = arg;
	struct mqtt_counters k;

	mqtt_counters(w->c->m, &k);
	return k.subscribes >= w->subscribes;
}

static bool received_enough(void *arg)
{
	struct want_count *w = arg;
	struct mqtt_counters k;

	mqtt_counters(w->c->m, &k);
	return k.received >= w->received;
}

static bool connect_failed(void *arg)
{
	struct mqtt_counters k;

	mqtt_counters(((struct client *)arg)->m, &k);
	return k.connect_failures >= 1;
}

static bool connect_calls_enough(void *arg)
{
	struct want_count *w = arg;

	return atomic_load(&w->c->on_connect_calls) >= w->on_connect_calls;
}

static void start_and_wait(struct client *c, uint64_t subscribes)
{
	struct rp_err err;
	struct want_count w = {.c = c, .subscribes = subscribes};

	if(mqtt_start(c->m, &err) != 0)
		fail_msg("mqtt_start: %s", err.msg);
	assert_true(wait_for(is_connected, c));
	if(subscribes)
		assert_true(wait_for(subscribed_enough, &w));
}

/* Waits for the next message in c's inbox (NULL after the deadline). */
static struct mqtt_msg *next_msg(struct client *c)
{
	int64_t end = now_ms() + DEADLINE_MS;
	struct mqtt_msg *msg;

	while((msg = queue_pop(c->inbox)) == NULL) {
		int left = (int)(end - now_ms());
		if(left <= 0)
			return NULL;
		queue_wait(c->inbox, left);
	}
	return msg;
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_bad_urls_are_refused(void **state)
{
	static const char *const bad[] = {
	        "http://127.0.0.1:1883", "tcp://",     "tcp://host:0", "tcp://host:65536",
	        "tcp://host:12x",        "tcp://[::1", "tcp://:1883",  NULL};
	static const char *const good[] = {"tcp://127.0.0.1:1883",      "mqtt://broker",  "tcp://[::1]:1883",
	                                   "ssl://broker.example:8883", "mqtts://broker", NULL};
	struct queue *q;
	struct mqtt *m;
	struct mqtt_options o;
	struct rp_err err;
	int i;

	assert_int_equal(queue_new(&q, 4), 0);
	memset(&o, 0, sizeof(o));
	o.prefix = "ratepool";
	for(i = 0; bad[i]; i++) {
		o.url = bad[i];
		if(mqtt_new(&m, &o, NULL, q, &err) != RP_EINVAL)
			fail_msg("%s accepted", bad[i]);
		assert_null(m);
	}
	for(i = 0; good[i]; i++) {
		o.url = good[i];
		if(mqtt_new(&m, &o, NULL, q, &err) != 0)
			fail_msg("%s refused: %s", good[i], err.msg);
		assert_string_equal(mqtt_status_topic(m), "ratepool/status");
		mqtt_free(m);
	}
	o.url = "tcp://127.0.0.1:1883";
	o.prefix = "rate/+";
	assert_int_equal(mqtt_new(&m, &o, NULL, q, &err), RP_EINVAL);
	o.prefix = "ratepool";
	assert_int_equal(mqtt_new(&m, &o, NULL, NULL, &err), RP_EINVAL);
	queue_free(q, NULL);
}

static void test_online_is_retained_after_connect(void **state)
{
	struct client c;

	client_new(&c, "rp1", broker.port, 16, 0);
	start_and_wait(&c, 0);
	assert_true(retained_becomes("rp1/status", "1|online"));
	assert_int_equal(atomic_load(&c.on_connect_calls), 1);
	assert_int_equal(atomic_load(&c.on_connect_reconnects), 0);
	assert_int_equal(mqtt_connect_generation(c.m), 1);
	client_free(&c);
}

static void test_offline_is_retained_after_clean_stop(void **state)
{
	struct client c;

	client_new(&c, "rp2", broker.port, 16, 0);
	start_and_wait(&c, 0);
	assert_true(retained_becomes("rp2/status", "1|online"));
	mqtt_stop(c.m, true, 5000);
	assert_false(mqtt_connected(c.m));
	assert_true(retained_becomes("rp2/status", "1|offline"));
	/* publishing after stop fails loudly */
	assert_int_equal(mqtt_publish(c.m, "rp2/x", "1", 1, 0, false, 0), RP_ENET);
	client_free(&c);
}

static void test_unclean_stop_lets_the_broker_publish_the_will(void **state)
{
	struct client c;

	client_new(&c, "rp2b", broker.port, 16, 0);
	start_and_wait(&c, 0);
	assert_true(retained_becomes("rp2b/status", "1|online"));
	mqtt_stop(c.m, false, 5000);
	assert_true(retained_becomes("rp2b/status", "1|offline"));
	client_free(&c);
}

/* The will: a child process (this binary, re-executed) connects, sees its
 * own retained "online", says "ready" and dies by SIGKILL; the broker must
 * then publish the last will "offline". */
static int lwt_child(int port)
{
	struct client c;
	struct mqtt_msg *msg;

	client_new(&c, "rp3", port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp3/status", 1, false), 0);
	start_and_wait(&c, 1);
	while((msg = next_msg(&c)) != NULL) {
		bool online = strcmp(msg->payload, "online") == 0;
		mqtt_msg_free(msg);
		if(online)
			break;
	}
	printf("ready\n");
	fflush(stdout);
	raise(SIGKILL);
	return 1;
}

static void test_will_marks_offline_when_the_process_dies(void **state)
{
	char exe[PATH_MAX], portarg[16], line[64] = "";
	char *argv[] = {exe, "--lwt-child", portarg, NULL};
	posix_spawn_file_actions_t fa;
	int pipefd[2], st;
	ssize_t n;
	pid_t pid;
	FILE *f;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(portarg, sizeof(portarg), "%d", broker.port);
	assert_int_equal(pipe(pipefd), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	assert_int_equal(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	assert_non_null(f);
	if(!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(line, "ready\n");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(retained_becomes("rp3/status", "1|offline"));
}

static void test_request_and_reply_carry_response_topic_and_correlation(void **state)
{
	struct client srv, cli;
	struct mqtt_msg *req, *rep;
	char out[64];

	client_new(&srv, "rp4", broker.port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(srv.m, "rp4/request/+/+", 1, true), 0);
	start_and_wait(&srv, 1);
	client_new(&cli, "rp4client", broker.port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(cli.m, "client/reply/#", 1, false), 0);
	start_and_wait(&cli, 1);

	/* an MQTT 5 request with Response Topic and binary Correlation Data */
	assert_int_equal(run(out, sizeof(out),
	                     "printf '{\"id\":1}' | mosquitto_pub -h 127.0.0.1 -p %d -V mqttv5 -q 1 "
	                     "-t rp4/request/octopus/E-1R -s -D publish response-topic client/reply/7 "
	                     "-D publish correlation-data 'corr-7'",
	                     broker.port),
	                 0);
	req = next_msg(&srv);
	assert_non_null(req);
	assert_string_equal(req->topic, "rp4/request/octopus/E-1R");
	assert_int_equal(req->topic_len, strlen("rp4/request/octopus/E-1R"));
	assert_int_equal(req->len, 8);
	assert_string_equal(req->payload, "{\"id\":1}");
	assert_non_null(req->response_topic);
	assert_string_equal(req->response_topic, "client/reply/7");
	assert_int_equal(req->correlation_len, 6);
	assert_memory_equal(req->correlation, "corr-7", 6);
	assert_false(req->retained);
	assert_true(req->received_at_ms > 0);

	/* the reply echoes the correlation data to the response topic */
	assert_int_equal(mqtt_reply(srv.m, req->response_topic, req->correlation, req->correlation_len,
	                            "{\"status\":\"ok\"}", 15, 1, 60),
	                 0);
	rep = next_msg(&cli);
	assert_non_null(rep);
	assert_string_equal(rep->topic, "client/reply/7");
	assert_string_equal(rep->payload, "{\"status\":\"ok\"}");
	assert_int_equal(rep->correlation_len, 6);
	assert_memory_equal(rep->correlation, "corr-7", 6);
	assert_null(rep->response_topic);
	assert_false(rep->retained);
	mqtt_msg_free(rep);
	mqtt_msg_free(req);

	/* an MQTT 3.1.1 sender has neither property */
	assert_int_equal(run(out, sizeof(out),
	                     "mosquitto_pub -h 127.0.0.1 -p %d -V mqttv311 -t rp4/request/aemo/NSW1 -n",
	                     broker.port),
	                 0);
	req = next_msg(&srv);
	assert_non_null(req);
	assert_string_equal(req->topic, "rp4/request/aemo/NSW1");
	assert_int_equal(req->len, 0);
	assert_string_equal(req->payload, "");
	assert_null(req->response_topic);
	assert_null(req->correlation);
	assert_int_equal(req->correlation_len, 0);
	mqtt_msg_free(req);
	client_free(&cli);
	client_free(&srv);
}

static void test_reconnect_after_broker_restart_resubscribes_and_calls_on_connect(void **state)
{
	struct client c;
	struct want_count w;
	struct mqtt_counters k;
	struct mqtt_msg *msg;
	char out[64];

	client_new(&c, "rp5", broker.port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp5/request/+/+", 1, true), 0);
	start_and_wait(&c, 1);
	assert_true(retained_becomes("rp5/status", "1|online"));

	broker_kill(); /* no persistence: retained "online" and subscriptions are gone */
	assert_true(wait_for(is_disconnected, &c));
	assert_true(atomic_load(&c.on_disconnect_calls) >= 1);
	assert_int_equal(mqtt_publish(c.m, "rp5/x", "1", 1, 1, true, 0), RP_ENET);
	broker_spawn();

	w.c = &c;
	w.on_connect_calls = 2;
	w.subscribes = 2;
	assert_true(wait_for(connect_calls_enough, &w));
	assert_true(wait_for(is_connected, &c));
	assert_true(wait_for(subscribed_enough, &w));
	assert_true(atomic_load(&c.on_connect_reconnects) >= 1);
	assert_true(mqtt_connect_generation(c.m) >= 2);
	mqtt_counters(c.m, &k);
	assert_true(k.reconnects >= 1);
	assert_true(k.connection_lost >= 1);
	assert_true(k.publish_failures >= 1);

	/* "online" is retained again and requests arrive again */
	assert_true(retained_becomes("rp5/status", "1|online"));
	assert_int_equal(run(out, sizeof(out),
	                     "mosquitto_pub -h 127.0.0.1 -p %d -t rp5/request/aemo/SA1 -m again",
	                     broker.port),
	                 0);
	msg = next_msg(&c);
	assert_non_null(msg);
	assert_string_equal(msg->topic, "rp5/request/aemo/SA1");
	assert_string_equal(msg->payload, "again");
	mqtt_msg_free(msg);
	client_free(&c);
}

static void test_publish_fails_loudly_without_a_broker(void **state)
{
	struct client c;
	struct mqtt_counters k;
	struct rp_err err;

	client_new(&c, "rp6", free_port(), 16, 0);
	/* before start */
	assert_int_equal(mqtt_publish(c.m, "rp6/x", "1", 1, 1, true, 0), RP_ENET);
	assert_int_equal(mqtt_start(c.m, &err), 0);
	assert_int_equal(mqtt_start(c.m, &err), RP_EBUSY);
	assert_false(mqtt_connected(c.m));
	assert_int_equal(mqtt_publish(c.m, "rp6/x", "1", 1, 1, true, 0), RP_ENET);
	assert_int_equal(mqtt_reply(c.m, "rp6/r", "c", 1, "1", 1, 0, 0), RP_ENET);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.publish_failures, 3);
	assert_int_equal(k.published, 0);
	mqtt_stop(c.m, true, 1000);
	client_free(&c);
}

static void test_publish_refuses_wildcards_and_broker_topics(void **state)
{
	struct client c;
	struct mqtt_counters k;
	char big[70000];

	client_new(&c, "rp7", broker.port, 16, 0);
	start_and_wait(&c, 0);
	assert_int_equal(mqtt_publish(c.m, "a/+/b", "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "a/#", "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "$SYS/x", "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "", "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, NULL, "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "a/b", "1", 1, 3, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "a/b", NULL, 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_publish(c.m, "a/\xff", "1", 1, 0, false, 0), RP_EINVAL); /* not UTF-8 */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mqtt_publish(c.m, big, "1", 1, 0, false, 0), RP_EINVAL);
	assert_int_equal(mqtt_reply(c.m, "a/b", big, 65536, "1", 1, 0, 0), RP_EINVAL);
	/* still connected, and a good publish goes through */
	assert_true(mqtt_connected(c.m));
	assert_int_equal(mqtt_publish(c.m, "rp7/ok", "yes", 3, 1, true, 0), 0);
	assert_true(retained_becomes("rp7/ok", "1|yes"));
	assert_int_equal(mqtt_connect_generation(c.m), 1);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.publish_failures, 10);
	client_free(&c);
}

/* TCP sockets of this process connected to port: total, and how many
 * have TCP_NODELAY on. */
static void scan_sockets(int port, int *total, int *nodelay)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	*total = *nodelay = 0;
	assert_non_null(d);
	while((de = readdir(d)) != NULL) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = atoi(de->d_name), on = 0;
		socklen_t ol = sizeof(on);

		if(de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if(getpeername(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sin_family != AF_INET ||
		   ntohs(sa.sin_port) != port)
			continue;
		(*total)++;
		if(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol) == 0 && on)
			(*nodelay)++;
	}
	closedir(d);
}

static void test_tcp_nodelay_is_set_on_the_broker_socket(void **state)
{
	struct client c;
	struct mqtt_counters k;
	int total, nodelay;

	client_new(&c, "rp8", broker.port, 16, 0);
	start_and_wait(&c, 0);
	scan_sockets(broker.port, &total, &nodelay);
	assert_int_equal(total, 1);
	assert_int_equal(nodelay, 1);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.nodelay_set, 1);
	client_free(&c);
}

static void test_full_inbox_drops_and_counts(void **state)
{
	struct client c;
	struct want_count w;
	struct mqtt_counters k;
	struct queue_stats qs;
	char out[64];

	client_new(&c, "rp9", broker.port, 2, 0);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp9/request/+/+", 1, false), 0);
	start_and_wait(&c, 1);
	assert_int_equal(run(out, sizeof(out),
	                     "printf 'a\\nb\\nc\\nd\\ne\\n' | mosquitto_pub -h 127.0.0.1 -p %d -q 1 "
	                     "-t rp9/request/aemo/NSW1 -l",
	                     broker.port),
	                 0);
	w.c = &c;
	w.received = 5;
	assert_true(wait_for(received_enough, &w));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.received, 5);
	assert_int_equal(k.dropped_queue_full, 3);
	queue_stats(c.inbox, &qs);
	assert_int_equal(qs.length, 2);
	assert_int_equal(qs.dropped, 3);
	client_free(&c); /* the two queued messages are freed by queue_free */
}

static void test_oversized_message_is_dropped_and_counted(void **state)
{
	struct client c;
	struct mqtt_counters k;
	struct mqtt_msg *msg;
	char out[64];

	client_new(&c, "rp10", broker.port, 16, 16);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp10/request/+/+", 0, false), 0);
	start_and_wait(&c, 1);
	assert_int_equal(run(out, sizeof(out),
	                     "mosquitto_pub -h 127.0.0.1 -p %d -t rp10/request/aemo/NSW1 -m "
	                     "'0123456789abcdefXYZ' && mosquitto_pub -h 127.0.0.1 -p %d -t "
	                     "rp10/request/aemo/QLD1 -m ok",
	                     broker.port, broker.port),
	                 0);
	msg = next_msg(&c);
	assert_non_null(msg);
	assert_string_equal(msg->topic, "rp10/request/aemo/QLD1");
	mqtt_msg_free(msg);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.dropped_invalid, 1);
	assert_int_equal(k.received, 2);
	client_free(&c);
}

static void test_skip_retained_subscription_never_replays_retained_requests(void **state)
{
	struct client c;
	struct mqtt_msg *msg;
	char out[64];

	assert_int_equal(run(out, sizeof(out),
	                     "mosquitto_pub -h 127.0.0.1 -p %d -r -q 1 -t rp11/request/aemo/NSW1 -m stale",
	                     broker.port),
	                 0);
	client_new(&c, "rp11", broker.port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp11/request/+/+", 1, true), 0);
	start_and_wait(&c, 1);
	assert_int_equal(run(out, sizeof(out),
	                     "mosquitto_pub -h 127.0.0.1 -p %d -t rp11/request/aemo/VIC1 -m fresh",
	                     broker.port),
	                 0);
	msg = next_msg(&c);
	assert_non_null(msg);
	assert_string_equal(msg->payload, "fresh");
	mqtt_msg_free(msg);
	assert_null(queue_pop(c.inbox));
	client_free(&c);
}

static void test_message_expiry_is_set_on_publish(void **state)
{
	struct client c;
	char got[64];
	long left;

	client_new(&c, "rp12", broker.port, 16, 0);
	start_and_wait(&c, 0);
	assert_int_equal(mqtt_publish(c.m, "rp12/prices/x/current", "{}", 2, 1, true, 600), 0);
	assert_true(retained_becomes("rp12/prices/x/current", "1|{}"));
	run(got, sizeof(got),
	    "mosquitto_sub -h 127.0.0.1 -p %d -V mqttv5 -t rp12/prices/x/current -C 1 -W 2 -F '%%E' "
	    "2>/dev/null",
	    broker.port);
	left = strtol(got, NULL, 10);
	if(left < 1 || left > 600)
		fail_msg("expiry interval \"%s\"", got);
	client_free(&c);
}

static void test_subscriptions_only_before_start(void **state)
{
	struct client c;
	int i;
	char f[32];

	client_new(&c, "rp13", broker.port, 16, 0);
	assert_int_equal(mqtt_subscribe_add(c.m, "", 0, false), RP_EINVAL);
	assert_int_equal(mqtt_subscribe_add(c.m, "a", 3, false), RP_EINVAL);
	for(i = 0; i < MQTT_MAX_SUBSCRIPTIONS; i++) {
		snprintf(f, sizeof(f), "rp13/t%d", i);
		assert_int_equal(mqtt_subscribe_add(c.m, f, 0, false), 0);
	}
	assert_int_equal(mqtt_subscribe_add(c.m, "rp13/more", 0, false), RP_EBUSY);
	start_and_wait(&c, 1);
	assert_int_equal(mqtt_subscribe_add(c.m, "rp13/late", 0, false), RP_EBUSY);
	client_free(&c);
}

static void test_credentials_are_sent(void **state)
{
	struct client_cfg cc = {.username = AUTH_USER, .password = AUTH_PASS};
	struct client c;

	client_new_cfg(&c, "rp14", broker.port, 16, 0, &cc);
	start_and_wait(&c, 0);
	assert_true(retained_becomes("rp14/status", "1|online"));
	client_free(&c);
}

static void test_wrong_password_never_connects(void **state)
{
	struct client_cfg cc = {.username = AUTH_USER, .password = "wrong"};
	struct mqtt_counters k;
	struct client c;
	struct rp_err err;

	client_new_cfg(&c, "rp15", broker.port, 16, 0, &cc);
	assert_int_equal(mqtt_start(c.m, &err), 0);
	assert_true(wait_for(connect_failed, &c));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.connects, 0);
	assert_false(mqtt_connected(c.m));
	assert_int_equal(mqtt_publish(c.m, "rp15/x", "1", 1, 1, true, 0), RP_ENET);
	client_free(&c);
}

static void test_tls_with_the_ca_file_connects(void **state)
{
	char url[64], ca[128];
	struct client_cfg cc = {.url = url, .ca_file = ca};
	struct mqtt_counters k;
	struct client c;

	snprintf(url, sizeof(url), "ssl://localhost:%d", broker.port);
	snprintf(ca, sizeof(ca), "%s/ca.crt", broker.dir);
	client_new_cfg(&c, "rp16", broker.port, 16, 0, &cc);
	start_and_wait(&c, 0);
	assert_true(retained_becomes("rp16/status", "1|online"));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.nodelay_set, 1);
	client_free(&c);
}

static void test_tls_with_a_foreign_ca_is_refused(void **state)
{
	char url[64], ca[128];
	struct client_cfg cc = {.url = url, .ca_file = ca};
	struct mqtt_counters k;
	struct client c;
	struct rp_err err;

	snprintf(url, sizeof(url), "ssl://localhost:%d", broker.port);
	snprintf(ca, sizeof(ca), "%s/other.crt", broker.dir);
	client_new_cfg(&c, "rp17", broker.port, 16, 0, &cc);
	assert_int_equal(mqtt_start(c.m, &err), 0);
	assert_true(wait_for(connect_failed, &c));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.connects, 0);
	assert_false(mqtt_connected(c.m));
	client_free(&c);
}

/* --- the outbox: QoS 1 bursts ----------------------------------------------------------- */

static bool outbox_idle(void *arg)
{
	struct mqtt_counters k;

	mqtt_counters(((struct client *)arg)->m, &k);
	return k.outbox_queued == 0 && k.outbox_inflight == 0;
}

struct outbox_want {
	struct client *c;
	uint64_t queued;
	uint64_t inflight;
};

static bool outbox_is(void *arg)
{
	struct outbox_want *w = arg;
	struct mqtt_counters k;

	mqtt_counters(w->c->m, &k);
	return k.outbox_queued == w->queued && k.outbox_inflight == w->inflight;
}

/* Pops messages from c's inbox until n arrived or the monotonic clock
 * passes end_ms; gives each to seen (may be NULL). Returns the count. */
static int collect(struct client *c, int n, int64_t end_ms, void (*seen)(const struct mqtt_msg *, void *),
                   void *arg)
{
	struct mqtt_msg *msg;
	int got = 0;

	while(got < n) {
		int left = (int)(end_ms - now_ms());

		msg = queue_pop(c->inbox);
		if(!msg) {
			if(left <= 0)
				break;
			queue_wait(c->inbox, left < 100 ? left : 100);
			continue;
		}
		if(seen)
			seen(msg, arg);
		mqtt_msg_free(msg);
		got++;
	}
	return got;
}

/* Publishes n retained QoS 1 messages on <prefix>/burst/<i> through one
 * client and checks that a subscriber has all of them within 15 s: paho
 * alone, woken once a second, managed 20 per second (100 s for 2,000);
 * the outbox drains at the broker's speed (well under a second here). */
static void burst_reaches_subscriber(const char *prefix, int n, uint64_t want_window)
{
	struct client pub, sub;
	struct mqtt_counters k;
	char topic[64], filter[64], payload[16];
	int64_t t0;
	int i, got;

	snprintf(filter, sizeof(filter), "%s/burst/#", prefix);
	snprintf(topic, sizeof(topic), "%ssub", prefix);
	client_new(&sub, topic, broker.port, (size_t)n + 16, 0);
	assert_int_equal(mqtt_subscribe_add(sub.m, filter, 1, false), 0);
	start_and_wait(&sub, 1);
	client_new(&pub, prefix, broker.port, 16, 0);
	start_and_wait(&pub, 0);
	assert_true(wait_for(outbox_idle, &pub));
	mqtt_counters(pub.m, &k);
	assert_int_equal(k.outbox_window, want_window);

	t0 = now_ms();
	for(i = 0; i < n; i++) {
		snprintf(topic, sizeof(topic), "%s/burst/%d", prefix, i);
		snprintf(payload, sizeof(payload), "%d", i);
		assert_int_equal(mqtt_publish(pub.m, topic, payload, strlen(payload), 1, true, 0), 0);
	}
	got = collect(&sub, n, t0 + 15000, NULL, NULL);
	if(got != n)
		fail_msg("%d of %d QoS 1 messages arrived within 15 s", got, n);
	assert_true(wait_for(outbox_idle, &pub));
	mqtt_counters(pub.m, &k);
	assert_int_equal(k.published, (uint64_t)n + 1); /* and "online" */
	assert_int_equal(k.publish_failures, 0);
	assert_int_equal(k.outbox_full, 0);
	assert_int_equal(k.outbox_dropped, 0);
	client_free(&pub);
	client_free(&sub);
}

static void test_qos1_burst_drains_at_the_brokers_speed(void **state)
{
	/* mosquitto's default Receive Maximum is 20 */
	burst_reaches_subscriber("rp20", 2000, 20);
}

static void test_window_follows_the_brokers_receive_maximum(void **state)
{
	burst_reaches_subscriber("rp25", 500, 5);
}

/* No Receive Maximum means 65,535 (MQTT 5, 3.2.2.3.3): the window is then
 * the wrapper's own cap, 1,024. */
static void test_window_is_capped_when_the_broker_sets_no_receive_maximum(void **state)
{
	burst_reaches_subscriber("rp27", 2000, 1024);
}

#define ORDER_THREADS 4
#define ORDER_EACH    500

struct order_thread {
	struct client *c;
	int t;
	int failures;
};

static void *order_publisher(void *arg)
{
	struct order_thread *ot = arg;
	char topic[32], payload[16];
	int i;

	snprintf(topic, sizeof(topic), "rp21/order/%d", ot->t);
	for(i = 0; i < ORDER_EACH; i++) {
		snprintf(payload, sizeof(payload), "%d", i);
		if(mqtt_publish(ot->c->m, topic, payload, strlen(payload), 1, false, 0) != 0)
			ot->failures++;
	}
	return NULL;
}

struct order_seen {
	int next[ORDER_THREADS];
	int bad;
};

static void order_check(const struct mqtt_msg *msg, void *arg)
{
	struct order_seen *os = arg;
	long t = strtol(msg->topic + strlen("rp21/order/"), NULL, 10);
	long seq = strtol(msg->payload, NULL, 10);

	if(t < 0 || t >= ORDER_THREADS || seq != os->next[t]) {
		os->bad++;
		if(os->bad < 5)
			print_error("%s: got %ld, want %d\n", msg->topic, seq,
			            t >= 0 && t < ORDER_THREADS ? os->next[t] : -1);
		return;
	}
	os->next[t]++;
}

/* Four threads publish at once, each in sequence on its own topic: every
 * topic's messages arrive complete and in the order they were published
 * (one FIFO, one pumping thread at a time). */
static void test_qos1_order_is_kept_on_each_topic(void **state)
{
	struct client pub, sub;
	struct order_thread ot[ORDER_THREADS];
	pthread_t th[ORDER_THREADS];
	struct order_seen os;
	int i, got;

	client_new(&sub, "rp21sub", broker.port, ORDER_THREADS * ORDER_EACH + 16, 0);
	assert_int_equal(mqtt_subscribe_add(sub.m, "rp21/order/+", 1, false), 0);
	start_and_wait(&sub, 1);
	client_new(&pub, "rp21", broker.port, 16, 0);
	start_and_wait(&pub, 0);
	for(i = 0; i < ORDER_THREADS; i++) {
		ot[i].c = &pub;
		ot[i].t = i;
		ot[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, order_publisher, &ot[i]), 0);
	}
	for(i = 0; i < ORDER_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ot[i].failures, 0);
	}
	memset(&os, 0, sizeof(os));
	got = collect(&sub, ORDER_THREADS * ORDER_EACH, now_ms() + DEADLINE_MS, order_check, &os);
	assert_int_equal(got, ORDER_THREADS * ORDER_EACH);
	assert_int_equal(os.bad, 0);
	for(i = 0; i < ORDER_THREADS; i++)
		assert_int_equal(os.next[i], ORDER_EACH);
	client_free(&pub);
	client_free(&sub);
}

#define SMALL_OUTBOX 8

/* With the broker paused no PUBACK comes: paho gets a full window, the
 * outbox fills up to max_buffered, and the next publish is refused with
 * RP_EBUSY and counted. Once the broker answers again, every accepted
 * message arrives. */
static void test_full_outbox_refuses_with_ebusy_and_counts(void **state)
{
	struct client_cfg cc = {.max_buffered = SMALL_OUTBOX};
	struct client pub, sub;
	struct mqtt_counters k;
	uint64_t window, base_failures;
	char topic[64];
	int accepted = 0, busy = 0, tries, rc, got;

	client_new(&sub, "rp22sub", broker.port, 256, 0);
	assert_int_equal(mqtt_subscribe_add(sub.m, "rp22/full/+", 1, false), 0);
	start_and_wait(&sub, 1);
	client_new_cfg(&pub, "rp22", broker.port, 16, 0, &cc);
	start_and_wait(&pub, 0);
	assert_true(wait_for(outbox_idle, &pub));
	mqtt_counters(pub.m, &k);
	window = k.outbox_window;
	assert_int_equal(window, SMALL_OUTBOX); /* never above max_buffered */
	base_failures = k.publish_failures;

	broker_pause();
	for(tries = 0; tries < 10000; tries++) {
		snprintf(topic, sizeof(topic), "rp22/full/%d", accepted);
		rc = mqtt_publish(pub.m, topic, "x", 1, 1, false, 0);
		if(rc == 0) {
			accepted++;
			continue;
		}
		assert_int_equal(rc, RP_EBUSY);
		busy++;
		mqtt_counters(pub.m, &k);
		/* refused while paho holds a full window and the outbox is full */
		if(k.outbox_queued == SMALL_OUTBOX && k.outbox_inflight == window)
			break;
		sleep_ms(1); /* another thread is still pumping */
	}
	assert_int_equal(accepted, (int)window + SMALL_OUTBOX);
	mqtt_counters(pub.m, &k);
	assert_int_equal(k.outbox_full, (uint64_t)busy);
	assert_int_equal(k.publish_failures - base_failures, (uint64_t)busy);
	assert_true(mqtt_connected(pub.m));

	broker_resume();
	got = collect(&sub, accepted, now_ms() + DEADLINE_MS, NULL, NULL);
	assert_int_equal(got, accepted);
	assert_true(wait_for(outbox_idle, &pub));
	mqtt_counters(pub.m, &k);
	assert_int_equal(k.publish_failures - base_failures, (uint64_t)busy);
	assert_int_equal(k.outbox_dropped, 0);
	/* room again */
	assert_int_equal(mqtt_publish(pub.m, "rp22/full/again", "x", 1, 1, false, 0), 0);
	assert_true(wait_for(outbox_idle, &pub));
	client_free(&pub);
	client_free(&sub);
}

#define LOST_QUEUED 30

/* The broker dies mid-burst: what the outbox held is dropped and counted
 * (the reconnect's on_connect republishes retained state anyway), the
 * publishes paho had sent fail, and after the reconnect every slot of the
 * window is free again and publishing works. */
static void test_lost_connection_drops_the_outbox_and_reconnect_works(void **state)
{
	struct client_cfg cc = {.max_buffered = 64};
	struct client c;
	struct mqtt_counters k;
	struct outbox_want ow;
	struct want_count w;
	uint64_t window, base_failures;
	char topic[64];
	int i;

	client_new_cfg(&c, "rp23", broker.port, 16, 0, &cc);
	start_and_wait(&c, 0);
	assert_true(wait_for(outbox_idle, &c));
	mqtt_counters(c.m, &k);
	window = k.outbox_window;
	assert_true(window + LOST_QUEUED <= 64);
	base_failures = k.publish_failures;

	broker_pause();
	for(i = 0; i < (int)window + LOST_QUEUED; i++) {
		snprintf(topic, sizeof(topic), "rp23/lost/%d", i);
		assert_int_equal(mqtt_publish(c.m, topic, "x", 1, 1, true, 0), 0);
	}
	ow.c = &c;
	ow.queued = LOST_QUEUED;
	ow.inflight = window;
	assert_true(wait_for(outbox_is, &ow));
	broker_crash();
	assert_true(wait_for(is_disconnected, &c));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.outbox_dropped, LOST_QUEUED);
	assert_int_equal(k.outbox_queued, 0);
	/* and the ones paho had sent failed; those it had not sent yet it
	 * keeps for the next connection */
	assert_true(k.publish_failures - base_failures >= LOST_QUEUED);
	assert_true(k.publish_failures - base_failures <= LOST_QUEUED + window);
	assert_int_equal(mqtt_publish(c.m, "rp23/x", "1", 1, 1, true, 0), RP_ENET);

	broker_spawn();
	w.c = &c;
	w.on_connect_calls = 2;
	assert_true(wait_for(connect_calls_enough, &w));
	assert_true(wait_for(is_connected, &c));
	/* every slot of the window comes back */
	assert_true(wait_for(outbox_idle, &c));
	/* a burst that fits the outbox (64) */
	for(i = 0; i < 60; i++) {
		snprintf(topic, sizeof(topic), "rp23/again/%d", i);
		assert_int_equal(mqtt_publish(c.m, topic, "y", 1, 1, true, 0), 0);
	}
	assert_true(retained_becomes("rp23/again/59", "1|y"));
	assert_true(wait_for(outbox_idle, &c));
	mqtt_counters(c.m, &k);
	assert_int_equal(k.outbox_dropped, LOST_QUEUED);
	assert_int_equal(k.outbox_window, window);
	client_free(&c);
}

/* A clean stop sends what the outbox holds before "offline". */
static void test_clean_stop_sends_the_outbox_first(void **state)
{
	struct client c;
	struct mqtt_counters k;
	char topic[64], payload[16];
	int i;

	client_new(&c, "rp24", broker.port, 16, 0);
	start_and_wait(&c, 0);
	for(i = 0; i < 500; i++) {
		snprintf(topic, sizeof(topic), "rp24/stop/%d", i);
		snprintf(payload, sizeof(payload), "%d", i);
		assert_int_equal(mqtt_publish(c.m, topic, payload, strlen(payload), 1, true, 0), 0);
	}
	mqtt_stop(c.m, true, 10000);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.outbox_dropped, 0);
	assert_int_equal(k.publish_failures, 0);
	assert_int_equal(k.published, 502); /* online, 500, offline */
	assert_true(retained_becomes("rp24/stop/499", "1|499"));
	assert_true(retained_becomes("rp24/status", "1|offline"));
	client_free(&c);
}

/* An unclean stop (or a clean one out of time) drops what the outbox
 * holds and counts it. */
static void test_stop_drops_and_counts_what_the_outbox_holds(void **state)
{
	struct client_cfg cc = {.max_buffered = 64};
	struct client c;
	struct mqtt_counters k;
	struct outbox_want ow;
	uint64_t window;
	char topic[64];
	int i;

	client_new_cfg(&c, "rp26", broker.port, 16, 0, &cc);
	start_and_wait(&c, 0);
	assert_true(wait_for(outbox_idle, &c));
	mqtt_counters(c.m, &k);
	window = k.outbox_window;
	broker_pause();
	for(i = 0; i < (int)window + 10; i++) {
		snprintf(topic, sizeof(topic), "rp26/stop/%d", i);
		assert_int_equal(mqtt_publish(c.m, topic, "x", 1, 1, true, 0), 0);
	}
	ow.c = &c;
	ow.queued = 10;
	ow.inflight = window;
	assert_true(wait_for(outbox_is, &ow));
	mqtt_stop(c.m, false, 200);
	mqtt_counters(c.m, &k);
	assert_int_equal(k.outbox_dropped, 10);
	assert_int_equal(k.outbox_queued, 0);
	assert_int_equal(mqtt_publish(c.m, "rp26/x", "1", 1, 1, true, 0), RP_ENET);
	broker_resume();
	client_free(&c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_urls_are_refused),
	        cmocka_unit_test_setup_teardown(test_online_is_retained_after_connect, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_offline_is_retained_after_clean_stop, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_unclean_stop_lets_the_broker_publish_the_will,
	                                        broker_setup, broker_teardown),
	        cmocka_unit_test_setup_teardown(test_will_marks_offline_when_the_process_dies, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_request_and_reply_carry_response_topic_and_correlation,
	                                        broker_setup, broker_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reconnect_after_broker_restart_resubscribes_and_calls_on_connect, broker_setup,
	                broker_teardown),
	        cmocka_unit_test(test_publish_fails_loudly_without_a_broker),
	        cmocka_unit_test_setup_teardown(test_publish_refuses_wildcards_and_broker_topics,
	                                        broker_setup, broker_teardown),
	        cmocka_unit_test_setup_teardown(test_tcp_nodelay_is_set_on_the_broker_socket, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_full_inbox_drops_and_counts, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_oversized_message_is_dropped_and_counted, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_skip_retained_subscription_never_replays_retained_requests, broker_setup,
	                broker_teardown),
	        cmocka_unit_test_setup_teardown(test_message_expiry_is_set_on_publish, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_subscriptions_only_before_start, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_credentials_are_sent, broker_setup_auth,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_password_never_connects, broker_setup_auth,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_tls_with_the_ca_file_connects, broker_setup_tls,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_tls_with_a_foreign_ca_is_refused, broker_setup_tls,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_qos1_burst_drains_at_the_brokers_speed, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_window_follows_the_brokers_receive_maximum,
	                                        broker_setup_receive_max, broker_teardown),
	        cmocka_unit_test_setup_teardown(test_window_is_capped_when_the_broker_sets_no_receive_maximum,
	                                        broker_setup_no_receive_max, broker_teardown),
	        cmocka_unit_test_setup_teardown(test_qos1_order_is_kept_on_each_topic, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_full_outbox_refuses_with_ebusy_and_counts, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_lost_connection_drops_the_outbox_and_reconnect_works,
	                                        broker_setup, broker_teardown),
	        cmocka_unit_test_setup_teardown(test_clean_stop_sends_the_outbox_first, broker_setup,
	                                        broker_teardown),
	        cmocka_unit_test_setup_teardown(test_stop_drops_and_counts_what_the_outbox_holds,
	                                        broker_setup, broker_teardown),
	};

	/* RATEPOOL_TEST_LOG=1 shows the wrapper's info lines */
	log_open(getenv("RATEPOOL_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, NULL);
	if(argc == 3 && strcmp(argv[1], "--lwt-child") == 0)
		return lwt_child(atoi(argv[2]));
	if(access(MOSQUITTO, X_OK) != 0) {
		printf("test_mqtt: %s not found, skipped\n", MOSQUITTO);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
