/*
 * echo.c - the baseline responder of the round-trip benchmark: the
 * physical limit of the broker and loopback that ratepool is compared
 * with. Not part of ratepool; built by `make bench` into
 * $(BUILD)/bench/echo.
 *
 * It connects to the broker with MQTT 5 (paho MQTTAsync, like ratepool,
 * with TCP_NODELAY switched on like ratepool's mqtt.c does), subscribes to
 * P/request/+/+ at QoS 1 (what ratepool subscribes with) and answers every
 * request that carries a Response Topic with a fixed payload (--size bytes
 * of JSON shaped like a ratepool reply, or --payload) and the request's
 * Correlation Data, at the request's QoS capped at 1, not retained. It
 * replies from paho's message callback: no parsing, no lookup, no queue.
 *
 *   echo [--url URL] [--prefix P] [--size BYTES | --payload TEXT]
 *        [--duration S] [--ready-file PATH]
 *
 * Runs until SIGTERM/SIGINT (or --duration seconds), then prints
 * {"requests":N,"replies":N,"reply_failures":N,"no_response_topic":N} on
 * stdout. --ready-file: written once subscribed, so a driver can wait for
 * it instead of sleeping. Exit 0, or 1 when the broker could not be used.
 */
#include "ratepool/mqtt.h"

#include <MQTTAsync.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIZE_MAX_BYTES (1024 * 1024)
#define TOPIC_MAX_LEN  512

struct echo {
	MQTTAsync client;
	char *payload;
	size_t payload_len;
	atomic_int state; /* 0 connecting, 1 connected, 2 subscribed, -1 failed */
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t replies;
	atomic_uint_fast64_t reply_failures;
	atomic_uint_fast64_t no_response_topic;
	atomic_bool lost;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if(errno || e == s || *e || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A reply-shaped JSON document of exactly n bytes (n >= 64): the status
 * and series a ratepool reply starts with, then rates padded to size. */
static char *make_payload(size_t n)
{
	static const char head[] =
	        "{\"status\":\"ok\",\"series\":\"echo/echo\",\"unit\":\"GBP/kWh\",\"rates\":[],"
	        "\"pad\":\"";
	static const char rate[] = "{\"start\":\"2026-11-21T00:00:00Z\",\"end\":\"2026-11-21T00:30:00Z\","
	                           "\"value\":0.2345},";
	char *p = malloc(n + 1);
	size_t len = strlen(head), i;

	if(!p || n < len + 2)
		return p;
	memcpy(p, head, len);
	for(i = len; i < n - 2; i++)
		p[i] = rate[(i - len) % (sizeof(rate) - 1)] == '"' ? '\''
		                                                   : rate[(i - len) % (sizeof(rate) - 1)];
	p[n - 2] = '"';
	p[n - 1] = '}';
	p[n] = '\0';
	return p;
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct echo *e = context;
	MQTTProperty *rt = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
	MQTTProperty *cd = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
	char reply_topic[TOPIC_MAX_LEN];

	(void)topic_len;
	atomic_fetch_add(&e->requests, 1);
	if(rt && rt->value.data.len > 0 && rt->value.data.len < TOPIC_MAX_LEN) {
		MQTTAsync_message r = MQTTAsync_message_initializer;
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
		int rc;

		memcpy(reply_topic, rt->value.data.data, (size_t)rt->value.data.len);
		reply_topic[rt->value.data.len] = '\0';
		r.payload = e->payload;
		r.payloadlen = (int)e->payload_len;
		r.qos = m->qos > 1 ? 1 : m->qos;
		r.retained = 0;
		if(cd && cd->value.data.len > 0)
			MQTTProperties_add(&r.properties, cd);
		/* paho (MQTT 5) sends the properties of the response options,
		 * into which sendMessage copies r.properties: not NULL. */
		rc = MQTTAsync_sendMessage(e->client, reply_topic, &r, &ro);
		MQTTProperties_free(&r.properties);
		if(rc == MQTTASYNC_SUCCESS)
			atomic_fetch_add(&e->replies, 1);
		else
			atomic_fetch_add(&e->reply_failures, 1);
	} else
		atomic_fetch_add(&e->no_response_topic, 1);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void on_connection_lost(void *context, char *cause)
{
	struct echo *e = context;

	(void)cause;
	atomic_store(&e->lost, true);
}

static void on_connected(void *context, MQTTAsync_successData5 *r)
{
	(void)r;
	atomic_store(&((struct echo *)context)->state, 1);
}

static void on_failed(void *context, MQTTAsync_failureData5 *r)
{
	fprintf(stderr, "echo: connect or subscribe failed: %d %s\n", r ? r->code : 0,
	        r && r->message ? r->message : "");
	atomic_store(&((struct echo *)context)->state, -1);
}

static void on_subscribed(void *context, MQTTAsync_successData5 *r)
{
	struct echo *e = context;

	atomic_store(&e->state, r && r->reasonCode >= 0x80 ? -1 : 2);
}

static int wait_state(struct echo *e, int want)
{
	int i;

	for(i = 0; i < 10000; i++) {
		int st = atomic_load(&e->state);
		if(st < 0)
			return -1;
		if(st >= want)
			return 0;
		sleep_ms(2);
	}
	return -1;
}

int main(int argc, char **argv)
{
	static struct echo e;
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	const char *url = "tcp://127.0.0.1:1883", *prefix = "ratepool", *ready = NULL, *text = NULL;
	char filter[TOPIC_MAX_LEN], id[64];
	long size = 2048, duration_s = 0, waited_ms = 0;
	struct sigaction sa;
	int a, rc = 1;

	for(a = 1; a < argc; a++) {
		const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
		if(!v) {
			fprintf(stderr,
			        "usage: echo [--url URL] [--prefix P] [--size BYTES | --payload TEXT] "
			        "[--duration S] [--ready-file PATH]\n");
			return 2;
		}
		a++;
		if(!strcmp(o, "--url"))
			url = v;
		else if(!strcmp(o, "--prefix"))
			prefix = v;
		else if(!strcmp(o, "--payload"))
			text = v;
		else if(!strcmp(o, "--ready-file"))
			ready = v;
		else if(!strcmp(o, "--size")) {
			if(parse_long(v, 128, SIZE_MAX_BYTES, &size))
				goto usage;
		} else if(!strcmp(o, "--duration")) {
			if(parse_long(v, 1, 86400, &duration_s))
				goto usage;
		} else
			goto usage;
	}
	if(text) {
		e.payload = strdup(text);
		e.payload_len = strlen(text);
	} else {
		e.payload = make_payload((size_t)size);
		e.payload_len = (size_t)size;
	}
	if(!e.payload)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	snprintf(id, sizeof(id), "echo-%ld", (long)getpid());
	/* paho refuses a send while this many are queued, connected or not
	 * (default 100); a herd of requests queues many replies at once. */
	co.maxBufferedMessages = 1000000;
	snprintf(filter, sizeof(filter), "%s/request/+/+", prefix);
	if(MQTTAsync_createWithOptions(&e.client, url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
	   MQTTASYNC_SUCCESS) {
		fprintf(stderr, "echo: cannot create a client for %s\n", url);
		e.client = NULL;
		goto out;
	}
	if(MQTTAsync_setCallbacks(e.client, &e, on_connection_lost, on_message, NULL) != MQTTASYNC_SUCCESS)
		goto out;
	opts.keepAliveInterval = 60;
	opts.cleanstart = 1;
	opts.onSuccess5 = on_connected;
	opts.onFailure5 = on_failed;
	opts.context = &e;
	if(MQTTAsync_connect(e.client, &opts) != MQTTASYNC_SUCCESS || wait_state(&e, 1)) {
		fprintf(stderr, "echo: cannot connect to %s\n", url);
		goto out;
	}
	mqtt_nodelay_to_port(mqtt_url_port(url));
	ro.onSuccess5 = on_subscribed;
	ro.onFailure5 = on_failed;
	ro.context = &e;
	if(MQTTAsync_subscribe(e.client, filter, 1, &ro) != MQTTASYNC_SUCCESS || wait_state(&e, 2)) {
		fprintf(stderr, "echo: cannot subscribe to %s\n", filter);
		goto out;
	}
	if(ready) {
		FILE *f = fopen(ready, "w");
		if(f) {
			fprintf(f, "%ld\n", (long)getpid());
			fclose(f);
		}
	}
	while(!stop && !atomic_load(&e.lost) && (!duration_s || waited_ms < duration_s * 1000)) {
		sleep_ms(50);
		waited_ms += 50;
	}
	rc = atomic_load(&e.lost) ? 1 : 0;
	printf("{\"requests\":%" PRIuFAST64 ",\"replies\":%" PRIuFAST64 ",\"reply_failures\":%" PRIuFAST64
	       ",\"no_response_topic\":%" PRIuFAST64 ",\"payload_bytes\":%zu}\n",
	       atomic_load(&e.requests), atomic_load(&e.replies), atomic_load(&e.reply_failures),
	       atomic_load(&e.no_response_topic), e.payload_len);
out:
	if(e.client) {
		if(MQTTAsync_isConnected(e.client)) {
			MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
			d.timeout = 1000;
			MQTTAsync_disconnect(e.client, &d);
			for(a = 0; a < 100 && MQTTAsync_isConnected(e.client); a++)
				sleep_ms(10);
		}
		MQTTAsync_destroy(&e.client);
	}
	free(e.payload);
	return rc;
usage:
	fprintf(stderr, "echo: bad option or value near %s\n", argv[a - 1]);
	return 2;
}
