/*
 * daemon.c - the event loop of `ratepool run`.
 *
 * One thread (this one) owns every decision: it reads requests from the
 * MQTT inbox, answers from the store, decides which fetches run, and
 * publishes. paho's threads only queue messages; the fetcher's threads
 * only fetch, write the store and queue their results. So the series
 * table below needs no lock.
 *
 * Per series the loop keeps:
 *  - single-flight: at most one fetch in flight; every request that needs
 *    it waits (bounded by request_wait_ms) and is answered when it ends;
 *  - stale-while-revalidate for revisable data (forecasts): fresh for
 *    forecast_ttl_s, then stale_grace_s in which the cached answer goes out
 *    at once while one refresh runs, then must-fetch;
 *  - stale-if-error: a failed fetch keeps what is held, serves it marked
 *    stale and backs off (sched_next_poll) before the next try;
 *  - the next scheduled poll (sched.h: by publication window);
 *  - what was last published, so documents go out when the data changes
 *    and the current price at every slot boundary.
 */
#include "ratepool/daemon.h"
#include "ratepool/auth.h"
#include "ratepool/config.h"
#include "ratepool/discovery.h"
#include "ratepool/fetcher.h"
#include "ratepool/health.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/mqtt.h"
#include "ratepool/octopus.h"
#include "ratepool/provider.h"
#include "ratepool/publish.h"
#include "ratepool/queue.h"
#include "ratepool/request.h"
#include "ratepool/rtime.h"
#include "ratepool/sched.h"
#include "ratepool/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INBOX_CAPACITY          65536
#define SERIES_BUCKETS          4096
#define SERIES_MAX              10000
#define PENDING_MAX             200000
#define FETCH_THREADS           4
#define TICK_MS                 50
#define WATCH_INTERVAL_S        2
#define GC_INTERVAL_S           3600
#define LEASE_RECHECK_MS        200
#define HEALTH_MIN_GAP_MS       1000
#define CURRENT_EXPIRY_MARGIN_S 120
#define DEMAND_PERSIST_S        60
#define GAP_RETRY_S             60
#define TIMERS_MIN_GAP_MS       TICK_MS
/* Longest Retry-After a fetch waits for (provider_retry_policy): part of the lease. */
#define LEASE_RETRY_AFTER_S 60
#define LEASE_POLL_RETRY_S  10

/* A request waiting for an in-flight fetch. */
struct pending {
	struct request req;
	char *reply_topic; /* NULL: nobody to answer */
	void *corr;
	size_t corr_len;
	int qos;
	int64_t deadline_ms;
	bool refetched; /* already caused a second fetch for its own gaps */
	struct pending *next;
};

struct series {
	struct series_ref ref;
	const struct provider *p;
	struct series *hnext;
	uint32_t seed;

	bool tracked;    /* refreshed and published */
	bool configured; /* from RATEPOOL_SERIES: never idles out */
	int64_t last_requested;
	int64_t demand_persisted;

	/* fetch state */
	bool in_flight;
	uint64_t flight_seq;
	int failures;
	int last_code; /* of the last failed fetch */
	long retry_after;
	int64_t retry_at;                /* no request-driven fetch before this (backoff) */
	struct store_range failed_range; /* what the last failed fetch asked for */
	int64_t last_success;
	int64_t not_found_until;
	int64_t next_poll;
	int64_t recheck_at_ms;              /* lease held elsewhere: look again then */
	int64_t gap_block_until;            /* a gap fetch just ran and left gaps: do not repeat */
	struct store_range gap_block_range; /* ... for gaps inside the range it asked for */
	int64_t complete_until;
	struct pending *waiters;
	size_t n_waiters;

	/* publishing */
	bool doc_dirty;
	bool current_dirty;
	bool missing_now;
	int64_t next_current;
};

/* Requests naming an Octopus account alias, waiting for its record. */
struct account_wait {
	char alias[SERIES_ID_MAX + 1];
	bool in_flight;
	uint64_t seq;
	int64_t retry_at; /* a failed lookup is not repeated before this */
	int last_code;
	char last_error[256];
	struct pending *waiters;
};

struct daemon {
	const struct config *cfg;
	struct store *store;
	struct auth *auth;
	struct http_retry_policy retry;
	struct provider_ctx ctx;
	struct fetcher *fetcher;
	struct queue *inbox;
	struct mqtt *mqtt;
	struct discovery *disc; /* NULL: Home Assistant discovery off */
	struct health health;
	struct request_limits limits;
	struct account_wait accounts[CONFIG_MAX_ACCOUNTS];

	struct series *buckets[SERIES_BUCKETS];
	size_t n_series;
	size_t n_tracked;
	size_t n_pending;

	pthread_mutex_t done_lock;
	struct fetch_done *done_head, *done_tail; /* results from the workers */

	int64_t new_window_start;
	int new_in_window;
	uint64_t flight_seq;
	uint64_t published_generation;
	atomic_bool connection_changed;
	bool was_connected;
	bool draining;

	struct store_lookup lookup;
	struct publish_buf buf;
	int64_t next_health_ms;
	int64_t last_health_ms;
	bool health_dirty;
	int64_t next_watch;
	int64_t next_gc;
	unsigned long token_seen[AUTH_KIND_COUNT];
	char owner[128];
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;
static struct queue *signal_queue;

static void on_signal(int sig)
{
	if(sig == SIGHUP)
		reopen_requested = 1;
	else
		stop_requested = 1;
	if(signal_queue)
		queue_wake(signal_queue);
}

/* --- series table ------------------------------------------------------- */

static uint32_t series_hash(const struct series_ref *ref)
{
	return sched_seed(ref->provider, ref->id);
}

static struct series *series_find(struct daemon *d, const struct series_ref *ref)
{
	struct series *s = d->buckets[series_hash(ref) % SERIES_BUCKETS];

	for(; s; s = s->hnext)
		if(!strcmp(s->ref.id, ref->id) && !strcmp(s->ref.provider, ref->provider))
			return s;
	return NULL;
}

static struct series *series_add(struct daemon *d, const struct series_ref *ref, const struct provider *p)
{
	struct series *s;
	uint32_t h = series_hash(ref);

	if(d->n_series >= SERIES_MAX)
		return NULL;
	s = calloc(1, sizeof(*s));
	if(!s)
		return NULL;
	s->ref = *ref;
	s->p = p;
	s->seed = h;
	s->hnext = d->buckets[h % SERIES_BUCKETS];
	d->buckets[h % SERIES_BUCKETS] = s;
	d->n_series++;
	return s;
}

#define FOR_EACH_SERIES(d, s)                                                                                \
	for(size_t b_ = 0; b_ < SERIES_BUCKETS; b_++)                                                        \
		for(struct series *s = (d)->buckets[b_], *n_ = s ? s->hnext : NULL; s;                       \
		    s = n_, n_ = s ? s->hnext : NULL)

static void series_name(const struct series *s, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", s->ref.provider, s->ref.id);
}

/* --- publishing ---------------------------------------------------------- */

/* Home Assistant discovery of one series at a slot boundary (or when it is
 * due again): its state and, when changed, its config and day attributes. */
static void publish_discovery(struct daemon *d, struct series *s, int64_t now)
{
	int64_t from = rtime_day_add(s->p->zone, now, -1);
	int64_t to = rtime_day_add(s->p->zone, now, 2);

	if(s->complete_until > to)
		to = s->complete_until;
	if(store_lookup(d->store, &s->ref, from, to, &d->lookup) == 0)
		discovery_publish_series(d->disc, &s->ref, s->p, &d->lookup.slots, now);
}

static void publish_doc(struct daemon *d, struct series *s, int64_t now)
{
	char topic[PUBLISH_TOPIC_SIZE];
	struct publish_price_doc doc;
	int64_t from = rtime_day_add(s->p->zone, now, -1);
	int64_t to = s->complete_until > from ? s->complete_until : from + 1;
	int rc;

	if(publish_topic_prices(topic, sizeof(topic), d->cfg->topic_prefix, &s->ref))
		return;
	rc = store_lookup(d->store, &s->ref, from, to, &d->lookup);
	if(rc) {
		log_warn("publish_skipped", "series=%s/%s error=\"%s\"", s->ref.provider, s->ref.id,
		         rp_strerror(rc));
		return;
	}
	if(!d->lookup.slots.n) {
		s->doc_dirty = false; /* nothing held: never publish an empty or invented document */
		return;
	}
	memset(&doc, 0, sizeof(doc));
	doc.ref = &s->ref;
	doc.resolution = 0;
	doc.fetched_at = d->lookup.newest_fetched_at;
	doc.stale = s->failures > 0;
	doc.complete_until = s->complete_until;
	doc.slots = &d->lookup.slots;
	if(publish_price_doc(&d->buf, &doc))
		return;
	if(mqtt_publish(d->mqtt, topic, d->buf.p, d->buf.len, 1, true, 0) == 0)
		s->doc_dirty = false;
	/* The data changed: Home Assistant's view of it too. */
	publish_discovery(d, s, now);
}

/* The price that is "now" for a series, in d->lookup: the slot holding
 * now; for rolling actuals that appear only after their interval ends
 * (AEMO dispatch), the latest slot while it ended at most two periods and
 * the publication delay ago. *valid_until: when it stops being current.
 * NULL when there is none. */
static const struct slot *current_slot(struct daemon *d, struct series *s, int64_t now, int64_t *valid_until)
{
	const struct provider *p = s->p;
	const struct slot *last;
	int64_t lag;

	if(store_lookup(d->store, &s->ref, now, now + 1, &d->lookup) == 0 && d->lookup.slots.n &&
	   d->lookup.slots.v[0].start <= now) {
		*valid_until = d->lookup.slots.v[0].end;
		return &d->lookup.slots.v[0];
	}
	if(p->cadence != PROVIDER_PERIODIC || p->revisable || p->period_s <= 0)
		return NULL;
	lag = 2 * (int64_t)p->period_s + p->delay_s;
	if(store_lookup(d->store, &s->ref, now - lag, now, &d->lookup) || !d->lookup.slots.n)
		return NULL;
	last = &d->lookup.slots.v[d->lookup.slots.n - 1];
	if(last->end + lag <= now)
		return NULL;
	*valid_until = last->end + lag;
	return last;
}

static void publish_current_price(struct daemon *d, struct series *s, int64_t now)
{
	char topic[PUBLISH_TOPIC_SIZE];
	const struct slot *slot;
	int64_t valid_until = 0;
	uint32_t expiry;
	double left;

	if(publish_topic_current(topic, sizeof(topic), d->cfg->topic_prefix, &s->ref))
		return;
	slot = current_slot(d, s, now, &valid_until);
	if(!slot || publish_current(&d->buf, &d->lookup.slots, NULL, slot->start)) {
		/* No price for now: publish nothing; the retained one expires
		 * at its slot's end, so nobody sees an old price as current. */
		/* Before its first fetch has ended a new series is not "missing"
		 * (health would flap to degraded at every start). */
		if(!s->missing_now)
			d->health_dirty = true;
		s->missing_now = s->tracked && (s->last_success || s->failures);
		s->next_current = now + 60;
		s->current_dirty = false;
		return;
	}
	/* The broker counts the expiry in real seconds: the same number at
	 * real speed, fewer on an accelerated test clock (rounded up). */
	left = rtime_real_seconds((double)(valid_until - now + CURRENT_EXPIRY_MARGIN_S));
	expiry = left >= 1.0 ? (uint32_t)left : 1;
	if(expiry < left)
		expiry++;
	if(mqtt_publish(d->mqtt, topic, d->buf.p, d->buf.len, 1, true, expiry) == 0) {
		s->current_dirty = false;
		if(s->missing_now)
			d->health_dirty = true;
		s->missing_now = false;
		s->next_current = valid_until;
	}
}

/* Clears the retained topics of a series nobody follows any more. */
static void publish_clear(struct daemon *d, struct series *s)
{
	char topic[PUBLISH_TOPIC_SIZE];

	if(!publish_topic_prices(topic, sizeof(topic), d->cfg->topic_prefix, &s->ref))
		mqtt_publish(d->mqtt, topic, NULL, 0, 1, true, 0);
	if(!publish_topic_current(topic, sizeof(topic), d->cfg->topic_prefix, &s->ref))
		mqtt_publish(d->mqtt, topic, NULL, 0, 1, true, 0);
	discovery_remove_series(d->disc, &s->ref);
}

static void sync_token_stats(struct daemon *d, int64_t now)
{
	static const char *owners[AUTH_KIND_COUNT] = {"octopus", "watttime"};
	struct auth_stats st;
	int k;

	if(!d->auth)
		return;
	for(k = 0; k < AUTH_KIND_COUNT; k++) {
		auth_stats_get(d->auth, (enum auth_kind)k, &st);
		while(d->token_seen[k] < st.refresh_count) {
			health_token_refreshed(&d->health, owners[k],
			                       st.last_refresh ? st.last_refresh : now);
			d->token_seen[k]++;
			d->health_dirty = true;
		}
	}
}

static void publish_health(struct daemon *d, int64_t now)
{
	char topic[PUBLISH_TOPIC_SIZE];
	const char *missing[HEALTH_ISSUES_SERIES_MAX + 1];
	char names[HEALTH_ISSUES_SERIES_MAX + 1][PROVIDER_ID_MAX + SERIES_ID_MAX + 2];
	struct health_check check;
	size_t n = 0;
	bool healthy;

	sync_token_stats(d, now);
	health_set_series_tracked(&d->health, d->n_tracked);
	health_set_broker(&d->health, mqtt_connected(d->mqtt));
	FOR_EACH_SERIES(d, s)
	{
		if(!s->tracked || !s->missing_now)
			continue;
		if(n < HEALTH_ISSUES_SERIES_MAX + 1) {
			series_name(s, names[n], sizeof(names[n]));
			missing[n] = names[n];
			n++;
		}
	}
	memset(&check, 0, sizeof(check));
	check.failure_threshold = d->cfg->failure_threshold;
	check.missing_now = missing;
	check.n_missing = n;
	if(health_json(&d->health, now, &check, &d->buf, &healthy))
		return;
	store_meta_put(d->store, "health", d->buf.p, d->buf.len);
	if(!publish_topic_health(topic, sizeof(topic), d->cfg->topic_prefix))
		mqtt_publish(d->mqtt, topic, d->buf.p, d->buf.len, 1, true, 0);
	discovery_publish_health(d->disc, d->buf.p, d->buf.len);
	d->health_dirty = false;
	d->last_health_ms = rtime_now_ms();
	d->next_health_ms = d->last_health_ms + (int64_t)d->cfg->health_interval_s * 1000;
}

/* --- replies ------------------------------------------------------------- */

static void send_reply(struct daemon *d, const struct request *req, const char *topic, const void *corr,
                       size_t corr_len, int qos, const char *status, const struct slot_list *slots,
                       const char *unit, int64_t fetched_at, const struct store_range *missing,
                       size_t n_missing, const struct rp_err *error)
{
	char *json = NULL;
	size_t len = 0;

	if(!topic)
		return;
	if(request_reply_json(req, status, slots, NULL, unit, fetched_at, missing, n_missing, error, &json,
	                      &len))
		return;
	if(mqtt_reply(d->mqtt, topic, corr, corr_len, json, len, qos, 0))
		log_debug("reply_failed", "series=%s", req->ref_ok ? req->ref.id : "-");
	free(json);
}

/* True when every gap of the lookup lies after the last slot known and the
 * series has been fetched: the upstream has not published that part yet,
 * which is no failure (docs/topics.md: "ok", the rest under "missing"). */
static bool missing_only_unpublished(const struct series *s, const struct store_lookup *l)
{
	size_t i;

	if(!s->last_success || !s->complete_until)
		return false;
	for(i = 0; i < l->n_missing; i++)
		if(l->missing[i].from < s->complete_until)
			return false;
	return true;
}

/* Answers a request from the store as things stand. timed_out: the
 * bounded wait ran out while a fetch was still needed. looked_up: d->lookup
 * already holds this request's range (the hit path saves a second scan). */
static void answer(struct daemon *d, struct series *s, const struct request *req, const char *topic,
                   const void *corr, size_t corr_len, int qos, bool timed_out, bool looked_up, int64_t now)
{
	struct store_lookup *l = &d->lookup;
	struct rp_err err;
	const char *status;
	const char *unit;
	int rc = 0;

	rp_err_clear(&err);
	if(!looked_up)
		rc = store_lookup(d->store, &req->ref, req->from, req->to, l);
	if(rc) {
		rp_err_set(&err, rc, "the store could not be read: %s", rp_strerror(rc));
		send_reply(d, req, topic, corr, corr_len, qos, REQUEST_STATUS_ERROR, NULL, "", 0, NULL, 0,
		           &err);
		return;
	}
	unit = l->slots.unit[0] ? l->slots.unit : s->p->unit;
	if(!l->slots.n && s->not_found_until > now) {
		rp_err_set(&err, RP_ENOTFOUND, "the upstream does not know %s/%s", s->ref.provider,
		           s->ref.id);
		status = REQUEST_STATUS_ERROR;
	} else if(!l->slots.n && (s->failures > 0 || timed_out)) {
		struct health_provider hp;
		const char *why = "no answer in time";
		int code = RP_EUNAVAILABLE;
		if(s->failures > 0 && !health_provider_get(&d->health, s->ref.provider, &hp) &&
		   hp.last_error[0]) {
			why = hp.last_error;
			/* A refusal the user must act on keeps its own code. */
			if(s->last_code == RP_EINVAL || s->last_code == RP_EAUTH ||
			   s->last_code == RP_EFORBIDDEN)
				code = s->last_code;
		}
		if(code == RP_EUNAVAILABLE)
			rp_err_set(&err, code, "%s is unavailable and nothing is held for this range: %s",
			           s->ref.provider, why);
		else
			rp_err_set(&err, code, "%s", why); /* the refusal says it all; the upstream is up */
		status = REQUEST_STATUS_ERROR;
	} else if(s->failures > 0 || (timed_out && l->n_missing) ||
	          (s->p->revisable && l->slots.n &&
	           now - l->newest_fetched_at > d->cfg->forecast_ttl_s + d->cfg->stale_grace_s)) {
		status = REQUEST_STATUS_STALE;
		health_count(&d->health, HEALTH_STALE_SERVED, 1);
	} else if(l->n_missing && !missing_only_unpublished(s, l))
		status = REQUEST_STATUS_PARTIAL;
	else
		status = REQUEST_STATUS_OK;
	send_reply(d, req, topic, corr, corr_len, qos, status, &l->slots, unit, l->fetched_at, l->missing,
	           l->n_missing, err.code ? &err : NULL);
}

static void pending_free(struct pending *p)
{
	free(p->reply_topic);
	free(p->corr);
	free(p);
}

static void answer_pending(struct daemon *d, struct series *s, struct pending *p, bool timed_out,
                           bool looked_up, int64_t now)
{
	answer(d, s, &p->req, p->reply_topic, p->corr, p->corr_len, p->qos, timed_out, looked_up, now);
	pending_free(p);
	d->n_pending--;
}

/* --- fetching ------------------------------------------------------------ */

static void start_fetch(struct daemon *d, struct series *s, int64_t from, int64_t to, bool scheduled,
                        int64_t fresh_after, bool retry)
{
	struct fetch_job job;
	int rc;

	if(s->in_flight || from >= to)
		return;
	memset(&job, 0, sizeof(job));
	job.ref = s->ref;
	job.provider = s->p;
	job.from = from;
	job.to = to;
	job.fresh_after = fresh_after;
	job.scheduled = scheduled;
	job.retry = retry;
	job.seq = ++d->flight_seq;
	rc = fetcher_submit(d->fetcher, &job);
	if(rc) {
		log_warn("fetch_not_queued", "series=%s/%s error=\"%s\"", s->ref.provider, s->ref.id,
		         rp_strerror(rc));
		return;
	}
	s->in_flight = true;
	s->flight_seq = job.seq;
}

static void schedule_next(struct daemon *d, struct series *s, int64_t now)
{
	struct sched_input in;
	int64_t real_now = rtime_now();

	memset(&in, 0, sizeof(in));
	in.provider = s->p;
	in.now = now;
	in.complete_until = s->complete_until;
	in.last_success = s->last_success;
	in.failures = s->failures;
	in.retry_after = s->retry_after;
	in.forecast_ttl_s = d->cfg->forecast_ttl_s;
	in.seed = s->seed;
	s->next_poll = sched_next_poll(&in);
	/* Scheduled from another process's poll start, the answer may lie
	 * in the past: never poll again at once because of that. */
	if(s->next_poll <= real_now)
		s->next_poll = real_now + 1 + (int64_t)(s->seed % 5);
}

static void refresh_complete_until(struct daemon *d, struct series *s)
{
	int64_t cu = 0;

	if(store_complete_until(d->store, &s->ref, &cu) == 0 && cu != s->complete_until) {
		s->complete_until = cu;
		s->doc_dirty = true;
		s->current_dirty = true;
	}
}

/* True when there are gaps from the g0-th on and each lies inside r: a
 * range another fetch just asked for. A range nobody asked for yet is
 * not blocked. */
static bool gaps_within(const struct store_lookup *l, size_t g0, const struct store_range *r)
{
	size_t i;

	if(g0 >= l->n_missing)
		return false;
	for(i = g0; i < l->n_missing; i++)
		if(l->missing[i].from < r->from || l->missing[i].to > r->to)
			return false;
	return true;
}

/* Decides, for one request, between answering now and waiting for a
 * fetch. Returns true when the request was answered (or needs nothing). */
static bool serve_or_wait(struct daemon *d, struct series *s, struct pending *p, int64_t now, bool counted)
{
	struct store_lookup *l = &d->lookup;
	const struct config *cfg = d->cfg;
	int64_t age;
	size_t i, g0 = 0; /* the first gap a fetch could fill */
	int64_t earliest;
	bool future_only = true;

	if(store_lookup(d->store, &p->req.ref, p->req.from, p->req.to, l)) {
		answer_pending(d, s, p, false, false, now);
		return true;
	}
	/* Gaps before what the upstream still answers for (a forecast's past,
	 * Tibber before today, AEMO's rolling day) cannot be filled: they
	 * neither make a request wait nor cost a call. */
	earliest = provider_earliest(s->p, now);
	while(g0 < l->n_missing && l->missing[g0].to <= earliest)
		g0++;
	if(g0 == l->n_missing && l->slots.n) {
		if(!s->p->revisable)
			goto hit;
		age = now - l->newest_fetched_at;
		if(age <= cfg->forecast_ttl_s)
			goto hit;
		if(age <= cfg->forecast_ttl_s + cfg->stale_grace_s) {
			/* Stale-while-revalidate: answer now, one refresh. */
			if(!s->in_flight && s->retry_at <= now)
				start_fetch(d, s, p->req.from, p->req.to, false, now - cfg->forecast_ttl_s,
				            false);
			goto hit;
		}
	}
	if(g0 == l->n_missing && l->n_missing)
		goto hit; /* only the unfillable past is missing: nothing to fetch */
	if(s->not_found_until > now || s->retry_at > now)
		goto hit; /* negative cache or backoff: the answer says why */
	for(i = g0; i < l->n_missing; i++)
		if(l->missing[i].from < s->complete_until)
			future_only = false;
	if(l->slots.n && !s->p->revisable && future_only && s->last_success && !s->in_flight)
		goto hit; /* not published yet: the scheduler polls for it */
	if(!s->in_flight && s->gap_block_until > now && gaps_within(l, g0, &s->gap_block_range))
		goto hit;

	if(counted)
		health_count(&d->health, s->in_flight ? HEALTH_COALESCED : HEALTH_MISSES, 1);
	if(!s->in_flight) {
		int64_t from = g0 < l->n_missing ? l->missing[g0].from : p->req.from;
		int64_t to = g0 < l->n_missing ? l->missing[l->n_missing - 1].to : p->req.to;
		start_fetch(d, s, from, to, false, s->p->revisable ? now - cfg->forecast_ttl_s : 0,
		            s->failures > 0);
		if(!s->in_flight)
			goto hit;
	}
	p->next = s->waiters;
	s->waiters = p;
	s->n_waiters++;
	return false;
hit:
	if(counted)
		health_count(&d->health, HEALTH_HITS, 1);
	answer_pending(d, s, p, false, true, now);
	return true;
}

static void untrack(struct daemon *d, struct series *s, int64_t now, const char *event);

static void finish_flight(struct daemon *d, struct fetch_done *done)
{
	struct series *s = series_find(d, &done->job.ref);
	int64_t now = rtime_now();
	struct pending *list, *p;

	if(done->upstream_calls)
		health_count(&d->health, HEALTH_UPSTREAM_CALLS, (uint64_t)done->upstream_calls);
	if(!s || done->job.seq != s->flight_seq)
		return;
	s->in_flight = false;
	if(done->lease_busy) {
		/* Another process fetches this series: look at the store again
		 * shortly; its answer will be there. */
		s->recheck_at_ms = rtime_now_ms() + LEASE_RECHECK_MS;
		/* Poll again shortly: it ends skipped, aligned on theirs. */
		if(done->job.scheduled)
			s->next_poll = now + LEASE_POLL_RETRY_S;
		return;
	}
	if(!done->skipped)
		health_fetch_done(&d->health, s->ref.provider, now, done->code, done->err.msg);
	d->health_dirty = true;
	if(done->code == 0) {
		bool had_failures = s->failures > 0;
		s->failures = 0;
		s->retry_after = -1;
		s->retry_at = 0;
		s->last_success = now;
		if(had_failures)
			s->doc_dirty = true; /* the stale flag goes */
		/* What a fetch just now did not bring, the upstream does not
		 * have yet: requests for those gaps wait for the scheduler. */
		if(!done->job.scheduled) {
			s->gap_block_until = now + GAP_RETRY_S;
			s->gap_block_range.from = done->job.from;
			s->gap_block_range.to = done->job.to;
		}
		log_info("fetch_done", "series=%s/%s slots=%zu added=%zu changed=%zu calls=%d%s",
		         s->ref.provider, s->ref.id, done->slots, done->written.added, done->written.changed,
		         done->upstream_calls, done->skipped ? " skipped=1" : "");
	} else {
		/* Unknown upstream: only when nothing was ever held, so a
		 * transient 404 (a page lost mid-paging) is stale-if-error,
		 * not the end of a series. */
		if(done->code == RP_ENOTFOUND && s->complete_until == 0) {
			s->not_found_until = now + d->cfg->negative_cache_s;
			if(!s->configured && s->tracked)
				untrack(d, s, now, "series_not_found"); /* clears its topics and HA device */
		}
		if(!s->failures)
			s->doc_dirty = true; /* published as stale */
		s->failures++;
		s->last_code = done->code;
		if(done->code == RP_EFULL)
			d->next_gc = 0; /* the store is at its bound or the disk is full: evict now */
		s->retry_after = done->err.retry_after;
		log_warn("fetch_failed", "series=%s/%s code=%s failures=%d calls=%d msg=\"%s\"",
		         s->ref.provider, s->ref.id, rp_code_name(done->code), s->failures,
		         done->upstream_calls, done->err.msg);
	}
	refresh_complete_until(d, s);
	/* A poll (ours, or another process's that made ours unnecessary)
	 * schedules the next one from its start, so processes sharing a store
	 * agree on the instant and the lease makes it one upstream call. */
	schedule_next(d, s,
	              done->code == 0 && done->job.scheduled && done->polled_at ? done->polled_at : now);
	if(s->failures) {
		/* Requests may make the series ask again once the backoff has
		 * passed, not only at the next scheduled poll, which can be
		 * hours away (a daily tariff before its publication time). */
		int64_t wait = sched_backoff(s->failures, s->seed, now);
		if(s->retry_after > wait)
			wait = s->retry_after > SCHED_RETRY_AFTER_MAX ? SCHED_RETRY_AFTER_MAX
			                                              : s->retry_after;
		s->retry_at = now + wait;
		/* ... and the series asks again by itself then, for what
		 * failed: otherwise stale data and degraded health would last
		 * until that next scheduled poll with nobody asking. */
		if(s->retry_at < s->next_poll)
			s->next_poll = s->retry_at;
		s->failed_range.from = done->job.from;
		s->failed_range.to = done->job.to;
	}

	list = s->waiters;
	s->waiters = NULL;
	s->n_waiters = 0;
	while((p = list)) {
		list = p->next;
		if(done->code == 0 && !p->refetched) {
			p->refetched = true;
			if(!serve_or_wait(d, s, p, now, false))
				continue;
		} else
			answer_pending(d, s, p, false, false, now);
	}
}

static void on_fetch_done(struct fetch_done *done, void *arg)
{
	struct daemon *d = arg;

	done->next = NULL;
	pthread_mutex_lock(&d->done_lock);
	if(d->done_tail)
		d->done_tail->next = done;
	else
		d->done_head = done;
	d->done_tail = done;
	pthread_mutex_unlock(&d->done_lock);
	queue_wake(d->inbox);
}

static void finish_account(struct daemon *d, struct fetch_done *done);

static void drain_done(struct daemon *d)
{
	struct fetch_done *list, *done;

	pthread_mutex_lock(&d->done_lock);
	list = d->done_head;
	d->done_head = d->done_tail = NULL;
	pthread_mutex_unlock(&d->done_lock);
	while((done = list)) {
		list = done->next;
		if(done->job.account)
			finish_account(d, done);
		else
			finish_flight(d, done);
		free(done);
	}
}

/* --- requests ------------------------------------------------------------ */

static void persist_tracking(struct daemon *d, struct series *s, int64_t now)
{
	struct store_series rec;

	if(store_series_get(d->store, &s->ref, &rec)) {
		memset(&rec, 0, sizeof(rec));
		rec.ref = s->ref;
		snprintf(rec.unit, sizeof(rec.unit), "%s", s->p->unit);
		rec.resolution = s->p->resolution;
		rec.zone = s->p->zone;
		rec.created_at = now;
	} else if((rec.tracked != 0) == s->tracked && rec.last_requested == s->last_requested) {
		/* Unchanged, e.g. every series a warm start loads: a durable
		 * write each made a restart with 1,000 series take seconds. */
		s->demand_persisted = now;
		return;
	}
	rec.tracked = s->tracked;
	rec.last_requested = s->last_requested;
	if(store_series_put(d->store, &rec) == 0)
		s->demand_persisted = now;
}

static void track(struct daemon *d, struct series *s, int64_t now)
{
	if(s->tracked)
		return;
	s->tracked = true;
	d->n_tracked++;
	s->doc_dirty = true;
	s->current_dirty = true;
	s->next_current = now;
	refresh_complete_until(d, s);
	schedule_next(d, s, now);
	persist_tracking(d, s, now);
	d->health_dirty = true;
}

/* The series a request names, registered as demand. NULL with err set when
 * it may not be tracked (negative cache, too many new series). */
static struct series *demand(struct daemon *d, const struct series_ref *ref, int64_t now, struct rp_err *err)
{
	const struct provider *p = provider_find(ref->provider);
	struct series *s = series_find(d, ref);

	if(!p) {
		rp_err_set(err, RP_EINVAL, "unknown provider %s", ref->provider);
		return NULL;
	}
	if(!s) {
		if(now - d->new_window_start >= 60) {
			d->new_window_start = now;
			d->new_in_window = 0;
		}
		if(d->new_in_window >= d->cfg->new_series_per_minute) {
			rp_err_set(err, RP_ELIMIT, "more than %d new series a minute; ask again later",
			           d->cfg->new_series_per_minute);
			return NULL;
		}
		s = series_add(d, ref, p);
		if(!s) {
			rp_err_set(err, RP_ELIMIT, "ratepool tracks as many series as it may");
			return NULL;
		}
		d->new_in_window++;
	}
	if(s->not_found_until > now) {
		rp_err_set(err, RP_ENOTFOUND, "the upstream does not know %s/%s (remembered for a while)",
		           ref->provider, ref->id);
		return NULL;
	}
	s->last_requested = now;
	track(d, s, now);
	if(now - s->demand_persisted >= DEMAND_PERSIST_S)
		persist_tracking(d, s, now);
	return s;
}

/* Sends the error reply to a request that goes no further, and frees it. */
static void refuse(struct daemon *d, struct pending *p, const struct rp_err *err)
{
	send_reply(d, &p->req, p->reply_topic, p->corr, p->corr_len, p->qos, REQUEST_STATUS_ERROR, NULL, "",
	           0, NULL, 0, err);
	pending_free(p);
}

/* A valid request for a series: registers demand, then answers or waits. */
static void admit(struct daemon *d, struct pending *p, int64_t now)
{
	struct series *s;
	struct rp_err err;

	rp_err_clear(&err);
	s = demand(d, &p->req.ref, now, &err);
	if(!s) {
		refuse(d, p, &err);
		return;
	}
	if(d->n_pending >= PENDING_MAX) {
		rp_err_set(&err, RP_EBUSY, "too many requests waiting");
		refuse(d, p, &err);
		return;
	}
	d->n_pending++;
	p->refetched = false;
	serve_or_wait(d, s, p, now, true);
}

static struct account_wait *account_find(struct daemon *d, const char *alias)
{
	int i;

	for(i = 0; i < d->cfg->account_count; i++)
		if(!strcmp(d->accounts[i].alias, alias))
			return &d->accounts[i];
	return NULL;
}

/* A request naming an Octopus account alias is answered from the shared
 * cache of the tariff that applies: the account's record (which tariff
 * when, refreshed every few hours off this thread) turns it into a request
 * for that tariff. A range crossing a tariff change is answered up to the
 * change; the reply's "to" says where. */
static void resolve_alias(struct daemon *d, struct account_wait *a, struct pending *p, int64_t now)
{
	struct octopus_tariff_span spans[4];
	struct fetch_job job;
	struct rp_err err;
	size_t n = 0;
	int rc;

	rp_err_clear(&err);
	rc = octopus_account_tariffs_cached(&d->ctx, a->alias, p->req.from, p->req.to, spans, 4, &n, &err);
	if(rc == RP_ENOENT && a->retry_at > now) {
		rp_err_set(&err, a->last_code, "%s", a->last_error);
		refuse(d, p, &err);
		return;
	}
	if(rc == RP_ENOENT && p->refetched) {
		/* The lookup just ran and the cache still has nothing fresh (an
		 * old record served while Octopus fails, or it could not be
		 * stored): answer now rather than look up again in a loop. */
		a->retry_at = now + GAP_RETRY_S;
		a->last_code = RP_EUNAVAILABLE;
		snprintf(a->last_error, sizeof(a->last_error),
		         "the Octopus account record could not be refreshed");
		rp_err_set(&err, a->last_code, "%s", a->last_error);
		refuse(d, p, &err);
		return;
	}
	if(rc == RP_ENOENT) {
		if(!a->in_flight) {
			memset(&job, 0, sizeof(job));
			job.provider = provider_find("octopus");
			job.account = true;
			job.seq = ++d->flight_seq;
			if(series_ref_set(&job.ref, "octopus", a->alias) ||
			   fetcher_submit(d->fetcher, &job)) {
				rp_err_set(&err, RP_EBUSY, "the account lookup could not be queued");
				refuse(d, p, &err);
				return;
			}
			a->in_flight = true;
			a->seq = job.seq;
		}
		if(d->n_pending >= PENDING_MAX) {
			rp_err_set(&err, RP_EBUSY, "too many requests waiting");
			refuse(d, p, &err);
			return;
		}
		d->n_pending++;
		p->refetched = true; /* once the lookup ends, it is not repeated for this request */
		p->next = a->waiters;
		a->waiters = p;
		return;
	}
	if(!rc && !n)
		rc = rp_err_set(&err, RP_ENOTFOUND,
		                "account '%s' has no electricity import tariff in that range", a->alias);
	if(!rc && (!series_id_valid(spans[0].tariff_code) || spans[0].from >= spans[0].to))
		rc = rp_err_set(&err, RP_EGARBAGE, "account '%s' names an unusable tariff", a->alias);
	if(rc) {
		refuse(d, p, &err);
		return;
	}
	snprintf(p->req.ref.id, sizeof(p->req.ref.id), "%s", spans[0].tariff_code);
	p->req.from = spans[0].from;
	p->req.to = spans[0].to;
	admit(d, p, now);
}

/* The account record was refreshed (or could not be): the requests that
 * waited for it go on, or get its error. */
static void finish_account(struct daemon *d, struct fetch_done *done)
{
	struct account_wait *a = account_find(d, done->job.ref.id);
	int64_t now = rtime_now();
	struct pending *list, *p;

	if(done->upstream_calls)
		health_count(&d->health, HEALTH_UPSTREAM_CALLS, (uint64_t)done->upstream_calls);
	if(!a || done->job.seq != a->seq)
		return;
	a->in_flight = false;
	if(done->code) {
		a->retry_at = now + GAP_RETRY_S;
		a->last_code = done->code;
		snprintf(a->last_error, sizeof(a->last_error), "%s", done->err.msg);
		log_warn("account_failed", "alias=%s code=%s msg=\"%s\"", a->alias, rp_code_name(done->code),
		         done->err.msg);
	}
	list = a->waiters;
	a->waiters = NULL;
	while((p = list)) {
		list = p->next;
		d->n_pending--;
		resolve_alias(d, a, p, now);
	}
}

/* Account lookups that did not answer within the bounded wait. */
static void expire_account_waiters(struct daemon *d, int64_t now_ms, bool all)
{
	struct rp_err err;
	int i;

	rp_err_clear(&err);
	rp_err_set(&err, RP_EUNAVAILABLE, "the Octopus account lookup did not answer in time");
	for(i = 0; i < d->cfg->account_count; i++) {
		struct pending **pp = &d->accounts[i].waiters;
		while(*pp) {
			struct pending *p = *pp;
			if(all || p->deadline_ms <= now_ms) {
				*pp = p->next;
				d->n_pending--;
				refuse(d, p, &err);
			} else
				pp = &p->next;
		}
	}
}

static void handle_message(struct daemon *d, struct mqtt_msg *m)
{
	struct pending *p = NULL;
	struct account_wait *a;
	struct rp_err err;
	const char *topic = NULL;
	int64_t now = rtime_now();
	int rc;

	p = calloc(1, sizeof(*p));
	if(!p)
		return;
	rp_err_clear(&err);
	health_count(&d->health, HEALTH_REQUESTS, 1);
	rc = request_parse(d->cfg->topic_prefix, m->topic, m->payload, m->len, m->response_topic != NULL, now,
	                   &d->limits, &p->req, &err);
	if(m->response_topic) {
		if(request_reply_topic_ok(d->cfg->topic_prefix, d->cfg->discovery_prefix, m->response_topic,
		                          m->response_topic_len, MQTT_TOPIC_MAX))
			topic = m->response_topic;
	} else if(p->req.reply == REQUEST_REPLY_TO)
		topic = p->req.reply_to;
	p->qos = m->qos > 1 ? 1 : m->qos;
	if(topic) {
		p->reply_topic = strdup(topic);
		if(m->correlation && m->correlation_len) {
			p->corr = malloc(m->correlation_len);
			if(p->corr) {
				memcpy(p->corr, m->correlation, m->correlation_len);
				p->corr_len = m->correlation_len;
			}
		}
	}
	if(rc) {
		refuse(d, p, &err);
		return;
	}
	p->deadline_ms = rtime_now_ms() + d->cfg->request_wait_ms;
	if(d->draining) {
		rp_err_set(&err, RP_EBUSY, "ratepool is shutting down");
		refuse(d, p, &err);
		return;
	}
	if(!strcmp(p->req.ref.provider, "octopus") && (a = account_find(d, p->req.ref.id))) {
		resolve_alias(d, a, p, now);
		return;
	}
	admit(d, p, now);
}

/* --- timers -------------------------------------------------------------- */

static void expire_waiters(struct daemon *d, struct series *s, int64_t now, int64_t now_ms, bool all)
{
	struct pending **pp = &s->waiters;

	while(*pp) {
		struct pending *p = *pp;
		if(all || p->deadline_ms <= now_ms) {
			*pp = p->next;
			s->n_waiters--;
			answer_pending(d, s, p, true, false, now);
		} else
			pp = &p->next;
	}
}

/* Another process held the lease: answer the waiters the store now
 * covers, and fetch (under the lease) for the rest. */
static void recheck(struct daemon *d, struct series *s, int64_t now)
{
	struct pending *list = s->waiters, *p;

	s->recheck_at_ms = 0;
	refresh_complete_until(d, s);
	s->waiters = NULL;
	s->n_waiters = 0;
	while((p = list)) {
		list = p->next;
		serve_or_wait(d, s, p, now, false);
	}
}

/* Stops refreshing and publishing a series; event names why
 * ("series_idle", "series_not_found"). */
static void untrack(struct daemon *d, struct series *s, int64_t now, const char *event)
{
	s->tracked = false;
	d->n_tracked--;
	publish_clear(d, s);
	persist_tracking(d, s, now);
	log_info(event, "series=%s/%s", s->ref.provider, s->ref.id);
	d->health_dirty = true;
}

static void run_timers(struct daemon *d)
{
	int64_t now = rtime_now();
	int64_t now_ms = rtime_now_ms();
	bool connected = mqtt_connected(d->mqtt);
	bool watch = now >= d->next_watch;
	uint64_t gen = mqtt_connect_generation(d->mqtt);
	bool republish = false;

	if(connected != d->was_connected || atomic_exchange(&d->connection_changed, false)) {
		d->was_connected = connected;
		d->health_dirty = true;
	}
	if(connected && gen != d->published_generation) {
		d->published_generation = gen;
		republish = true;
		discovery_reset(d->disc);
	}
	if(watch)
		d->next_watch = now + WATCH_INTERVAL_S;
	expire_account_waiters(d, now_ms, false);
	if(connected)
		discovery_tick(d->disc, now_ms);

	FOR_EACH_SERIES(d, s)
	{
		if(s->waiters)
			expire_waiters(d, s, now, now_ms, false);
		if(s->recheck_at_ms && s->recheck_at_ms <= now_ms)
			recheck(d, s, now);
		if(!s->tracked)
			continue;
		if(!s->configured && d->cfg->series_idle_s > 0 &&
		   now - s->last_requested > d->cfg->series_idle_s && !s->in_flight && !s->waiters) {
			untrack(d, s, now, "series_idle");
			continue;
		}
		if(watch && !s->in_flight) {
			int64_t before = s->complete_until;
			refresh_complete_until(d, s);
			if(before != s->complete_until)
				schedule_next(d, s, now);
		}
		if(republish) {
			s->doc_dirty = true;
			s->current_dirty = true;
		}
		if(!s->in_flight && !d->draining && s->next_poll <= now) {
			struct store_range r;
			/* While failing, a poll asks the upstream itself: "another
			 * poll succeeded a moment ago" may predate the failure. */
			bool retry = s->failures > 0;
			/* The usual poll first (tomorrow's prices must keep coming
			 * whatever else failed); the range that failed when there
			 * is nothing else to ask for. */
			sched_poll_range(s->p, now, s->complete_until, 0, &r);
			if(r.from >= r.to && s->failures && s->failed_range.from < s->failed_range.to) {
				r = s->failed_range;
				retry = true;
			}
			if(r.from < r.to)
				start_fetch(d, s, r.from, r.to, true,
				            s->p->revisable ? now - d->cfg->forecast_ttl_s : 0, retry);
			if(!s->in_flight)
				schedule_next(d, s, now);
		}
		if(!connected)
			continue;
		if(s->doc_dirty)
			publish_doc(d, s, now);
		if(s->current_dirty || s->next_current <= now)
			publish_current_price(d, s, now);
		if(discovery_due(d->disc, &s->ref, now))
			publish_discovery(d, s, now);
	}
	if(d->health_dirty ? now_ms - d->last_health_ms >= HEALTH_MIN_GAP_MS : now_ms >= d->next_health_ms)
		publish_health(d, now);
	if(now >= d->next_gc) {
		struct store_gc_result gc;
		d->next_gc = now + GC_INTERVAL_S;
		if(store_gc(d->store, now, 0, &gc) == 0 && gc.groups_evicted)
			log_info("gc", "groups=%zu slots=%zu bytes_before=%" PRIu64 " bytes_after=%" PRIu64,
			         gc.groups_evicted, gc.slots_evicted, gc.bytes_before, gc.bytes_after);
		store_reader_check(d->store, NULL);
	}
}

/* --- startup and shutdown ------------------------------------------------ */

struct loaded {
	struct store_series *v;
	size_t n, cap;
};

static int collect_series(const struct store_series *rec, void *arg)
{
	struct loaded *l = arg;

	if(!rec->tracked)
		return 0;
	if(l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_series *v = realloc(l->v, cap * sizeof(*v));
		if(!v)
			return RP_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *rec;
	return 0;
}

/* Tracks the configured series and those tracked before a restart, with
 * what the store holds, so a warm restart republishes without fetching. */
static int load_series(struct daemon *d, int64_t now)
{
	struct loaded l = {0};
	size_t i;
	int k, rc;

	rc = store_series_each(d->store, collect_series, &l);
	for(i = 0; !rc && i < l.n; i++) {
		const struct provider *p = provider_find(l.v[i].ref.provider);
		struct series *s;
		if(!p || series_find(d, &l.v[i].ref))
			continue;
		s = series_add(d, &l.v[i].ref, p);
		if(!s)
			break;
		s->last_requested = l.v[i].last_requested ? l.v[i].last_requested : now;
		s->demand_persisted = now;
		if(store_lookup(d->store, &s->ref, now - 2 * 86400, now + 2 * 86400, &d->lookup) == 0)
			s->last_success = d->lookup.newest_fetched_at;
		track(d, s, now);
	}
	free(l.v);
	for(k = 0; k < d->cfg->series_count; k++) {
		const struct provider *p = provider_find(d->cfg->series[k].provider);
		struct series *s = series_find(d, &d->cfg->series[k]);
		if(!p) {
			log_error("config_series_unknown", "series=%s/%s", d->cfg->series[k].provider,
			          d->cfg->series[k].id);
			continue;
		}
		if(!s)
			s = series_add(d, &d->cfg->series[k], p);
		if(!s)
			return RP_ENOMEM;
		s->configured = true;
		s->last_requested = now;
		track(d, s, now);
	}
	return rc;
}

static void on_connect(void *arg, bool reconnect)
{
	struct daemon *d = arg;

	atomic_store(&d->connection_changed, true);
	queue_wake(d->inbox);
}

static void on_disconnect(void *arg)
{
	on_connect(arg, false);
}

/* SIGTERM: stop taking requests, let the fetches in hand finish within the
 * grace time, answer every waiter, then go. */
static void drain(struct daemon *d)
{
	int64_t deadline = rtime_now_ms() + d->cfg->shutdown_grace_ms;
	struct mqtt_msg *m;

	d->draining = true;
	while((m = queue_pop(d->inbox))) {
		if(!discovery_handle(d->disc, m, rtime_now_ms()))
			handle_message(d, m);
		mqtt_msg_free(m);
	}
	while(d->n_pending && rtime_now_ms() < deadline) {
		queue_wait(d->inbox, TICK_MS);
		drain_done(d);
		/* Requests arriving meanwhile are refused (busy) at once
		 * rather than left to time out unanswered. */
		while((m = queue_pop(d->inbox))) {
			if(!discovery_handle(d->disc, m, rtime_now_ms()))
				handle_message(d, m);
			mqtt_msg_free(m);
		}
		run_timers(d);
	}
	FOR_EACH_SERIES(d, s)
	{
		if(s->waiters)
			expire_waiters(d, s, rtime_now(), rtime_now_ms(), true);
	}
	expire_account_waiters(d, rtime_now_ms(), true);
}

static void install_signals(struct queue *q)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	signal_queue = q;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int open_store(const struct config *cfg, struct store **out)
{
	struct store_options opt;
	struct rp_err err;
	int rc;

	rp_err_clear(&err);
	memset(&opt, 0, sizeof(opt));
	opt.path = cfg->store;
	opt.max_bytes = cfg->store_max_bytes;
	rc = store_open(out, &opt, &err);
	if(rc)
		log_error("store_open_failed", "path=\"%s\" code=%s msg=\"%s\"", cfg->store, rp_code_name(rc),
		          err.msg);
	return rc;
}

static void free_series(struct daemon *d)
{
	FOR_EACH_SERIES(d, s)
	{
		struct pending *p;
		while((p = s->waiters)) {
			s->waiters = p->next;
			pending_free(p);
		}
		free(s);
	}
	memset(d->buckets, 0, sizeof(d->buckets));
	for(int i = 0; i < CONFIG_MAX_ACCOUNTS; i++) {
		struct pending *p;
		while((p = d->accounts[i].waiters)) {
			d->accounts[i].waiters = p->next;
			pending_free(p);
		}
	}
}

int daemon_run(const struct config *cfg)
{
	struct daemon *d;
	struct mqtt_options mo;
	struct mqtt_callbacks cb;
	struct rp_err err;
	char host[64] = "host";
	char filter[PUBLISH_TOPIC_SIZE];
	int64_t now, next_timers_ms = 0;
	int rc;

	d = calloc(1, sizeof(*d));
	if(!d)
		return RP_ENOMEM;
	rp_err_clear(&err);
	d->cfg = cfg;
	pthread_mutex_init(&d->done_lock, NULL);
	store_lookup_init(&d->lookup);
	publish_buf_init(&d->buf, 0);
	health_init(&d->health, rtime_now(), RATEPOOL_VERSION);
	gethostname(host, sizeof(host) - 1);
	snprintf(d->owner, sizeof(d->owner), "%s:%ld:%" PRId64, host, (long)getpid(), rtime_now_ms());
	for(int i = 0; i < cfg->account_count && i < CONFIG_MAX_ACCOUNTS; i++)
		snprintf(d->accounts[i].alias, sizeof(d->accounts[i].alias), "%s", cfg->accounts[i].alias);
	d->limits.max_range_s = cfg->request_max_range_s;
	d->limits.discovery_prefix = cfg->discovery_prefix;

	rc = open_store(cfg, &d->store);
	if(rc)
		goto out;
	rc = auth_new(&d->auth, d->store, cfg);
	if(rc)
		goto out;
	provider_retry_policy(cfg, &d->retry);
	d->ctx.cfg = cfg;
	d->ctx.auth = d->auth;
	d->ctx.store = d->store;
	d->ctx.retry = &d->retry;
	rc = queue_new(&d->inbox, INBOX_CAPACITY);
	if(rc)
		goto out;
	install_signals(d->inbox);

	now = rtime_now();
	rc = load_series(d, now);
	if(rc)
		goto out;

	/* A lease outlives a dead process by this long; scaled so that an
	 * accelerated test clock does not expire it mid-fetch. */
	rc = fetcher_new(&d->fetcher, FETCH_THREADS, d->store, &d->ctx, d->owner,
	                 (int)((cfg->http_timeout_ms / 1000 + LEASE_RETRY_AFTER_S + 10) *
	                       cfg->retry_max_attempts / rtime_real_seconds(1.0)),
	                 on_fetch_done, d);
	if(rc)
		goto out;

	mqtt_options_from_config(&mo, cfg);
	/* A fetch that ends answers all its waiters at once, faster than paho
	 * sends: with the default 2048 a herd of 10,000 lost most replies
	 * (RP_EBUSY). Room for a full inbox of requests answered in one go. */
	mo.max_buffered = INBOX_CAPACITY;
	memset(&cb, 0, sizeof(cb));
	cb.on_connect = on_connect;
	cb.on_disconnect = on_disconnect;
	cb.arg = d;
	rc = mqtt_new(&d->mqtt, &mo, &cb, d->inbox, &err);
	if(rc) {
		log_error("mqtt_failed", "msg=\"%s\"", err.msg);
		goto out;
	}
	if(publish_topic_request_filter(filter, sizeof(filter), cfg->topic_prefix) == 0)
		rc = mqtt_subscribe_add(d->mqtt, filter, 1, true);
	if(rc)
		goto out;
	rc = discovery_new(&d->disc, cfg, d->mqtt, &err);
	if(!rc)
		rc = discovery_subscribe(d->disc);
	if(rc) {
		log_error("discovery_failed", "code=%s msg=\"%s\"", rp_code_name(rc), err.msg);
		goto out;
	}
	rc = mqtt_start(d->mqtt, &err);
	if(rc) {
		log_error("mqtt_failed", "msg=\"%s\"", err.msg);
		goto out;
	}
	log_info("started", "version=%s store=\"%s\" broker=\"%s\" series=%zu", RATEPOOL_VERSION, cfg->store,
	         cfg->mqtt_url, d->n_tracked);

	while(!stop_requested) {
		struct mqtt_msg *m;
		int budget = 4096;
		int64_t now_ms;

		queue_wait(d->inbox, TICK_MS);
		if(reopen_requested) {
			reopen_requested = 0;
			log_reopen();
		}
		drain_done(d);
		while(budget-- > 0 && (m = queue_pop(d->inbox))) {
			/* HA's birth message is not a request. */
			if(!discovery_handle(d->disc, m, rtime_now_ms()))
				handle_message(d, m);
			mqtt_msg_free(m);
		}
		/* run_timers walks every bucket of the series table: once per
		 * tick, not once per wake-up (under load, every request). */
		now_ms = rtime_now_ms();
		if(now_ms >= next_timers_ms) {
			run_timers(d);
			next_timers_ms = now_ms + TIMERS_MIN_GAP_MS;
		}
	}
	log_info("stopping", "pending=%zu", d->n_pending);
	drain(d);
	rc = 0;
out:
	if(d->mqtt)
		mqtt_stop(d->mqtt, true, 2000);
	fetcher_free(d->fetcher);
	drain_done(d);
	if(d->store && d->inbox && d->mqtt)
		publish_health(d, rtime_now());
	mqtt_free(d->mqtt);
	discovery_free(d->disc);
	signal_queue = NULL;
	queue_free(d->inbox, mqtt_msg_free);
	free_series(d);
	auth_free(d->auth);
	store_close(d->store);
	store_lookup_free(&d->lookup);
	publish_buf_free(&d->buf);
	health_cleanup(&d->health);
	pthread_mutex_destroy(&d->done_lock);
	free(d);
	return rc;
}
