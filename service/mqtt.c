/* mqtt.c - MQTT 5 client over paho MQTTAsync; the only file that includes
 * paho's headers. See mqtt.h for the contract. */
#include "ratepool/mqtt.h"
#include "ratepool/config.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <MQTTAsync.h>
#include <MQTTClientPersistence.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* paho's internal "malloc failed" code (PAHO_MEMORY_ERROR, not exported). */
#define PAHO_NOMEM (-99)

/* MQTT control packet types (paho's MQTTPacket.h, not exported): the
 * packet_type of a publish failure that the broker reported in its
 * acknowledgement, on a connection that is still up. */
#define PACKET_PUBACK  4
#define PACKET_PUBREC  5
#define PACKET_PUBCOMP 7

/* The window until the broker's Receive Maximum is known: mosquitto's
 * default max_inflight_messages. */
#define DEFAULT_WINDOW 20
/* The most the window grows to, whatever the broker allows: paho looks for
 * a free message id by walking every message it holds, for each publish. */
#define WINDOW_MAX 1024
/* MQTT 5 (3.2.2.3.3): a CONNACK without Receive Maximum means 65,535. */
#define RECEIVE_MAX_ABSENT 65535

struct mqtt_sub {
	char *filter;
	int qos;
	MQTTSubscribe_options opts;
};

/* A QoS > 0 publish waiting in the outbox: one allocation holding the
 * topic, the payload and the Correlation Data after the struct. */
struct outmsg {
	struct outmsg *next;
	const char *topic;
	const void *payload;
	size_t len;
	const void *corr;
	size_t corr_len;
	int qos;
	bool retain;
	uint32_t expiry_s;
};

struct mqtt {
	MQTTAsync client;
	struct queue *inbox;
	struct mqtt_callbacks cb;

	char *url;
	char *client_id;
	char *username;
	char *password;
	char *ca_file;
	char *status_topic;
	int port; /* broker port, for TCP_NODELAY */
	bool tls;
	int keepalive_s;
	int connect_timeout_s;
	int min_retry_s;
	int max_retry_s;
	size_t max_message;

	struct mqtt_sub subs[MQTT_MAX_SUBSCRIPTIONS];
	int nsubs;

	/* Kept for the life of the client: paho reads them on reconnects. */
	MQTTAsync_connectOptions conn;
	MQTTAsync_willOptions will;
	MQTTAsync_SSLOptions ssl;

	atomic_bool started;
	atomic_bool connected;
	atomic_bool stopping;
	atomic_bool drop_warned;
	atomic_bool fail_warned;
	atomic_uint_fast64_t generation;

	atomic_uint_fast64_t published;
	atomic_uint_fast64_t publish_failures;
	atomic_uint_fast64_t received;
	atomic_uint_fast64_t dropped_queue_full;
	atomic_uint_fast64_t dropped_invalid;
	atomic_uint_fast64_t reconnects;
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t connection_lost;
	atomic_uint_fast64_t subscribes;
	atomic_uint_fast64_t subscribe_failures;
	atomic_uint_fast64_t nodelay_set;

	/* mqtt_stop waits here for the disconnect to complete. */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	bool disconnect_done;

	/* The outbox (mqtt.h, "Flow control"). out_lock guards the fields
	 * below it; it is never held while calling paho, because paho holds
	 * its own mutex while it calls our callbacks, which take out_lock. */
	pthread_mutex_t out_lock;
	pthread_cond_t out_cond; /* broadcast when the outbox runs empty */
	struct outmsg *out_head;
	struct outmsg *out_tail;
	size_t out_len;
	size_t max_buffered;
	int inflight; /* windowed publishes paho holds without a completion yet */
	int window;
	bool pump_ok; /* connected and not stopping: the outbox may call paho */
	bool pumping; /* a thread is in pump(); others leave the work to it */
	atomic_bool full_warned;
	atomic_uint_fast64_t outbox_full;
	atomic_uint_fast64_t outbox_dropped;
	atomic_uint_fast64_t gauge_queued;
	atomic_uint_fast64_t gauge_inflight;
	atomic_uint_fast64_t gauge_window;
};

static void count(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void count_n(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t load(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void mqtt_msg_free(void *msg)
{
	free(msg);
}

void mqtt_options_from_config(struct mqtt_options *o, const struct config *cfg)
{
	memset(o, 0, sizeof(*o));
	o->url = cfg->mqtt_url;
	o->client_id = cfg->mqtt_client_id;
	o->username = cfg->mqtt_username;
	o->password = cfg->mqtt_password;
	o->ca_file = cfg->mqtt_ca_file;
	o->prefix = cfg->topic_prefix;
}

/* --- helpers -------------------------------------------------------------------- */

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if(!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : RP_ENOMEM;
}

/* Scheme and port of a paho server URI. Returns 0 or RP_EINVAL. */
static int parse_url(const char *url, int *port, bool *tls)
{
	static const struct {
		const char *scheme;
		int port;
		bool tls;
	} schemes[] = {{"tcp://", 1883, false}, {"mqtt://", 1883, false}, {"ws://", 80, false},
	               {"ssl://", 8883, true},  {"mqtts://", 8883, true}, {"wss://", 443, true}};
	const char *host = NULL, *p, *end;
	size_t i;
	long v;
	char *e;

	if(!url)
		return RP_EINVAL;
	for(i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].scheme);
		if(strncmp(url, schemes[i].scheme, n) == 0) {
			host = url + n;
			*port = schemes[i].port;
			*tls = schemes[i].tls;
			break;
		}
	}
	if(!host || !*host)
		return RP_EINVAL;
	end = host + strcspn(host, "/");
	if(*host == '[') {
		p = memchr(host, ']', (size_t)(end - host));
		if(!p)
			return RP_EINVAL;
		p++;
		if(p == end)
			return 0;
		if(*p != ':')
			return RP_EINVAL;
	} else {
		p = memchr(host, ':', (size_t)(end - host));
		if(!p)
			return p == host ? RP_EINVAL : 0;
		if(p == host)
			return RP_EINVAL;
	}
	errno = 0;
	v = strtol(p + 1, &e, 10);
	if(errno || e == p + 1 || e != end || v < 1 || v > 65535)
		return RP_EINVAL;
	*port = (int)v;
	return 0;
}

static int map_paho(int rc)
{
	switch(rc) {
	case MQTTASYNC_SUCCESS:
		return 0;
	case MQTTASYNC_DISCONNECTED:
		return RP_ENET;
	case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
	case MQTTASYNC_MAX_BUFFERED_MESSAGES:
	case MQTTASYNC_NO_MORE_MSGIDS:
		return RP_EBUSY;
	case MQTTASYNC_BAD_UTF8_STRING:
	case MQTTASYNC_NULL_PARAMETER:
	case MQTTASYNC_TOPICNAME_TRUNCATED:
	case MQTTASYNC_BAD_STRUCTURE:
	case MQTTASYNC_BAD_QOS:
	case MQTTASYNC_BAD_MQTT_OPTION:
	case MQTTASYNC_WRONG_MQTT_VERSION:
	case MQTTASYNC_BAD_PROTOCOL:
		return RP_EINVAL;
	case PAHO_NOMEM:
		return RP_ENOMEM;
	default:
		return RP_EIO;
	}
}

/* A topic we may PUBLISH to: a wildcard or a NUL in a PUBLISH makes the
 * broker close the connection, and '$' topics belong to the broker. */
static bool publish_topic_ok(const char *topic)
{
	size_t n;

	if(!topic || !*topic || *topic == '$')
		return false;
	n = strnlen(topic, MQTT_TOPIC_MAX + 1);
	if(n > MQTT_TOPIC_MAX)
		return false;
	return strpbrk(topic, "+#") == NULL;
}

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF), as paho checks it. Checked before a message is queued, so
 * that a topic paho would refuse is refused by mqtt_publish itself. */
static bool utf8_ok(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;

	while(*p) {
		unsigned char c = p[0], lo = 0x80, hi = 0xBF;
		int n, i;

		if(c < 0x80) {
			p++;
			continue;
		}
		if(c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if(c >= 0xE0 && c <= 0xEF)
			n = 2;
		else if(c >= 0xF0 && c <= 0xF4)
			n = 3;
		else
			return false;
		if(c == 0xE0)
			lo = 0xA0;
		else if(c == 0xED)
			hi = 0x9F;
		else if(c == 0xF0)
			lo = 0x90;
		else if(c == 0xF4)
			hi = 0x8F;
		if(p[1] < lo || p[1] > hi)
			return false;
		for(i = 2; i <= n; i++)
			if(p[i] < 0x80 || p[i] > 0xBF)
				return false;
		p += n + 1;
	}
	return true;
}

int mqtt_nodelay_to_port(int port)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self, n = 0;

	if(!d)
		return -1;
	self = dirfd(d);
	while((de = readdir(d)) != NULL) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd, type = 0, on = 0, peer;
		socklen_t ol = sizeof(type);
		char *e;
		long v;

		if(de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		v = strtol(de->d_name, &e, 10);
		if(*e || v < 0 || v > INT_MAX || (int)v == self)
			continue;
		fd = (int)v;
		if(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) != 0 || type != SOCK_STREAM)
			continue;
		if(getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
			continue;
		if(ss.ss_family == AF_INET)
			peer = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if(ss.ss_family == AF_INET6)
			peer = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			continue;
		if(peer != port)
			continue;
		ol = sizeof(on);
		if(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol) != 0 || on)
			continue;
		on = 1;
		if(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0) {
			log_debug("mqtt_nodelay_set", "fd=%d", fd);
			n++;
		}
	}
	closedir(d);
	return n;
}

int mqtt_url_port(const char *url)
{
	bool tls;
	int port;

	return url && parse_url(url, &port, &tls) == 0 ? port : -1;
}

/* Switches TCP_NODELAY on for the sockets to the broker: paho never does
 * (see mqtt.h). Runs on paho's thread right after the connect. */
static void set_nodelay(struct mqtt *m)
{
	int n = mqtt_nodelay_to_port(m->port);

	if(n < 0)
		log_debug("mqtt_nodelay_skipped", "reason=\"no /proc/self/fd\"");
	while(n-- > 0)
		count(&m->nodelay_set);
}

/* --- paho callbacks (paho's threads: no blocking, no caller locks) --------------- */

static void on_subscribed(void *context, MQTTAsync_successData5 *resp)
{
	struct mqtt *m = context;
	int i, bad = 0;

	/* paho fills reasonCodes only for more than one filter; for one, the
	 * code is in reasonCode and reasonCodes is left uninitialised. */
	if(resp->alt.sub.reasonCodeCount > 1 && resp->alt.sub.reasonCodes) {
		for(i = 0; i < resp->alt.sub.reasonCodeCount; i++) {
			if(resp->alt.sub.reasonCodes[i] >= 0x80) {
				bad = 1;
				log_error("mqtt_subscribe_refused", "filter=\"%s\" reason=%d",
				          i < m->nsubs ? m->subs[i].filter : "?",
				          (int)resp->alt.sub.reasonCodes[i]);
			}
		}
	} else if(resp->reasonCode >= 0x80) {
		bad = 1;
		log_error("mqtt_subscribe_refused", "filter=\"%s\" reason=%d",
		          m->nsubs ? m->subs[0].filter : "?", (int)resp->reasonCode);
	}
	if(bad)
		count(&m->subscribe_failures);
	else
		count(&m->subscribes);
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData5 *resp)
{
	struct mqtt *m = context;

	count(&m->subscribe_failures);
	log_error("mqtt_subscribe_failed", "code=%d reason=%d msg=\"%s\"", resp->code, (int)resp->reasonCode,
	          resp->message ? resp->message : "");
}

static void on_publish_failed(void *context, MQTTAsync_failureData5 *resp)
{
	struct mqtt *m = context;

	count(&m->publish_failures);
	/* One warning per connection: a lost connection fails every publish
	 * in flight at once. */
	if(!atomic_exchange(&m->fail_warned, true))
		log_warn("mqtt_publish_failed", "code=%d reason=%d msg=\"%s\"", resp->code,
		         (int)resp->reasonCode, resp->message ? resp->message : "");
	else
		log_debug("mqtt_publish_failed", "code=%d reason=%d", resp->code, (int)resp->reasonCode);
}

/* Copies the outbox state to the lock-free gauges; under out_lock. */
static void outbox_gauges(struct mqtt *m)
{
	atomic_store_explicit(&m->gauge_queued, m->out_len, memory_order_relaxed);
	atomic_store_explicit(&m->gauge_inflight, (uint64_t)m->inflight, memory_order_relaxed);
	if(m->out_len == 0 && m->inflight == 0)
		pthread_cond_broadcast(&m->out_cond);
}

/* A windowed publish got its completion (or failed): its slot is free. */
static void settle(struct mqtt *m)
{
	pthread_mutex_lock(&m->out_lock);
	if(m->inflight > 0)
		m->inflight--;
	outbox_gauges(m);
	pthread_mutex_unlock(&m->out_lock);
}

/* Unlinks everything the outbox holds; under out_lock. Returns the list. */
static struct outmsg *outbox_take_all(struct mqtt *m, size_t *n)
{
	struct outmsg *list = m->out_head;

	*n = m->out_len;
	m->out_head = m->out_tail = NULL;
	m->out_len = 0;
	outbox_gauges(m);
	return list;
}

/* Frees a list taken from the outbox and counts it as dropped: each was
 * accepted by mqtt_publish and will never reach the broker. */
static void outbox_drop(struct mqtt *m, struct outmsg *list, size_t n, const char *why)
{
	while(list) {
		struct outmsg *next = list->next;
		free(list);
		list = next;
	}
	if(n == 0)
		return;
	count_n(&m->outbox_dropped, n);
	count_n(&m->publish_failures, n);
	log_warn("mqtt_outbox_dropped", "count=%zu why=%s", n, why);
}

static void pump(struct mqtt *m);

/* Completion of a windowed publish: on paho's receive thread, from its
 * handling of the PUBACK (PUBCOMP for QoS 2). Handing paho the next
 * message from here queues a command, which wakes paho's send thread at
 * once; without it the thread sleeps up to a second (mqtt.h). */
static void on_windowed_done(void *context, MQTTAsync_successData5 *resp)
{
	struct mqtt *m = context;

	settle(m);
	pump(m);
}

static void on_windowed_failed(void *context, MQTTAsync_failureData5 *resp)
{
	struct mqtt *m = context;

	on_publish_failed(context, resp);
	settle(m);
	/* Only a refusal in the broker's acknowledgement arrives on a live
	 * connection, from the same place as on_windowed_done. The other
	 * failures come from paho tearing a connection or the client down,
	 * some on threads that hold paho's mutex and are not paho's own (in
	 * MQTTAsync_destroy): calling paho from there would deadlock. */
	if(resp->packet_type == PACKET_PUBACK || resp->packet_type == PACKET_PUBREC ||
	   resp->packet_type == PACKET_PUBCOMP)
		pump(m);
}

/* Hands one message to paho. windowed: it holds a slot of the window,
 * freed by on_windowed_done/on_windowed_failed. On success, count as
 * published and fill token when asked. */
static int send_raw(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                    uint32_t expiry_s, const void *corr, size_t corr_len, bool windowed,
                    MQTTAsync_token *token)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;
	int rc;

	msg.payload = (void *)(len ? payload : "");
	msg.payloadlen = (int)len;
	msg.qos = qos;
	msg.retained = retain;
	if(expiry_s) {
		memset(&p, 0, sizeof(p));
		p.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
		p.value.integer4 = expiry_s;
		if(MQTTProperties_add(&props, &p) != 0) {
			rc = RP_ENOMEM;
			goto out;
		}
	}
	if(corr && corr_len) {
		memset(&p, 0, sizeof(p));
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data.data = (char *)corr;
		p.value.data.len = (int)corr_len;
		/* MQTTProperties_add copies the bytes */
		if(MQTTProperties_add(&props, &p) != 0) {
			rc = RP_ENOMEM;
			goto out;
		}
	}
	msg.properties = props;
	/* With MQTT 5, paho takes the properties from the response options
	 * (sendMessage copies msg.properties there) and copies them, so ours
	 * are freed below whatever happens. */
	if(windowed) {
		ro.onSuccess5 = on_windowed_done;
		ro.onFailure5 = on_windowed_failed;
	} else {
		ro.onFailure5 = on_publish_failed;
	}
	ro.context = m;
	rc = map_paho(MQTTAsync_sendMessage(m->client, topic, &msg, &ro));
	if(rc == 0 && token)
		*token = ro.token;
out:
	MQTTProperties_free(&props);
	if(rc == 0)
		count(&m->published);
	else
		count(&m->publish_failures);
	return rc;
}

/*
 * Hands queued messages to paho while the window has room. One thread
 * pumps at a time, so messages reach paho in the order they were queued;
 * a thread that finds another one pumping leaves the work to it (the
 * pumper looks at the outbox again under the lock after every message, so
 * nothing queued meanwhile is missed). Runs on publishing threads and on
 * paho's receive thread; never blocks on anything but out_lock.
 */
static void pump(struct mqtt *m)
{
	pthread_mutex_lock(&m->out_lock);
	if(m->pumping) {
		pthread_mutex_unlock(&m->out_lock);
		return;
	}
	m->pumping = true;
	while(m->pump_ok && m->out_head && m->inflight < m->window) {
		struct outmsg *e = m->out_head;
		int rc;

		m->out_head = e->next;
		if(!m->out_head)
			m->out_tail = NULL;
		m->out_len--;
		m->inflight++;
		outbox_gauges(m);
		pthread_mutex_unlock(&m->out_lock);
		rc = send_raw(m, e->topic, e->payload, e->len, e->qos, e->retain, e->expiry_s, e->corr,
		              e->corr_len, true, NULL);
		if(rc)
			log_debug("mqtt_outbox_send_failed", "topic=\"%.128s\" code=%s", e->topic,
			          rp_code_name(rc));
		free(e);
		pthread_mutex_lock(&m->out_lock);
		if(rc) {
			m->inflight--;
			outbox_gauges(m);
			/* Disconnected under us: mark_disconnected drops the rest. */
			if(rc == RP_ENET)
				break;
		}
	}
	m->pumping = false;
	pthread_mutex_unlock(&m->out_lock);
}

/* Sets the window from the broker's Receive Maximum (1..65535), never
 * above WINDOW_MAX or max_buffered. */
static void set_window(struct mqtt *m, long receive_max)
{
	int w;

	if(receive_max < 1 || receive_max > 65535)
		return;
	w = receive_max > WINDOW_MAX ? WINDOW_MAX : (int)receive_max;
	if((size_t)w > m->max_buffered)
		w = (int)m->max_buffered;
	pthread_mutex_lock(&m->out_lock);
	m->window = w;
	atomic_store_explicit(&m->gauge_window, (uint64_t)w, memory_order_relaxed);
	pthread_mutex_unlock(&m->out_lock);
}

/* The first connect's success: paho only reports it for the connect that
 * mqtt_start asked for (it forgets onSuccess5 afterwards), and it comes
 * before on_connected. Reads the broker's Receive Maximum. */
static void on_first_connack(void *context, MQTTAsync_successData5 *resp)
{
	struct mqtt *m = context;
	long rm = RECEIVE_MAX_ABSENT;

	if(MQTTProperties_hasProperty(&resp->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
		rm = MQTTProperties_getNumericValue(&resp->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
	set_window(m, rm);
	log_debug("mqtt_receive_maximum", "value=%ld window=%d", rm, (int)load(&m->gauge_window));
}

static void resubscribe(struct mqtt *m)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char *filters[MQTT_MAX_SUBSCRIPTIONS];
	int qos[MQTT_MAX_SUBSCRIPTIONS];
	MQTTSubscribe_options opts[MQTT_MAX_SUBSCRIPTIONS];
	int i, rc;

	if(m->nsubs == 0)
		return;
	for(i = 0; i < m->nsubs; i++) {
		filters[i] = m->subs[i].filter;
		qos[i] = m->subs[i].qos;
		opts[i] = m->subs[i].opts;
	}
	ro.onSuccess5 = on_subscribed;
	ro.onFailure5 = on_subscribe_failed;
	ro.context = m;
	if(m->nsubs == 1)
		ro.subscribeOptions = opts[0];
	else {
		ro.subscribeOptionsCount = m->nsubs;
		ro.subscribeOptionsList = opts;
	}
	rc = MQTTAsync_subscribeMany(m->client, m->nsubs, filters, qos, &ro);
	if(rc != MQTTASYNC_SUCCESS) {
		count(&m->subscribe_failures);
		log_error("mqtt_subscribe_failed", "code=%d msg=\"%s\"", rc, MQTTAsync_strerror(rc));
	}
}

static void on_connected(void *context, char *cause)
{
	struct mqtt *m = context;
	uint64_t gen;
	bool reconnect;
	int rc;

	/* "online" takes a slot of the window like any QoS 1 publish, so that
	 * paho never holds more of ours than the broker lets fly. */
	pthread_mutex_lock(&m->out_lock);
	m->pump_ok = true;
	m->inflight++;
	outbox_gauges(m);
	pthread_mutex_unlock(&m->out_lock);
	atomic_store(&m->connected, true);
	atomic_store(&m->fail_warned, false);
	gen = atomic_fetch_add(&m->generation, 1) + 1;
	reconnect = gen > 1;
	if(reconnect)
		count(&m->reconnects);
	set_nodelay(m);
	resubscribe(m);
	rc = send_raw(m, m->status_topic, "online", 6, 1, true, 0, NULL, 0, true, NULL);
	if(rc) {
		settle(m);
		log_error("mqtt_status_failed", "topic=%s code=%s", m->status_topic, rp_code_name(rc));
	}
	/* Messages queued in a race with the last disconnect go out now. */
	pump(m);
	log_info("mqtt_connected", "url=%s client_id=%s reconnect=%d", m->url, m->client_id,
	         reconnect ? 1 : 0);
	if(m->cb.on_connect)
		m->cb.on_connect(m->cb.arg, reconnect);
}

static void mark_disconnected(struct mqtt *m, const char *why, int reason)
{
	bool was = atomic_exchange(&m->connected, false);
	struct outmsg *list;
	size_t n;

	if(!was)
		return;
	/* What the outbox holds is dropped, not kept for the next connection:
	 * the reconnect makes the caller republish all its retained state
	 * (on_connect), and a reply this late is of no use (mqtt.h). */
	pthread_mutex_lock(&m->out_lock);
	m->pump_ok = false;
	list = outbox_take_all(m, &n);
	pthread_mutex_unlock(&m->out_lock);
	outbox_drop(m, list, n, why);
	count(&m->connection_lost);
	if(!atomic_load(&m->stopping))
		log_warn("mqtt_connection_lost", "url=%s why=%s reason=%d", m->url, why, reason);
	if(m->cb.on_disconnect)
		m->cb.on_disconnect(m->cb.arg);
}

static void on_connection_lost(void *context, char *cause)
{
	mark_disconnected(context, "connection_lost", 0);
}

static void on_server_disconnect(void *context, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	mark_disconnected(context, "server_disconnect", (int)reason);
}

static void on_connect_failed(void *context, MQTTAsync_failureData5 *resp)
{
	struct mqtt *m = context;

	/* paho retries by itself (automaticReconnect), also after a failed
	 * first connect. */
	count(&m->connect_failures);
	log_warn("mqtt_connect_failed", "url=%s code=%d reason=%d msg=\"%s\"", m->url, resp->code,
	         (int)resp->reasonCode, resp->message ? resp->message : "");
}

static int on_message(void *context, char *topic_name, int topic_len, MQTTAsync_message *message)
{
	struct mqtt *m = context;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic_name);
	size_t plen = message->payloadlen > 0 ? (size_t)message->payloadlen : 0;
	MQTTProperty *rt = NULL, *cd = NULL;
	size_t rtlen = 0, cdlen = 0, total;
	struct mqtt_msg *msg = NULL;
	char *p;

	count(&m->received);
	if(plen > m->max_message || memchr(topic_name, '\0', tlen)) {
		count(&m->dropped_invalid);
		log_debug("mqtt_message_dropped", "reason=invalid len=%zu", plen);
		goto out;
	}
	rt = MQTTProperties_getProperty(&message->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
	cd = MQTTProperties_getProperty(&message->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
	if(rt)
		rtlen = rt->value.data.len > 0 ? (size_t)rt->value.data.len : 0;
	if(cd)
		cdlen = cd->value.data.len > 0 ? (size_t)cd->value.data.len : 0;
	total = sizeof(*msg) + tlen + 1 + plen + 1 + (rt ? rtlen + 1 : 0) + cdlen;
	msg = malloc(total);
	if(!msg) {
		count(&m->dropped_queue_full); /* documented: full or out of memory */
		goto out;
	}
	p = (char *)(msg + 1);
	msg->topic = p;
	msg->topic_len = tlen;
	memcpy(p, topic_name, tlen);
	p[tlen] = '\0';
	p += tlen + 1;
	msg->payload = p;
	msg->len = plen;
	if(plen)
		memcpy(p, message->payload, plen);
	p[plen] = '\0';
	p += plen + 1;
	msg->response_topic = NULL;
	msg->response_topic_len = 0;
	if(rt) {
		msg->response_topic = p;
		msg->response_topic_len = rtlen;
		if(rtlen)
			memcpy(p, rt->value.data.data, rtlen);
		p[rtlen] = '\0';
		p += rtlen + 1;
	}
	msg->correlation = NULL;
	msg->correlation_len = 0;
	if(cd && cdlen) {
		msg->correlation = p;
		msg->correlation_len = cdlen;
		memcpy(p, cd->value.data.data, cdlen);
	}
	msg->qos = message->qos;
	msg->retained = message->retained != 0;
	msg->received_at_ms = rtime_now_ms();
	if(queue_push(m->inbox, msg) != 0) {
		count(&m->dropped_queue_full);
		if(!atomic_exchange(&m->drop_warned, true))
			log_warn("mqtt_inbox_full", "topic=\"%.128s\"", msg->topic);
		free(msg);
	} else {
		atomic_store_explicit(&m->drop_warned, false, memory_order_relaxed);
	}
out:
	MQTTAsync_freeMessage(&message);
	MQTTAsync_free(topic_name);
	return 1;
}

static void on_disconnect_done(void *context, MQTTAsync_successData5 *resp)
{
	struct mqtt *m = context;

	pthread_mutex_lock(&m->done_lock);
	m->disconnect_done = true;
	pthread_cond_broadcast(&m->done_cond);
	pthread_mutex_unlock(&m->done_lock);
}

static void on_disconnect_failed(void *context, MQTTAsync_failureData5 *resp)
{
	on_disconnect_done(context, NULL);
}

/* --- life cycle ------------------------------------------------------------------- */

static char *default_client_id(void)
{
	char host[64], buf[128];

	if(gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	snprintf(buf, sizeof(buf), "ratepool-%.40s-%ld", host, (long)getpid());
	return strdup(buf);
}

int mqtt_new(struct mqtt **out, const struct mqtt_options *opt, const struct mqtt_callbacks *cb,
             struct queue *inbox, struct rp_err *err)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	struct mqtt *m = NULL;
	size_t plen;
	int rc = 0, prc;

	*out = NULL;
	if(!opt || !inbox)
		return rp_err_set(err, RP_EINVAL, "mqtt: options and inbox are required");
	if(!opt->prefix || !*opt->prefix || !publish_topic_ok(opt->prefix))
		return rp_err_set(err, RP_EINVAL,
		                  "mqtt: topic prefix must be a non-empty topic without wildcards");
	m = calloc(1, sizeof(*m));
	if(!m)
		return rp_err_set(err, RP_ENOMEM, "mqtt: out of memory");
	m->client = NULL;
	m->inbox = inbox;
	if(cb)
		m->cb = *cb;
	pthread_mutex_init(&m->done_lock, NULL);
	pthread_cond_init(&m->done_cond, NULL);
	pthread_mutex_init(&m->out_lock, NULL);
	pthread_cond_init(&m->out_cond, NULL);
	m->max_buffered = opt->max_buffered > 0 ? (size_t)opt->max_buffered : 2048;
	m->window = m->max_buffered < DEFAULT_WINDOW ? (int)m->max_buffered : DEFAULT_WINDOW;
	atomic_store(&m->gauge_window, (uint64_t)m->window);
	if(parse_url(opt->url, &m->port, &m->tls) != 0) {
		rc = rp_err_set(err, RP_EINVAL,
		                "mqtt_url \"%.200s\" must look like tcp://host:1883 or ssl://host:8883",
		                opt->url ? opt->url : "");
		goto out;
	}
	if(dup_opt(&m->url, opt->url) || dup_opt(&m->username, opt->username) ||
	   dup_opt(&m->password, opt->password) || dup_opt(&m->ca_file, opt->ca_file)) {
		rc = rp_err_set(err, RP_ENOMEM, "mqtt: out of memory");
		goto out;
	}
	if(opt->client_id && *opt->client_id)
		m->client_id = strdup(opt->client_id);
	else
		m->client_id = default_client_id();
	plen = strlen(opt->prefix);
	m->status_topic = malloc(plen + sizeof("/status"));
	if(!m->client_id || !m->status_topic) {
		rc = rp_err_set(err, RP_ENOMEM, "mqtt: out of memory");
		goto out;
	}
	memcpy(m->status_topic, opt->prefix, plen);
	memcpy(m->status_topic + plen, "/status", sizeof("/status"));
	m->keepalive_s = opt->keepalive_s > 0 ? opt->keepalive_s : 30;
	m->connect_timeout_s = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 10;
	m->min_retry_s = opt->min_retry_s > 0 ? opt->min_retry_s : 1;
	m->max_retry_s = opt->max_retry_s > 0 ? opt->max_retry_s : 30;
	if(m->max_retry_s < m->min_retry_s)
		m->max_retry_s = m->min_retry_s;
	m->max_message = opt->max_message > 0 ? opt->max_message : 64 * 1024;

	/* Fail instead of buffering while disconnected: the caller must know
	 * (mqtt.h); a bounded buffer while connected. paho holds at most the
	 * window of QoS > 0 publishes (the outbox keeps the rest) plus QoS 0
	 * ones. */
	co.sendWhileDisconnected = 0;
	co.maxBufferedMessages = (int)m->max_buffered;
	co.deleteOldestMessages = 0;
	co.restoreMessages = 0;
	co.persistQoS0 = 0;
	prc = MQTTAsync_createWithOptions(&m->client, m->url, m->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
	                                  &co);
	if(prc != MQTTASYNC_SUCCESS) {
		m->client = NULL;
		rc = rp_err_set(err, prc == MQTTASYNC_BAD_PROTOCOL ? RP_EINVAL : RP_EIO,
		                "mqtt: cannot create client: %s", MQTTAsync_strerror(prc));
		goto out;
	}
	if(MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message, NULL) != MQTTASYNC_SUCCESS ||
	   MQTTAsync_setConnected(m->client, m, on_connected) != MQTTASYNC_SUCCESS ||
	   MQTTAsync_setDisconnected(m->client, m, on_server_disconnect) != MQTTASYNC_SUCCESS) {
		rc = rp_err_set(err, RP_EIO, "mqtt: cannot set callbacks");
		goto out;
	}
	*out = m;
	m = NULL;
out:
	mqtt_free(m);
	return rc;
}

int mqtt_subscribe_add(struct mqtt *m, const char *filter, int qos, bool skip_retained)
{
	MQTTSubscribe_options so = MQTTSubscribe_options_initializer;
	size_t n;

	if(!filter || qos < 0 || qos > 2)
		return RP_EINVAL;
	n = strnlen(filter, MQTT_TOPIC_MAX + 1);
	if(n == 0 || n > MQTT_TOPIC_MAX)
		return RP_EINVAL;
	if(atomic_load(&m->started) || m->nsubs >= MQTT_MAX_SUBSCRIPTIONS)
		return RP_EBUSY;
	m->subs[m->nsubs].filter = strdup(filter);
	if(!m->subs[m->nsubs].filter)
		return RP_ENOMEM;
	so.retainHandling = skip_retained ? 2 : 0;
	m->subs[m->nsubs].qos = qos;
	m->subs[m->nsubs].opts = so;
	m->nsubs++;
	return 0;
}

int mqtt_start(struct mqtt *m, struct rp_err *err)
{
	MQTTAsync_connectOptions conn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	int prc;

	if(atomic_exchange(&m->started, true))
		return rp_err_set(err, RP_EBUSY, "mqtt: already started");
	atomic_store(&m->stopping, false);
	m->will = will;
	m->will.topicName = m->status_topic;
	m->will.message = "offline";
	m->will.retained = 1;
	m->will.qos = 1;
	m->conn = conn;
	m->conn.keepAliveInterval = m->keepalive_s;
	m->conn.cleansession = 0; /* MQTT 5 uses cleanstart instead */
	m->conn.cleanstart = 1;
	m->conn.will = &m->will;
	m->conn.username = m->username;
	m->conn.password = m->password;
	m->conn.connectTimeout = m->connect_timeout_s;
	m->conn.automaticReconnect = 1;
	m->conn.minRetryInterval = m->min_retry_s;
	m->conn.maxRetryInterval = m->max_retry_s;
	m->conn.onSuccess5 = on_first_connack;
	m->conn.onFailure5 = on_connect_failed;
	m->conn.context = m;
	if(m->tls) {
		m->ssl = ssl;
		m->ssl.trustStore = m->ca_file; /* NULL: OpenSSL's default paths */
		m->ssl.enableServerCertAuth = 1;
		m->ssl.verify = 1; /* host name must match the certificate */
		m->conn.ssl = &m->ssl;
	}
	prc = MQTTAsync_connect(m->client, &m->conn);
	if(prc != MQTTASYNC_SUCCESS) {
		atomic_store(&m->started, false);
		return rp_err_set(err, map_paho(prc) == RP_EINVAL ? RP_EINVAL : RP_EIO,
		                  "mqtt: cannot connect: %s", MQTTAsync_strerror(prc));
	}
	log_info("mqtt_connecting", "url=%s client_id=%s tls=%d", m->url, m->client_id, m->tls ? 1 : 0);
	return 0;
}

static void deadline_in(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if(ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the outbox is empty and every windowed publish completed,
 * at most timeout_ms. */
static void wait_drained(struct mqtt *m, int timeout_ms)
{
	struct timespec ts;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&m->out_lock);
	while(m->pump_ok && (m->out_len || m->inflight)) {
		if(pthread_cond_timedwait(&m->out_cond, &m->out_lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&m->out_lock);
}

static void wait_done(struct mqtt *m, int timeout_ms)
{
	struct timespec ts;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&m->done_lock);
	while(!m->disconnect_done) {
		if(pthread_cond_timedwait(&m->done_cond, &m->done_lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&m->done_lock);
}

void mqtt_stop(struct mqtt *m, bool clean, int timeout_ms)
{
	MQTTAsync_disconnectOptions dis = MQTTAsync_disconnectOptions_initializer5;
	MQTTAsync_token token = 0;
	struct outmsg *list;
	int64_t end;
	size_t n;
	int prc, left;

	if(!m || !m->client || !atomic_load(&m->started))
		return;
	if(timeout_ms < 0)
		timeout_ms = 0;
	end = mono_ms() + timeout_ms;
	atomic_store(&m->stopping, true);
	/* Clean: what the outbox holds goes out first, then "offline", all
	 * within timeout_ms; what is left after that is dropped. */
	if(clean && atomic_load(&m->connected))
		wait_drained(m, timeout_ms);
	pthread_mutex_lock(&m->out_lock);
	m->pump_ok = false;
	list = outbox_take_all(m, &n);
	pthread_mutex_unlock(&m->out_lock);
	outbox_drop(m, list, n, "stopped");
	if(clean && atomic_load(&m->connected)) {
		left = (int)(end - mono_ms());
		if(left < 100)
			left = 100; /* "offline" gets a moment even after a slow drain */
		if(send_raw(m, m->status_topic, "offline", 7, 1, true, 0, NULL, 0, false, &token) == 0)
			MQTTAsync_waitForCompletion(m->client, token, (unsigned long)left);
	}
	pthread_mutex_lock(&m->done_lock);
	m->disconnect_done = false;
	pthread_mutex_unlock(&m->done_lock);
	dis.timeout = timeout_ms;
	dis.reasonCode =
	        clean ? MQTTREASONCODE_NORMAL_DISCONNECTION : MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE;
	dis.onSuccess5 = on_disconnect_done;
	dis.onFailure5 = on_disconnect_failed;
	dis.context = m;
	/* Clears paho's shouldBeConnected even when not connected, which ends
	 * the automatic reconnects. */
	prc = MQTTAsync_disconnect(m->client, &dis);
	if(prc == MQTTASYNC_SUCCESS)
		wait_done(m, timeout_ms + 1000);
	atomic_store(&m->connected, false);
	atomic_store(&m->started, false);
	log_info("mqtt_stopped", "url=%s clean=%d", m->url, clean ? 1 : 0);
}

void mqtt_free(struct mqtt *m)
{
	int i;

	if(!m)
		return;
	if(m->client) {
		if(atomic_load(&m->started))
			mqtt_stop(m, false, 1000);
		MQTTAsync_destroy(&m->client);
	}
	for(i = 0; i < m->nsubs; i++)
		free(m->subs[i].filter);
	/* paho is gone: nothing pumps any more. */
	while(m->out_head) {
		struct outmsg *next = m->out_head->next;
		free(m->out_head);
		m->out_head = next;
	}
	pthread_cond_destroy(&m->out_cond);
	pthread_mutex_destroy(&m->out_lock);
	pthread_cond_destroy(&m->done_cond);
	pthread_mutex_destroy(&m->done_lock);
	free(m->url);
	free(m->client_id);
	free(m->username);
	free(m->password);
	free(m->ca_file);
	free(m->status_topic);
	free(m);
}

/* --- publishing ----------------------------------------------------------------------- */

/* Copies a QoS > 0 message into the outbox and pumps. */
static int enqueue(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   uint32_t expiry_s, const void *corr, size_t corr_len)
{
	size_t tlen = strlen(topic);
	struct outmsg *e = malloc(sizeof(*e) + tlen + 1 + len + corr_len);
	char *p;

	if(!e) {
		count(&m->publish_failures);
		return RP_ENOMEM;
	}
	p = (char *)(e + 1);
	memcpy(p, topic, tlen + 1);
	e->topic = p;
	p += tlen + 1;
	if(len)
		memcpy(p, payload, len);
	e->payload = p;
	e->len = len;
	p += len;
	if(corr_len)
		memcpy(p, corr, corr_len);
	e->corr = corr_len ? p : NULL;
	e->corr_len = corr_len;
	e->qos = qos;
	e->retain = retain;
	e->expiry_s = expiry_s;
	e->next = NULL;

	pthread_mutex_lock(&m->out_lock);
	if(!m->pump_ok || m->out_len >= m->max_buffered) {
		int rc = m->pump_ok ? RP_EBUSY : RP_ENET;
		pthread_mutex_unlock(&m->out_lock);
		free(e);
		count(&m->publish_failures);
		if(rc == RP_EBUSY) {
			count(&m->outbox_full);
			if(!atomic_exchange(&m->full_warned, true))
				log_warn("mqtt_outbox_full", "queued=%zu topic=\"%.128s\"", m->max_buffered,
				         topic);
		}
		return rc;
	}
	if(m->out_tail)
		m->out_tail->next = e;
	else
		m->out_head = e;
	m->out_tail = e;
	m->out_len++;
	outbox_gauges(m);
	pthread_mutex_unlock(&m->out_lock);
	atomic_store_explicit(&m->full_warned, false, memory_order_relaxed);
	pump(m);
	return 0;
}

static int publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   uint32_t expiry_s, const void *corr, size_t corr_len)
{
	if(!publish_topic_ok(topic) || !utf8_ok(topic) || qos < 0 || qos > 2 || len > MQTT_PAYLOAD_MAX ||
	   (len && !payload) || corr_len > MQTT_CORRELATION_MAX) {
		count(&m->publish_failures);
		log_debug("mqtt_publish_refused", "reason=invalid");
		return RP_EINVAL;
	}
	if(!atomic_load(&m->connected)) {
		count(&m->publish_failures);
		return RP_ENET;
	}
	if(qos > 0)
		return enqueue(m, topic, payload, len, qos, retain, expiry_s, corr, corr_len);
	/* QoS 0 needs no acknowledgement, so paho never holds it back. */
	return send_raw(m, topic, payload, len, qos, retain, expiry_s, corr, corr_len, false, NULL);
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 uint32_t expiry_s)
{
	return publish(m, topic, payload, len, qos, retain, expiry_s, NULL, 0);
}

int mqtt_reply(struct mqtt *m, const char *topic, const void *correlation, size_t correlation_len,
               const void *payload, size_t len, int qos, uint32_t expiry_s)
{
	return publish(m, topic, payload, len, qos, false, expiry_s, correlation,
	               correlation ? correlation_len : 0);
}

bool mqtt_connected(const struct mqtt *m)
{
	return atomic_load(&((struct mqtt *)m)->connected);
}

uint64_t mqtt_connect_generation(const struct mqtt *m)
{
	return atomic_load(&((struct mqtt *)m)->generation);
}

const char *mqtt_status_topic(const struct mqtt *m)
{
	return m->status_topic;
}

void mqtt_counters(const struct mqtt *m, struct mqtt_counters *out)
{
	out->published = load(&m->published);
	out->publish_failures = load(&m->publish_failures);
	out->received = load(&m->received);
	out->dropped_queue_full = load(&m->dropped_queue_full);
	out->dropped_invalid = load(&m->dropped_invalid);
	out->connects = load(&m->generation);
	out->reconnects = load(&m->reconnects);
	out->connect_failures = load(&m->connect_failures);
	out->connection_lost = load(&m->connection_lost);
	out->subscribes = load(&m->subscribes);
	out->subscribe_failures = load(&m->subscribe_failures);
	out->nodelay_set = load(&m->nodelay_set);
	out->outbox_full = load(&m->outbox_full);
	out->outbox_dropped = load(&m->outbox_dropped);
	out->outbox_queued = load(&m->gauge_queued);
	out->outbox_inflight = load(&m->gauge_inflight);
	out->outbox_window = load(&m->gauge_window);
}
