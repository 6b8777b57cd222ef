/*
 * mqtt.h - the MQTT client: a thin wrapper over paho MQTTAsync speaking
 * MQTT 5. The only module that includes paho's headers; the rest of
 * ratepool sees the types below.
 *
 * Connection: clean start, keepalive, automatic reconnect with doubling
 * backoff (min_retry_s .. max_retry_s, also while the first connect
 * fails), username/password and TLS (ssl:// or mqtts://, CA file or the
 * system CAs, host name verified) from the configuration. Last will:
 * P/status = "offline", retained, QoS 1. On every (re)connect the wrapper
 * subscribes again (a clean start forgets subscriptions), publishes
 * P/status = "online" (retained, QoS 1), and then calls on_connect so that
 * the daemon republishes all its retained state: the broker may have
 * restarted without persistence. mqtt_stop(clean) publishes "offline"
 * before disconnecting.
 *
 * TCP_NODELAY: paho.mqtt.c 1.3.11 never sets it (its Socket_new only
 * calls socket/connect; the shared library imports getsockopt but not
 * setsockopt; upstream issue eclipse/paho.mqtt.c#530, "I deliberately
 * avoided setting TCP_NODELAY", was only addressed by a connect option
 * proposed after 1.3.12). Without it a reply waits for the delayed ACK
 * (40 ms on Linux) whenever a previous segment is unacknowledged. So on
 * every connect the wrapper walks /proc/self/fd and sets TCP_NODELAY on
 * the TCP sockets whose peer port is the broker's port (a harmless no-op
 * for any other socket that matches; counted in nodelay_set).
 *
 * Threads: paho runs its own threads and holds its mutex while it calls
 * ours. Our callbacks never block: the only lock they take is the
 * outbox's, which no thread holds while calling paho. A received message
 * is copied (topic, payload, Response Topic, Correlation Data) into one
 * allocation,
 * pushed on the caller's bounded inbox queue (queue.h) and paho's copy is
 * freed (MQTTAsync_freeMessage, MQTTAsync_free). A full inbox drops the
 * message and counts it. mqtt_publish and mqtt_reply are thread-safe.
 *
 * Flow control (the outbox): paho.mqtt.c 1.3.11 lets at most the broker's
 * Receive Maximum of QoS > 0 publishes fly (mosquitto: 20, its
 * max_inflight_messages) and keeps the rest in its command queue. When a
 * PUBACK frees a slot, its send thread is not woken (MQTTAsync_cycle
 * handles the PUBACK but never signals send_cond); it sends the next queued
 * message only when a new command is queued or after its 1 s
 * Thread_wait_cond tick. A burst of QoS 1 messages (1,000 replies, the
 * retained topics of every series after a reconnect) would drain at 20 per
 * second. Fixed upstream in December 2024 on the develop and 1.4 branches
 * (eclipse-paho/paho.mqtt.c pull request #1457, "Fix timeout of send thread
 * in Async client for v5").
 *
 * So the wrapper keeps QoS > 0 publishes in its own FIFO, bounded by
 * max_buffered messages, and hands paho at most `window` of them at a time
 * (window: the Receive Maximum in the broker's first CONNACK - 65,535 when
 * it sends none - but never above 1,024 or max_buffered; 20 when paho
 * reported no CONNACK: it reports only the first connect's, and none when
 * that connect failed and a retry succeeded). Each completion (PUBACK, or
 * PUBCOMP for QoS 2) hands paho the next message from paho's own callback:
 * queuing that command wakes the send thread at once, so a burst drains at
 * the broker's speed (the approach paho's maintainer recommends in
 * eclipse-paho/paho.mqtt.c#1355). QoS 0 publishes need no acknowledgement
 * and bypass the outbox. Ordering: QoS > 0 publishes reach the broker in
 * the order mqtt_publish accepted them (across threads: in the order the
 * calls took the outbox lock); a QoS 0 publish may overtake them. (paho's
 * send thread waits on a condition variable without a predicate, so a
 * wake-up that comes just before it waits is lost: rarely, the last
 * message of a burst still waits for the tick, at most 1 s.)
 *
 * Failed publishes are never silent: mqtt_publish returns an error when
 * the client is disconnected, the outbox (QoS > 0) or paho's buffer
 * (QoS 0) is full, or the arguments are unusable, and counts it. The
 * wrapper keeps no dirty set: the caller marks the topic dirty on a
 * non-zero return and publishes it again later (it holds the data; the
 * wrapper would have to copy every retained document). A publish accepted
 * and failing later is counted in publish_failures and logged: the
 * connection was lost before the PUBACK, or the broker refused it, or the
 * connection was lost (or mqtt_stop came) while it still waited in the
 * outbox - those are dropped, not kept for the next connection, and also
 * counted in outbox_dropped. A lost connection always ends in a
 * reconnect, whose on_connect (and mqtt_connect_generation) tells the
 * caller to republish all its retained state anyway; a reply that late
 * is of no use to the requester, who has timed out. (Of the at most
 * `window` publishes paho holds, those it had not written yet stay in its
 * queue and go out after the reconnect, before "online".)
 */
#ifndef RATEPOOL_MQTT_H
#define RATEPOOL_MQTT_H

#include "ratepool/error.h"
#include "ratepool/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct mqtt;

#define MQTT_MAX_SUBSCRIPTIONS 16
#define MQTT_TOPIC_MAX         65535
#define MQTT_CORRELATION_MAX   65535
#define MQTT_PAYLOAD_MAX       268435455

/* A received message, owned by whoever popped it from the inbox; free with
 * mqtt_msg_free(). One allocation: every pointer lives as long as msg. */
struct mqtt_msg {
	char *topic; /* NUL-terminated, never NULL */
	size_t topic_len;
	char *payload; /* len bytes plus a NUL not counted in len */
	size_t len;
	char *response_topic; /* MQTT 5 Response Topic, NUL-terminated; NULL when
	                       * absent (always for MQTT 3.1.1 senders) */
	size_t response_topic_len;
	void *correlation; /* MQTT 5 Correlation Data; NULL when absent */
	size_t correlation_len;
	int qos;
	bool retained;
	int64_t received_at_ms; /* rtime_now_ms() when paho handed it over */
};

/* Frees a message (NULL allowed). Takes void * so it can be given to
 * queue_free() as the destructor of an inbox. */
void mqtt_msg_free(void *msg);

struct mqtt_options {
	const char *url;       /* tcp://, mqtt://, ssl://, mqtts:// (ws:// and wss://
	                        * too); port defaults 1883 / 8883 / 80 / 443 */
	const char *client_id; /* NULL or "": ratepool-<hostname>-<pid> */
	const char *username;  /* NULL: none */
	const char *password;  /* NULL: none; never logged */
	const char *ca_file;   /* NULL: the system CAs (TLS only) */
	const char *prefix;    /* topic prefix P; the status topic is P/status */
	int keepalive_s;       /* 0: 30 */
	int connect_timeout_s; /* 0: 10 */
	int min_retry_s;       /* 0: 1; reconnect backoff doubles from here */
	int max_retry_s;       /* 0: 30 */
	int max_buffered;      /* 0: 2048; QoS > 0 publishes the outbox holds
	                        * before mqtt_publish returns RP_EBUSY (paho
	                        * holds at most the window more), and the
	                        * QoS 0 publishes paho may hold */
	size_t max_message;    /* 0: 64 KiB; larger received payloads are
	                        * dropped (counted in dropped_invalid) */
};

/* Fills o from the configuration (url, credentials, CA file, client id,
 * prefix); tunables stay 0 (defaults). The strings are borrowed from cfg. */
void mqtt_options_from_config(struct mqtt_options *o, const struct config *cfg);

/* Called on paho's thread. They must return quickly and take no lock that
 * a thread calling mqtt_publish may hold: set a flag, queue_wake() the
 * event loop, return. Both may be NULL. */
struct mqtt_callbacks {
	/* After every successful connect, once the subscriptions and "online"
	 * were handed to paho. reconnect is false for the first connect. */
	void (*on_connect)(void *arg, bool reconnect);
	/* The connection was lost or the broker disconnected us; paho
	 * reconnects by itself. */
	void (*on_disconnect)(void *arg);
	void *arg;
};

struct mqtt_counters {
	uint64_t published;          /* publishes handed to paho and accepted by it
	                              * (incl. online/offline); a QoS > 0 one when
	                              * it leaves the outbox */
	uint64_t publish_failures;   /* refused by mqtt_publish, or failed after acceptance
	                              * (incl. every outbox_dropped) */
	uint64_t received;           /* messages paho delivered */
	uint64_t dropped_queue_full; /* received but the inbox was full (or no memory) */
	uint64_t dropped_invalid;    /* received but too large or with a NUL in the topic */
	uint64_t connects;           /* successful connects, the first included */
	uint64_t reconnects;         /* connects after the first */
	uint64_t connect_failures;   /* failed connect attempts: refused, bad credentials,
	                              * TLS, unreachable (paho reports at least those
	                              * before the first successful connect) */
	uint64_t connection_lost;
	uint64_t subscribes; /* subscription rounds the broker acknowledged */
	uint64_t subscribe_failures;
	uint64_t nodelay_set;     /* sockets on which TCP_NODELAY was switched on */
	uint64_t outbox_full;     /* QoS > 0 publishes refused with RP_EBUSY: outbox full */
	uint64_t outbox_dropped;  /* accepted QoS > 0 publishes dropped from the outbox
	                           * because the connection was lost or mqtt_stop came */
	uint64_t outbox_queued;   /* now: publishes waiting in the outbox */
	uint64_t outbox_inflight; /* now: windowed publishes paho holds without a completion */
	uint64_t outbox_window;   /* now: the most outbox_inflight may reach */
};

/*
 * Creates a client (not connected yet). opt's strings are copied. inbox
 * receives struct mqtt_msg * items; it is borrowed and must outlive the
 * client. cb may be NULL; it is copied. Returns 0, RP_EINVAL (bad URL,
 * prefix, missing inbox; err says which), RP_ENOMEM or RP_EIO (paho
 * refused; err holds its message).
 */
int mqtt_new(struct mqtt **out, const struct mqtt_options *opt, const struct mqtt_callbacks *cb,
             struct queue *inbox, struct rp_err *err);

/* Adds a subscription made on every connect, before mqtt_start only.
 * skip_retained asks the broker not to send retained messages at subscribe
 * time (MQTT 5 Retain Handling 2): a retained request would otherwise be
 * replayed at every reconnect. Returns 0, RP_EINVAL (empty/too long filter,
 * qos not 0..2), RP_EBUSY (started, or MQTT_MAX_SUBSCRIPTIONS reached),
 * RP_ENOMEM. */
int mqtt_subscribe_add(struct mqtt *m, const char *filter, int qos, bool skip_retained);

/* Starts connecting in the background and returns at once; paho keeps
 * trying (with backoff) until mqtt_stop. Returns 0, RP_EBUSY (already
 * started), RP_EIO (paho refused the options; err says why). */
int mqtt_start(struct mqtt *m, struct rp_err *err);

/*
 * Stops the client; blocks at most about 2 x timeout_ms. clean: when
 * connected, let the outbox drain, publish P/status "offline" (retained,
 * QoS 1) and wait for its acknowledgement, all within timeout_ms (what the
 * outbox still holds then is dropped and counted), then disconnect
 * normally (the broker discards the will). Not clean: disconnect with reason "disconnect with will
 * message", so the broker publishes the will ("offline") itself. Either
 * way automatic reconnect ends. Safe to call twice or before start.
 * Never call it (or mqtt_free) from an mqtt callback: it waits for paho.
 */
void mqtt_stop(struct mqtt *m, bool clean, int timeout_ms);

/* Frees the client (NULL allowed). A running client is stopped first
 * (not clean, 1 s). No callback runs once this returns. */
void mqtt_free(struct mqtt *m);

/*
 * Publishes payload (len bytes, NULL allowed when len is 0) to topic.
 * qos 0..2; retain; expiry_s: MQTT 5 Message Expiry Interval (0: none),
 * e.g. the end of a `current` slot, after which the broker drops the
 * retained message rather than serve a stale one.
 *
 * Returns 0 once the wrapper (QoS > 0: into the outbox) or paho (QoS 0)
 * took a copy of everything (the caller's buffers may be reused at once),
 * or:
 *   RP_EINVAL  topic empty, over MQTT_TOPIC_MAX, holding '+', '#' or NUL,
 *              starting with '$', not UTF-8; qos out of range; payload over
 *              MQTT_PAYLOAD_MAX (a wildcard would make the broker drop the
 *              connection, so it is refused here);
 *   RP_ENET    not connected (never started, reconnecting, stopped);
 *   RP_EBUSY   QoS > 0: the outbox holds max_buffered messages (counted in
 *              outbox_full too); QoS 0: paho's buffer or message ids are
 *              exhausted;
 *   RP_ENOMEM, RP_EIO.
 * Every non-zero return is counted in publish_failures; the caller marks
 * the topic dirty and publishes again later. Thread-safe.
 */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 uint32_t expiry_s);

/* A reply to a request: like mqtt_publish (never retained) with the
 * request's Correlation Data echoed (correlation NULL or correlation_len
 * 0: none; at most MQTT_CORRELATION_MAX bytes). topic is the request's
 * Response Topic or its checked "reply_to". Same returns. */
int mqtt_reply(struct mqtt *m, const char *topic, const void *correlation, size_t correlation_len,
               const void *payload, size_t len, int qos, uint32_t expiry_s);

/* True while connected to the broker. Thread-safe, lock-free. */
bool mqtt_connected(const struct mqtt *m);

/* Number of successful connects so far. A caller that remembers the value
 * it last republished for sees every reconnect, even one whose on_connect
 * it missed. Thread-safe, lock-free. */
uint64_t mqtt_connect_generation(const struct mqtt *m);

/* The status topic "P/status"; borrowed from m. */
const char *mqtt_status_topic(const struct mqtt *m);

/* Switches TCP_NODELAY on for every TCP socket of this process whose peer
 * port is `port` and that has it off (paho 1.3.11 never sets it). Returns
 * how many it switched on, or -1 without /proc/self/fd. The client does
 * this itself on every connect; the benchmark tools use it for their own
 * paho clients. */
int mqtt_nodelay_to_port(int port);

/* The broker's TCP port from a URL as mqtt_options.url takes it (explicit,
 * or 1883 / 8883 / 80 / 443 by scheme); -1 for a URL it refuses. */
int mqtt_url_port(const char *url);

/* A snapshot of the counters. Thread-safe, lock-free. */
void mqtt_counters(const struct mqtt *m, struct mqtt_counters *out);

#endif
