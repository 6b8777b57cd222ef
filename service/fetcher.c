/* fetcher.c - upstream fetches on worker threads, under the store's lease. */
#include "ratepool/fetcher.h"
#include "ratepool/log.h"
#include "ratepool/octopus.h"
#include "ratepool/rtime.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCHER_THREADS_MAX 32

struct fetcher {
	struct store *store;
	const struct provider_ctx *ctx;
	char owner[128];
	int lease_ttl_s;
	fetcher_done_fn done;
	void *done_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fetch_done *head, *tail; /* jobs waiting, their results allocated at submit */
	size_t queued;
	bool stopping;
	bool stopped;

	int threads;
	pthread_t tid[FETCHER_THREADS_MAX];
};

static void lease_name(const struct series_ref *ref, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", ref->provider, ref->id);
}

static void poll_marker_key(const struct series_ref *ref, char *out, size_t n)
{
	snprintf(out, n, "polled/%s/%s", ref->provider, ref->id);
}

/* When another process polled this series successfully a moment ago, a
 * scheduled poll here would repeat its upstream call. *at: that poll's
 * start, when recent. */
static bool polled_recently_elsewhere(struct store *s, const struct series_ref *ref, int64_t now, int64_t *at)
{
	char key[128];
	char *val = NULL;
	size_t len = 0;
	bool recent = false;

	poll_marker_key(ref, key, sizeof(key));
	if(store_meta_get(s, key, &val, &len) == 0) {
		char *end = NULL;
		long long t;
		errno = 0;
		t = strtoll(val, &end, 10);
		/* Either side of now: processes on an accelerated test clock
		 * disagree by their start-up time times the speed. */
		recent = !errno && end != val && t > now - FETCHER_SHARED_POLL_S &&
		         t < now + FETCHER_SHARED_POLL_S;
		if(recent)
			*at = (int64_t)t;
	}
	free(val);
	return recent;
}

static void mark_polled(struct store *s, const struct series_ref *ref, int64_t now)
{
	char key[128];
	char val[32];
	int n;

	poll_marker_key(ref, key, sizeof(key));
	n = snprintf(val, sizeof(val), "%" PRId64, now);
	store_meta_put(s, key, val, (size_t)n);
}

/* True when the store already answers the job: covered, and for revisable
 * data fetched recently enough. *future_only: what is missing all lies at
 * or after the end of the last slot held (not published yet, most likely). */
static bool already_held(struct store *s, const struct fetch_job *job, bool *future_only)
{
	struct store_lookup l;
	int64_t cu = 0;
	bool held;
	size_t i;

	store_lookup_init(&l);
	held = store_lookup(s, &job->ref, job->from, job->to, &l) == 0 && l.n_missing == 0 && l.slots.n > 0 &&
	       (job->fresh_after == 0 || l.fetched_at >= job->fresh_after);
	*future_only = !held && l.n_missing > 0 && !l.truncated_missing &&
	               store_complete_until(s, &job->ref, &cu) == 0 && cu > 0;
	for(i = 0; *future_only && i < l.n_missing; i++)
		if(l.missing[i].from < cu)
			*future_only = false;
	store_lookup_free(&l);
	return held;
}

static void run_job(struct fetcher *f, const struct fetch_job *job, struct fetch_done *d)
{
	struct provider_result res;
	char lease[96];
	int64_t now = rtime_now();
	bool future_only = false;
	int rc;

	provider_result_init(&res);
	if(job->account) {
		struct octopus_tariff_span span;
		size_t n = 0;
		d->code = octopus_account_tariffs(f->ctx, job->ref.id, now, now + 1, &span, 1, &n, &d->err);
		goto out;
	}
	lease_name(&job->ref, lease, sizeof(lease));
	rc = store_lease_acquire(f->store, lease, f->owner, now, f->lease_ttl_s);
	if(rc == RP_EBUSY) {
		d->lease_busy = true;
		goto out;
	}
	if(rc) {
		/* A store that cannot take a lease still lets this process
		 * serve its clients: fetch without the lease, say why. */
		log_warn("lease_failed", "series=%s error=\"%s\"", lease, rp_strerror(rc));
	}
	/* A gap past the end of the data that a fetch of this series (here or
	 * in another process sharing the store) just failed to fill is not
	 * published yet: a request-driven fetch for it would repeat that call. */
	if(already_held(f->store, job, &future_only) ||
	   ((job->scheduled || future_only) && !job->retry &&
	    polled_recently_elsewhere(f->store, &job->ref, now, &d->polled_at))) {
		d->skipped = true;
		goto release;
	}
	d->code = provider_fetch(job->provider, f->ctx, job->ref.id, job->from, job->to, &res, &d->err);
	d->upstream_calls = res.upstream_calls;
	d->fetched_at = res.fetched_at;
	if(d->code)
		goto release;
	d->slots = res.slots.n;
	if(res.slots.n) {
		d->code = store_put_answer(f->store, &job->ref, job->provider->zone, &res.slots,
		                           res.fetched_at, res.source, &d->written);
		if(d->code) {
			rp_err_set(&d->err, d->code, "could not store the answer: %s", rp_strerror(d->code));
			goto release;
		}
	}
	mark_polled(f->store, &job->ref, now);
	d->polled_at = now;
release:
	if(!rc)
		store_lease_release(f->store, lease, f->owner);
out:
	provider_result_free(&res);
}

static void *worker(void *arg)
{
	struct fetcher *f = arg;

	for(;;) {
		struct fetch_done *d;

		pthread_mutex_lock(&f->lock);
		while(!f->head && !f->stopping)
			pthread_cond_wait(&f->cond, &f->lock);
		if(f->stopping) {
			pthread_mutex_unlock(&f->lock);
			return NULL;
		}
		d = f->head;
		f->head = d->next;
		if(!f->head)
			f->tail = NULL;
		f->queued--;
		pthread_mutex_unlock(&f->lock);

		d->next = NULL;
		run_job(f, &d->job, d);
		f->done(d, f->done_arg);
	}
}

int fetcher_new(struct fetcher **out, int threads, struct store *store, const struct provider_ctx *ctx,
                const char *owner, int lease_ttl_s, fetcher_done_fn done, void *arg)
{
	struct fetcher *f;
	int i;

	*out = NULL;
	if(threads < 1 || threads > FETCHER_THREADS_MAX || !store || !ctx || !owner || !done ||
	   lease_ttl_s < 1)
		return RP_EINVAL;
	f = calloc(1, sizeof(*f));
	if(!f)
		return RP_ENOMEM;
	f->store = store;
	f->ctx = ctx;
	snprintf(f->owner, sizeof(f->owner), "%s", owner);
	f->lease_ttl_s = lease_ttl_s;
	f->done = done;
	f->done_arg = arg;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	for(i = 0; i < threads; i++) {
		if(pthread_create(&f->tid[i], NULL, worker, f)) {
			f->threads = i;
			fetcher_free(f);
			return RP_EIO;
		}
	}
	f->threads = threads;
	*out = f;
	return 0;
}

int fetcher_submit(struct fetcher *f, const struct fetch_job *job)
{
	struct fetch_done *d;
	int rc = 0;

	/* The result is allocated now, so that a job once taken always
	 * reports back: nothing can fail to allocate after this. */
	d = calloc(1, sizeof(*d));
	if(!d)
		return RP_ENOMEM;
	rp_err_clear(&d->err);
	d->job = *job;
	pthread_mutex_lock(&f->lock);
	if(f->stopping)
		rc = RP_EINVAL;
	else if(f->queued >= FETCHER_QUEUE_MAX)
		rc = RP_EBUSY;
	else {
		if(f->tail)
			f->tail->next = d;
		else
			f->head = d;
		f->tail = d;
		f->queued++;
		pthread_cond_signal(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
	if(rc)
		free(d);
	return rc;
}

void fetcher_stop(struct fetcher *f)
{
	struct fetch_done *node;
	int i;

	pthread_mutex_lock(&f->lock);
	if(f->stopped) {
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->stopping = true;
	while((node = f->head)) {
		f->head = node->next;
		free(node);
	}
	f->tail = NULL;
	f->queued = 0;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for(i = 0; i < f->threads; i++)
		pthread_join(f->tid[i], NULL);
	f->stopped = true;
}

void fetcher_free(struct fetcher *f)
{
	if(!f)
		return;
	fetcher_stop(f);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}
