/*
 * loadgen.c - an MQTT 5 request load generator for ratepool (and for the
 * echo responder it is compared with). Not part of ratepool; a benchmark
 * tool built by `make bench` into $(BUILD)/bench/loadgen.
 *
 * It opens C connections (--connections), each subscribed to its own
 * Response Topic, and sends requests to P/request/{provider}/{id} (the
 * --series or --topic list, round-robin), each with a Response Topic and
 * its own Correlation Data. Two modes:
 *
 *  - steady (default): K requests in flight (--inflight, spread over the
 *    connections); every reply (or timeout) sends the next request on the
 *    same connection, until --requests were sent or --duration ran out;
 *  - herd (--herd N): N requests as fast as possible across the
 *    connections, without waiting, then wait for every reply or timeout
 *    ("10,000 requesters asking for the same series at once").
 *
 * Latency is send -> reply (CLOCK_MONOTONIC) per request. The result is
 * one JSON object on stdout: counts (sent, replies, timeouts, late replies,
 * replies by status and by error code), latency p50/p90/p99/max in
 * microseconds, throughput in replies per second, reply sizes.
 *
 * Correlation Data is the request's sequence number in decimal. Slot s of
 * the in-flight window always sends on connection s % C and its requests
 * have numbers s, s + K, s + 2K, ...: a reply finds its slot by number % K,
 * and a reply whose number is not the one the slot waits for (it timed
 * out and was replaced) is counted as late, not as a reply.
 *
 * Exit status: 0 when the run completed (timeouts are reported, not
 * failed), 1 when a connection could not be made or was lost, 2 on a usage
 * error.
 *
 * paho never sets TCP_NODELAY on its sockets (see include/ratepool/mqtt.h);
 * without it a round trip on loopback waits for delayed ACKs. Like the
 * daemon, loadgen switches it on for every socket connected to the
 * broker's port once all connections are up (--no-nodelay: leave it off).
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS       4096
#define MAX_CONNECTIONS  4096
#define MAX_INFLIGHT     1000000
#define MAX_SAMPLES      (16u * 1024 * 1024)
#define MAX_STATUS_KINDS 32
#define NAME_MAX_LEN     48
#define TOPIC_MAX_LEN    512
#define PAYLOAD_MAX_LEN  65536
#define SETUP_TIMEOUT_MS 20000

struct loadgen;

struct conn {
	MQTTAsync client;
	struct loadgen *g;
	int index;
	char reply_topic[TOPIC_MAX_LEN];
	atomic_int state; /* 0 connecting, 1 connected, 2 subscribed, -1 failed */
	atomic_bool lost;
};

struct slot {
	uint64_t id; /* sequence number of the request in flight */
	int64_t sent_ns;
	size_t topic; /* index into topics: the send order, round-robin */
	bool active;
};

struct kind {
	char name[NAME_MAX_LEN];
	uint64_t count;
};

struct loadgen {
	/* options */
	const char *url;
	const char *prefix;
	const char *reply_prefix;
	const char *topics[MAX_TOPICS];
	char *owned_topics[MAX_TOPICS];
	size_t ntopics;
	const char *payload;
	size_t payload_len;
	int nconns;
	long inflight;
	uint64_t requests; /* 0: until the duration ends */
	double duration_s;
	long timeout_ms;
	int qos;
	long herd;   /* 0: steady mode */
	double rate; /* requests per second; 0: as fast as replies come */
	bool nodelay;
	const char *samples_file; /* NULL: none */

	struct conn *conns;
	struct slot *slots;
	long nslots;

	pthread_mutex_t lock; /* everything below */
	uint64_t sent;
	uint64_t replies;
	uint64_t timeouts;
	uint64_t late;
	uint64_t send_failures;
	uint64_t unparsable;
	long active;
	bool stop_sending;
	int64_t start_ns; /* the run's start, for --rate */
	int64_t first_send_ns;
	int64_t last_reply_ns;
	uint64_t *samples; /* latency of each reply, ns */
	size_t nsamples, cap_samples;
	uint64_t reply_bytes_total;
	uint64_t reply_bytes_max;
	struct kind status[MAX_STATUS_KINDS];
	size_t nstatus;
	struct kind codes[MAX_STATUS_KINDS];
	size_t ncodes;
	atomic_int lost_connections;
	int nodelay_sockets;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen [options]\n"
	           "  --url URL            broker (tcp://127.0.0.1:1883)\n"
	           "  --prefix P           topic prefix (ratepool)\n"
	           "  --series PROV/ID     request P/request/PROV/ID (repeatable, round-robin)\n"
	           "  --topic TOPIC        request this exact topic (repeatable, round-robin)\n"
	           "  --payload TEXT       request payload (empty)\n"
	           "  --connections C      connections (1)\n"
	           "  --inflight K         requests in flight, over all connections (1)\n"
	           "  --requests N         stop after N requests (default: run for --duration)\n"
	           "  --duration S         seconds to send for (5 unless --requests)\n"
	           "  --timeout-ms MS      a request without a reply after MS counts as a timeout (5000)\n"
	           "  --qos Q              QoS of requests and of the reply subscription (0)\n"
	           "  --rate R             at most R requests per second (steady mode; paced)\n"
	           "  --herd N             send N requests at once, then wait for every reply\n"
	           "  --reply-prefix R     Response Topics are R/<pid>/<connection> (loadgen)\n"
	           "  --no-nodelay         leave TCP_NODELAY off on the client sockets\n"
	           "  --samples FILE       write every latency (us, one a line, in reply order)\n");
}

/* --- options ---------------------------------------------------------------- */

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

static int parse_double(const char *s, double min, double max, double *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if(errno || e == s || *e || !(v >= min) || !(v <= max))
		return -1;
	*out = v;
	return 0;
}

static int add_topic(struct loadgen *g, const char *topic, bool owned)
{
	if(g->ntopics >= MAX_TOPICS || !*topic || strlen(topic) >= TOPIC_MAX_LEN)
		return -1;
	g->topics[g->ntopics] = topic;
	g->owned_topics[g->ntopics] = owned ? (char *)topic : NULL;
	g->ntopics++;
	return 0;
}

static int parse_args(struct loadgen *g, int argc, char **argv)
{
	const char *series[MAX_TOPICS];
	size_t nseries = 0, i;
	bool have_duration = false;
	int a;

	for(a = 1; a < argc; a++) {
		const char *o = argv[a];
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;
		long n;

		if(!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			exit(0);
		}
		if(!strcmp(o, "--no-nodelay")) {
			g->nodelay = false;
			continue;
		}
		if(!v || strncmp(o, "--", 2) != 0) {
			fprintf(stderr, "loadgen: %s %s\n", o, v ? "is not an option" : "needs a value");
			return -1;
		}
		a++;
		if(!strcmp(o, "--url"))
			g->url = v;
		else if(!strcmp(o, "--prefix"))
			g->prefix = v;
		else if(!strcmp(o, "--reply-prefix"))
			g->reply_prefix = v;
		else if(!strcmp(o, "--samples"))
			g->samples_file = v;
		else if(!strcmp(o, "--series")) {
			if(nseries >= MAX_TOPICS || !strchr(v, '/'))
				goto bad;
			series[nseries++] = v;
		} else if(!strcmp(o, "--topic")) {
			if(add_topic(g, v, false))
				goto bad;
		} else if(!strcmp(o, "--payload")) {
			g->payload = v;
			g->payload_len = strlen(v);
			if(g->payload_len > PAYLOAD_MAX_LEN)
				goto bad;
		} else if(!strcmp(o, "--connections")) {
			if(parse_long(v, 1, MAX_CONNECTIONS, &n))
				goto bad;
			g->nconns = (int)n;
		} else if(!strcmp(o, "--inflight")) {
			if(parse_long(v, 1, MAX_INFLIGHT, &g->inflight))
				goto bad;
		} else if(!strcmp(o, "--requests")) {
			if(parse_long(v, 1, LONG_MAX, &n))
				goto bad;
			g->requests = (uint64_t)n;
		} else if(!strcmp(o, "--duration")) {
			if(parse_double(v, 0.001, 86400, &g->duration_s))
				goto bad;
			have_duration = true;
		} else if(!strcmp(o, "--timeout-ms")) {
			if(parse_long(v, 1, 3600000, &g->timeout_ms))
				goto bad;
		} else if(!strcmp(o, "--qos")) {
			if(parse_long(v, 0, 2, &n))
				goto bad;
			g->qos = (int)n;
		} else if(!strcmp(o, "--rate")) {
			if(parse_double(v, 0.001, 1e7, &g->rate))
				goto bad;
		} else if(!strcmp(o, "--herd")) {
			if(parse_long(v, 1, MAX_INFLIGHT, &g->herd))
				goto bad;
		} else {
			fprintf(stderr, "loadgen: unknown option %s\n", o);
			usage(stderr);
			return -1;
		}
		continue;
	bad:
		fprintf(stderr, "loadgen: bad value for %s: %s\n", o, v);
		return -1;
	}
	for(i = 0; i < nseries; i++) {
		size_t len = strlen(g->prefix) + strlen("/request/") + strlen(series[i]) + 1;
		char *t = malloc(len);
		if(!t)
			return -1;
		snprintf(t, len, "%s/request/%s", g->prefix, series[i]);
		if(add_topic(g, t, true)) {
			free(t);
			fprintf(stderr, "loadgen: too many or too long topics\n");
			return -1;
		}
	}
	if(!g->ntopics) {
		fprintf(stderr, "loadgen: give at least one --series or --topic\n");
		return -1;
	}
	if(g->herd) {
		g->inflight = g->herd;
		g->requests = (uint64_t)g->herd;
	} else if(!g->requests && !have_duration)
		g->duration_s = 5;
	if(g->requests && !have_duration)
		g->duration_s = 0; /* no time limit: N requests */
	if(g->requests && (uint64_t)g->inflight > g->requests)
		g->inflight = (long)g->requests;
	if(g->nconns > g->inflight)
		g->nconns = (int)g->inflight;
	return 0;
}

/* --- counting ------------------------------------------------------------- */

static void count_kind(struct kind *k, size_t *n, const char *name, size_t len)
{
	size_t i;

	if(len >= NAME_MAX_LEN)
		len = NAME_MAX_LEN - 1;
	for(i = 0; i < *n; i++)
		if(strlen(k[i].name) == len && !memcmp(k[i].name, name, len)) {
			k[i].count++;
			return;
		}
	if(*n == MAX_STATUS_KINDS) {
		k[MAX_STATUS_KINDS - 1].count++; /* the last kind takes the rest */
		return;
	}
	memcpy(k[*n].name, name, len);
	k[*n].name[len] = '\0';
	k[*n].count = 1;
	(*n)++;
}

/* The string value after `key` ("\"status\":\"") in a JSON reply; *len 0
 * when absent. Replies are the daemon's compact JSON, so a plain search is
 * enough for counting. */
static const char *json_string_after(const char *p, size_t n, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *v = memmem(p, n, key, klen);
	const char *end;

	*len = 0;
	if(!v)
		return NULL;
	v += klen;
	end = memchr(v, '"', n - (size_t)(v - p));
	if(!end)
		return NULL;
	*len = (size_t)(end - v);
	return v;
}

static void record_reply(struct loadgen *g, const char *payload, size_t n, int64_t latency)
{
	const char *st, *code;
	size_t slen, clen;

	g->replies++;
	if(g->nsamples == g->cap_samples && g->cap_samples < MAX_SAMPLES) {
		size_t cap = g->cap_samples ? g->cap_samples * 2 : 65536;
		uint64_t *v = realloc(g->samples, cap * sizeof(*v));
		if(v) {
			g->samples = v;
			g->cap_samples = cap;
		}
	}
	if(g->nsamples < g->cap_samples)
		g->samples[g->nsamples++] = latency > 0 ? (uint64_t)latency : 0;
	g->reply_bytes_total += n;
	if(n > g->reply_bytes_max)
		g->reply_bytes_max = n;
	st = json_string_after(payload, n, "\"status\":\"", &slen);
	if(st)
		count_kind(g->status, &g->nstatus, st, slen);
	else {
		g->unparsable++;
		count_kind(g->status, &g->nstatus, "(none)", 6);
	}
	code = json_string_after(payload, n, "\"code\":\"", &clen);
	if(code)
		count_kind(g->codes, &g->ncodes, code, clen);
}

/* --- sending -------------------------------------------------------------- */

/* Claims slot s for its next request; lock held. Returns false when no
 * more requests may be sent. */
static bool claim(struct loadgen *g, long s, uint64_t *id, size_t *topic)
{
	struct slot *sl = &g->slots[s];

	if(g->stop_sending || (g->requests && g->sent >= g->requests))
		return false;
	/* Paced: request n (0-based) is due at start + n / rate; a slot with
	 * nothing due idles until the main loop finds it due. */
	if(g->rate > 0 && (double)g->sent >= (double)(now_ns() - g->start_ns) / 1e9 * g->rate + 1)
		return false;
	if(sl->id == UINT64_MAX)
		sl->id = (uint64_t)s;
	else
		sl->id += (uint64_t)g->nslots;
	sl->active = true;
	sl->topic = (size_t)(g->sent % g->ntopics);
	sl->sent_ns = now_ns();
	if(!g->sent)
		g->first_send_ns = sl->sent_ns;
	g->sent++;
	g->active++;
	*id = sl->id;
	*topic = sl->topic;
	return true;
}

/* Sends request `id` of slot s; lock not held. A refused send is counted
 * and its slot freed at once. */
static void send_request(struct loadgen *g, long s, uint64_t id, size_t topic)
{
	struct conn *c = &g->conns[s % g->nconns];
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperty prop;
	char corr[24];
	int clen, rc;

	clen = snprintf(corr, sizeof(corr), "%" PRIu64, id);
	msg.payload = (void *)(g->payload ? g->payload : "");
	msg.payloadlen = (int)g->payload_len;
	msg.qos = g->qos;
	msg.retained = 0;
	memset(&prop, 0, sizeof(prop));
	prop.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
	prop.value.data.data = c->reply_topic;
	prop.value.data.len = (int)strlen(c->reply_topic);
	MQTTProperties_add(&msg.properties, &prop);
	prop.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
	prop.value.data.data = corr;
	prop.value.data.len = clen;
	MQTTProperties_add(&msg.properties, &prop);
	/* With MQTT 5 paho sends the properties it finds in the response
	 * options (sendMessage copies msg.properties there): without them the
	 * request would go out with neither property. */
	rc = MQTTAsync_sendMessage(c->client, g->topics[topic], &msg, &ro);
	MQTTProperties_free(&msg.properties);
	if(rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&g->lock);
		g->send_failures++;
		if(g->slots[s].active && g->slots[s].id == id) {
			g->slots[s].active = false;
			g->active--;
		}
		g->stop_sending = true; /* a broken client would spin otherwise */
		pthread_mutex_unlock(&g->lock);
	}
}

/* --- paho callbacks --------------------------------------------------------- */

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct loadgen *g = context;
	int64_t t = now_ns();
	MQTTProperty *cd = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
	uint64_t id = 0, next = 0;
	size_t tix = 0;
	bool ok = false, again = false;
	long s = 0;

	if(cd && cd->value.data.len > 0 && cd->value.data.len < 21) {
		int i;
		ok = true;
		for(i = 0; i < cd->value.data.len; i++) {
			char ch = cd->value.data.data[i];
			if(ch < '0' || ch > '9') {
				ok = false;
				break;
			}
			id = id * 10 + (uint64_t)(ch - '0');
		}
	}
	pthread_mutex_lock(&g->lock);
	if(ok) {
		s = (long)(id % (uint64_t)g->nslots);
		if(g->slots[s].active && g->slots[s].id == id) {
			g->slots[s].active = false;
			g->active--;
			g->last_reply_ns = t;
			record_reply(g, m->payload, m->payloadlen > 0 ? (size_t)m->payloadlen : 0,
			             t - g->slots[s].sent_ns);
			again = claim(g, s, &next, &tix);
		} else
			g->late++;
	} else
		g->unparsable++;
	pthread_mutex_unlock(&g->lock);
	if(again)
		send_request(g, s, next, tix);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* paho has one context per client: the conn, which leads to the loadgen. */
static int on_message_conn(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct conn *c = context;

	return on_message(c->g, topic, topic_len, m);
}

static void on_connection_lost(void *context, char *cause)
{
	struct conn *c = context;

	(void)cause;
	atomic_store(&c->lost, true);
}

static void on_connected(void *context, MQTTAsync_successData5 *r)
{
	struct conn *c = context;

	(void)r;
	atomic_store(&c->state, 1);
}

static void on_connect_failed(void *context, MQTTAsync_failureData5 *r)
{
	struct conn *c = context;

	fprintf(stderr, "loadgen: connection %d failed: %d %s\n", c->index, r ? r->code : 0,
	        r && r->message ? r->message : "");
	atomic_store(&c->state, -1);
}

static void on_subscribed(void *context, MQTTAsync_successData5 *r)
{
	struct conn *c = context;

	if(r && r->reasonCode >= 0x80) {
		fprintf(stderr, "loadgen: subscription %d refused: %d\n", c->index, (int)r->reasonCode);
		atomic_store(&c->state, -1);
		return;
	}
	atomic_store(&c->state, 2);
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData5 *r)
{
	struct conn *c = context;

	fprintf(stderr, "loadgen: subscription %d failed: %d\n", c->index, r ? r->code : 0);
	atomic_store(&c->state, -1);
}

/* --- setup ------------------------------------------------------------------ */

/* Waits until every connection reached `want` (or failed); 0 or -1. */
static int wait_state(struct loadgen *g, int want, const char *what)
{
	int64_t deadline = now_ns() + (int64_t)SETUP_TIMEOUT_MS * 1000000;
	int i, done;

	for(;;) {
		done = 0;
		for(i = 0; i < g->nconns; i++) {
			int st = atomic_load(&g->conns[i].state);
			if(st < 0) {
				fprintf(stderr, "loadgen: %s failed on connection %d\n", what, i);
				return -1;
			}
			if(st >= want)
				done++;
		}
		if(done == g->nconns)
			return 0;
		if(now_ns() > deadline) {
			fprintf(stderr, "loadgen: %s: %d of %d within %d ms\n", what, done, g->nconns,
			        SETUP_TIMEOUT_MS);
			return -1;
		}
		sleep_ms(2);
	}
}

static int connect_all(struct loadgen *g)
{
	int i, rc;

	for(i = 0; i < g->nconns; i++) {
		struct conn *c = &g->conns[i];
		MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
		MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
		char id[64];

		c->index = i;
		c->g = g;
		/* paho refuses a send while this many are queued for the
		 * client, connected or not (default 100): a herd queues more. */
		co.maxBufferedMessages = MAX_INFLIGHT;
		atomic_init(&c->state, 0);
		atomic_init(&c->lost, false);
		snprintf(id, sizeof(id), "loadgen-%ld-%d", (long)getpid(), i);
		snprintf(c->reply_topic, sizeof(c->reply_topic), "%s/%ld/%d", g->reply_prefix, (long)getpid(),
		         i);
		rc = MQTTAsync_createWithOptions(&c->client, g->url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
		                                 &co);
		if(rc != MQTTASYNC_SUCCESS) {
			fprintf(stderr, "loadgen: cannot create client for %s: %s\n", g->url,
			        MQTTAsync_strerror(rc));
			c->client = NULL;
			return -1;
		}
		/* paho allows callbacks only before the connect, and wants a
		 * message callback: replies can only come after the subscribe. */
		rc = MQTTAsync_setCallbacks(c->client, c, on_connection_lost, on_message_conn, NULL);
		if(rc != MQTTASYNC_SUCCESS)
			return -1;
		opts.keepAliveInterval = 60;
		opts.cleanstart = 1;
		opts.connectTimeout = SETUP_TIMEOUT_MS / 1000;
		opts.onSuccess5 = on_connected;
		opts.onFailure5 = on_connect_failed;
		opts.context = c;
		rc = MQTTAsync_connect(c->client, &opts);
		if(rc != MQTTASYNC_SUCCESS) {
			fprintf(stderr, "loadgen: connect %d: %s\n", i, MQTTAsync_strerror(rc));
			return -1;
		}
	}
	return wait_state(g, 1, "connect");
}

static int subscribe_all(struct loadgen *g)
{
	int i, rc;

	for(i = 0; i < g->nconns; i++) {
		struct conn *c = &g->conns[i];
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

		ro.onSuccess5 = on_subscribed;
		ro.onFailure5 = on_subscribe_failed;
		ro.context = c;
		rc = MQTTAsync_subscribe(c->client, c->reply_topic, g->qos, &ro);
		if(rc != MQTTASYNC_SUCCESS) {
			fprintf(stderr, "loadgen: subscribe %d: %s\n", i, MQTTAsync_strerror(rc));
			return -1;
		}
	}
	return wait_state(g, 2, "subscribe");
}

/* --- the run ---------------------------------------------------------------- */

/* Frees the slots whose request is older than the timeout and, in steady
 * mode, sends the next request in their place. */
static void expire(struct loadgen *g, int64_t t)
{
	int64_t limit = (int64_t)g->timeout_ms * 1000000;
	long s;

	for(s = 0; s < g->nslots; s++) {
		uint64_t next;
		size_t topic;
		bool again = false;

		pthread_mutex_lock(&g->lock);
		if(g->slots[s].active && t - g->slots[s].sent_ns > limit) {
			g->slots[s].active = false;
			g->active--;
			g->timeouts++;
			if(!g->herd)
				again = claim(g, s, &next, &topic);
		}
		pthread_mutex_unlock(&g->lock);
		if(again)
			send_request(g, s, next, topic);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n), in microseconds. */
static double pct_us(const uint64_t *v, size_t n, double q)
{
	size_t r;

	if(!n)
		return 0;
	r = (size_t)(q * (double)n + 0.999999);
	if(r < 1)
		r = 1;
	if(r > n)
		r = n;
	return (double)v[r - 1] / 1000.0;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for(; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if(ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if(ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void report(struct loadgen *g, int64_t started_ns, int64_t ended_ns)
{
	double elapsed = 0, sum = 0;
	size_t i;

	if(g->samples_file) {
		FILE *f = fopen(g->samples_file, "w");
		if(f) {
			for(i = 0; i < g->nsamples; i++)
				fprintf(f, "%.1f\n", (double)g->samples[i] / 1000.0);
			fclose(f);
		} else
			fprintf(stderr, "loadgen: cannot write %s: %s\n", g->samples_file, strerror(errno));
	}
	if(g->nsamples)
		qsort(g->samples, g->nsamples, sizeof(*g->samples), cmp_u64);
	for(i = 0; i < g->nsamples; i++)
		sum += (double)g->samples[i];
	if(g->replies && g->last_reply_ns > g->first_send_ns)
		elapsed = (double)(g->last_reply_ns - g->first_send_ns) / 1e9;
	printf("{\"mode\":\"%s\",\"connections\":%d,\"inflight\":%ld,\"qos\":%d,\"rate\":%.3f,",
	       g->herd ? "herd" : "steady", g->nconns, g->inflight, g->qos, g->rate);
	printf("\"topics\":[");
	for(i = 0; i < g->ntopics; i++) {
		if(i)
			putchar(',');
		json_string(stdout, g->topics[i]);
	}
	printf("],\"payload_bytes\":%zu,", g->payload_len);
	printf("\"sent\":%" PRIu64 ",\"replies\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64
	       ",\"send_failures\":%" PRIu64 ",\"unparsable\":%" PRIu64 ",\"lost_connections\":%d,",
	       g->sent, g->replies, g->timeouts, g->late, g->send_failures, g->unparsable,
	       atomic_load(&g->lost_connections));
	printf("\"elapsed_s\":%.6f,\"wall_s\":%.6f,\"throughput_rps\":%.1f,", elapsed,
	       (double)(ended_ns - started_ns) / 1e9, elapsed > 0 ? (double)g->replies / elapsed : 0.0);
	printf("\"latency_us\":{\"samples\":%zu,\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
	       "\"p99\":%.1f,\"max\":%.1f},",
	       g->nsamples, g->nsamples ? (double)g->samples[0] / 1000.0 : 0.0,
	       g->nsamples ? sum / (double)g->nsamples / 1000.0 : 0.0, pct_us(g->samples, g->nsamples, 0.50),
	       pct_us(g->samples, g->nsamples, 0.90), pct_us(g->samples, g->nsamples, 0.99),
	       g->nsamples ? (double)g->samples[g->nsamples - 1] / 1000.0 : 0.0);
	printf("\"reply_bytes_mean\":%.1f,\"reply_bytes_max\":%" PRIu64 ",",
	       g->replies ? (double)g->reply_bytes_total / (double)g->replies : 0.0, g->reply_bytes_max);
	printf("\"status\":{");
	for(i = 0; i < g->nstatus; i++) {
		if(i)
			putchar(',');
		json_string(stdout, g->status[i].name);
		printf(":%" PRIu64, g->status[i].count);
	}
	printf("},\"error_codes\":{");
	for(i = 0; i < g->ncodes; i++) {
		if(i)
			putchar(',');
		json_string(stdout, g->codes[i].name);
		printf(":%" PRIu64, g->codes[i].count);
	}
	printf("},\"nodelay_sockets\":%d}\n", g->nodelay_sockets);
	fflush(stdout);
}

/* --rate: sends the requests now due on idle slots. */
static void send_due(struct loadgen *g)
{
	long s;

	for(s = 0; s < g->nslots; s++) {
		uint64_t id;
		size_t topic;
		bool ok;

		pthread_mutex_lock(&g->lock);
		ok = !g->slots[s].active && claim(g, s, &id, &topic);
		pthread_mutex_unlock(&g->lock);
		if(ok)
			send_request(g, s, id, topic);
	}
}

static int run(struct loadgen *g)
{
	int64_t start, deadline, drain_deadline = 0;
	long s;

	start = now_ns();
	g->start_ns = start;
	deadline = g->duration_s > 0 ? start + (int64_t)(g->duration_s * 1e9) : INT64_MAX;
	/* The first request of every slot; the rest follow replies. */
	for(s = 0; s < g->nslots; s++) {
		uint64_t id;
		size_t topic;
		bool ok;

		pthread_mutex_lock(&g->lock);
		ok = claim(g, s, &id, &topic);
		pthread_mutex_unlock(&g->lock);
		if(!ok)
			break;
		send_request(g, s, id, topic);
	}
	for(;;) {
		int64_t t = now_ns();
		long active;
		bool more;
		int i;

		expire(g, t);
		if(g->rate > 0)
			send_due(g);
		for(i = 0; i < g->nconns; i++)
			if(atomic_exchange(&g->conns[i].lost, false))
				atomic_fetch_add(&g->lost_connections, 1);
		pthread_mutex_lock(&g->lock);
		if(t >= deadline)
			g->stop_sending = true;
		active = g->active;
		more = !g->stop_sending && (!g->requests || g->sent < g->requests);
		pthread_mutex_unlock(&g->lock);
		if(!more && active == 0)
			break;
		if(!more && !drain_deadline)
			drain_deadline = t + (int64_t)(g->timeout_ms + 1000) * 1000000;
		if(drain_deadline && t > drain_deadline)
			break; /* cannot happen unless the clock jumps: expire() frees slots */
		sleep_ms(g->rate > 0 ? 1 : g->nslots > 10000 ? 20 : 5);
	}
	pthread_mutex_lock(&g->lock);
	report(g, start, now_ns());
	pthread_mutex_unlock(&g->lock);
	return atomic_load(&g->lost_connections) ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct loadgen g;
	int rc = 1, i;
	long s;

	memset(&g, 0, sizeof(g));
	g.url = "tcp://127.0.0.1:1883";
	g.prefix = "ratepool";
	g.reply_prefix = "loadgen";
	g.nconns = 1;
	g.inflight = 1;
	g.timeout_ms = 5000;
	g.nodelay = true;
	if(parse_args(&g, argc, argv))
		return 2;
	pthread_mutex_init(&g.lock, NULL);
	g.nslots = g.inflight;
	g.slots = calloc((size_t)g.nslots, sizeof(*g.slots));
	g.conns = calloc((size_t)g.nconns, sizeof(*g.conns));
	if(!g.slots || !g.conns) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	for(s = 0; s < g.nslots; s++)
		g.slots[s].id = UINT64_MAX;
	if(connect_all(&g) || subscribe_all(&g))
		goto out;
	if(g.nodelay) {
		int port = mqtt_url_port(g.url);
		if(port > 0)
			g.nodelay_sockets = mqtt_nodelay_to_port(port);
	}
	rc = run(&g);
out:
	if(g.conns) {
		for(i = 0; i < g.nconns; i++) {
			if(!g.conns[i].client)
				continue;
			if(MQTTAsync_isConnected(g.conns[i].client)) {
				MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
				d.timeout = 1000;
				MQTTAsync_disconnect(g.conns[i].client, &d);
			}
		}
		for(i = 0; i < g.nconns; i++) {
			if(!g.conns[i].client)
				continue;
			/* paho frees a client only once its disconnect went out */
			for(int k = 0; k < 100 && MQTTAsync_isConnected(g.conns[i].client); k++)
				sleep_ms(10);
			MQTTAsync_destroy(&g.conns[i].client);
		}
	}
	for(i = 0; i < (int)g.ntopics; i++)
		free(g.owned_topics[i]);
	free(g.conns);
	free(g.slots);
	free(g.samples);
	pthread_mutex_destroy(&g.lock);
	return rc;
}
