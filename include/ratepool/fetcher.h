/*
 * fetcher.h - the worker threads that talk to the upstreams.
 *
 * The event loop never waits on an upstream: it submits a fetch job and
 * gets a fetch_done back through a callback, on a worker thread, which
 * normally pushes it onto the loop's queue. A worker:
 *   1. takes the series' refresh lease in the store (so that of several
 *      ratepool processes sharing one store only one fetches a series);
 *      when another process holds it, the job ends with lease_busy and the
 *      loop looks at the store again a little later;
 *   2. looks at the store again under the lease: when the range is
 *      already held (and, for revisable data, fetched at or after
 *      job.fresh_after) another process fetched it meanwhile, so the job
 *      ends with `skipped` and no upstream call; a scheduled poll also
 *      ends skipped when another process polled the series successfully
 *      less than FETCHER_SHARED_POLL_S ago, and so does any job whose
 *      missing part lies wholly after the last slot held (data not
 *      published yet: that fetch just asked for it);
 *   3. runs provider_fetch (which sorts and validates) and writes a
 *      non-empty answer to the store as one fetch group; an empty or
 *      refused answer writes nothing, so held slots are never lost;
 *   4. releases the lease and reports.
 */
#ifndef RATEPOOL_FETCHER_H
#define RATEPOOL_FETCHER_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/series.h"
#include "ratepool/store.h"

#include <stdbool.h>
#include <stdint.h>

#define FETCHER_SHARED_POLL_S 60
#define FETCHER_QUEUE_MAX     4096

struct fetcher;

struct fetch_job {
	struct series_ref ref;
	const struct provider *provider; /* static, from provider_find */
	int64_t from;
	int64_t to;
	int64_t fresh_after; /* revisable data: held slots fetched before this are not enough */
	bool scheduled;      /* a scheduled poll (vs. a gap fill for requests) */
	bool account;        /* refresh the record of the Octopus account alias
	                        ref.id names (which tariff when), nothing else */
	bool retry;          /* asks again for a range that failed: a recent
	                        poll of the series does not make it unnecessary */
	uint64_t seq;        /* the caller's flight number, echoed */
};

struct fetch_done {
	struct fetch_job job;
	int code;           /* 0 or RP_E* */
	struct rp_err err;  /* message safe to show (no secrets) */
	int upstream_calls; /* HTTP requests made */
	bool skipped;       /* the store already held it: no upstream call */
	bool lease_busy;    /* another process holds the lease */
	size_t slots;       /* slots in the answer */
	struct store_write_result written;
	int64_t fetched_at;
	/* A poll that succeeded or was skipped because of a recent one: when
	 * that poll started (the marker shared through the store), so that
	 * processes sharing a store schedule the next poll from the same
	 * instant instead of drifting apart; 0 otherwise. */
	int64_t polled_at;
	struct fetch_done *next; /* free for whoever holds the result to link it */
};

/* Called on a worker thread with a malloc'd result the callee owns (frees
 * with free()); every job fetcher_submit took comes back exactly once
 * (the result is allocated at submit). Must not block. */
typedef void (*fetcher_done_fn)(struct fetch_done *done, void *arg);

/* Starts `threads` workers (1..32). store, ctx (and what it points to) are
 * borrowed and must outlive the fetcher. owner names this process in
 * leases (copied). lease_ttl_s bounds how long a dead process can hold a
 * series. Returns 0, RP_EINVAL, RP_ENOMEM or RP_EIO. */
int fetcher_new(struct fetcher **out, int threads, struct store *store, const struct provider_ctx *ctx,
                const char *owner, int lease_ttl_s, fetcher_done_fn done, void *arg);

/* Queues a job (copied). Never blocks. Returns 0, or RP_EBUSY when
 * FETCHER_QUEUE_MAX jobs wait, or RP_EINVAL after fetcher_stop(). */
int fetcher_submit(struct fetcher *f, const struct fetch_job *job);

/* Stops taking jobs, drops the queued ones, waits for the running ones
 * (each bounded by the HTTP timeouts) and joins the threads. */
void fetcher_stop(struct fetcher *f);

/* fetcher_stop, then frees. f may be NULL. */
void fetcher_free(struct fetcher *f);

#endif
