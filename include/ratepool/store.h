/*
 * store.h - the LMDB fetch-group store. The only module that includes
 * lmdb.h. docs/architecture.md describes each database and its key and
 * value layout.
 *
 * One struct store per process, opened before any thread starts (LMDB
 * wants one environment per process) with MDB_NOTLS so that read
 * transactions are not tied to threads. Every function here is
 * thread-safe. Several processes may open the same directory.
 *
 * Data model:
 *  - a series (provider, id) has a small integer number, a unit, a
 *    resolution, a time zone and tracking state;
 *  - every upstream answer is one fetch group (id, series, fetched_at,
 *    covered range, slot count, source) written in one write transaction;
 *  - slots are keyed by (series number, big-endian slot start), so a range
 *    lookup is one ordered cursor scan; each slot names its group. A later
 *    answer holding a slot already held moves that slot to the newer group
 *    ("touch"): slots are never duplicated, and an empty or partial answer
 *    never removes or zeroes a held slot.
 *
 * Errors: 0 or a negative RP_E* code. LMDB errors are logged once here.
 * MDB_MAP_FULL grows the map and retries (up to the size bound);
 * MDB_MAP_RESIZED (another process grew it) is adopted transparently.
 */
#ifndef RATEPOOL_STORE_H
#define RATEPOOL_STORE_H

#include "ratepool/error.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"
#include "ratepool/slot.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_MAX_MISSING    32

struct store;

struct store_options {
	const char *path;     /* directory; created (0700) when missing */
	uint64_t max_bytes;   /* GC bound on the data file; 0: 256 MiB */
	uint64_t initial_map; /* first map size; 0: 16 MiB */
};

/* Opens (creating when missing) the store at opt->path; files are 0600.
 * Runs mdb_reader_check to clear stale readers of dead processes.
 * Returns 0, RP_ESCHEMA (written by a newer or unknown version),
 * RP_ECORRUPT (not an LMDB file, damaged), RP_EIO, RP_ENOMEM; err says
 * which file and what to do (`ratepool store-reset` moves it aside). */
int store_open(struct store **out, const struct store_options *opt, struct rp_err *err);

/* Closes the environment; s may be NULL. No transaction may be open. */
void store_close(struct store *s);

/* Renames the store directory to "<path>.broken-<unix time>" so that a
 * fresh one can be created. Writes the new name to moved_to (size n) when
 * not NULL. Returns 0 or RP_EIO. */
int store_move_aside(const char *path, char *moved_to, size_t n);

/* Clears the reader slots left by processes that died without closing the
 * store (mdb_reader_check; store_open does it too). A long-running
 * process may call it now and then, e.g. with GC. cleared (may be NULL)
 * gets how many were cleared. Returns 0 or an RP code. */
int store_reader_check(struct store *s, int *cleared);

/* --- series ------------------------------------------------------------ */

struct store_series {
	struct series_ref ref;
	char unit[SLOT_UNIT_SIZE];
	int resolution;         /* seconds of the newest answer's slots */
	enum rtime_zone zone;   /* publication zone, for GC's protected days */
	int tracked;            /* 1: refreshed and published */
	int64_t last_requested; /* last time a client asked (demand) */
	int64_t created_at;
};

/* Inserts or replaces the series record (its number is kept). */
int store_series_put(struct store *s, const struct store_series *rec);
/* RP_ENOENT when unknown. */
int store_series_get(struct store *s, const struct series_ref *ref, struct store_series *out);
/* Calls fn for each series in (provider, id) order; fn returning non-zero
 * stops the walk and that value is returned. fn must not call back into
 * the store (a read transaction is open). */
int store_series_each(struct store *s, int (*fn)(const struct store_series *rec, void *arg), void *arg);
/* Removes the series record, its slots and groups. */
int store_series_delete(struct store *s, const struct series_ref *ref);

/* --- fetch groups and slots --------------------------------------------- */

struct store_write_result {
	uint64_t group_id; /* 0 when nothing was written (empty answer) */
	size_t added;      /* slots not held before */
	size_t changed;    /* held slots whose value changed */
	size_t touched;    /* held slots moved to this group unchanged */
};

/* Writes one upstream answer for `ref` as one fetch group in one write
 * transaction. `slots` must be validated and sorted. The series record is
 * created (unit, resolution from the slots, `zone`) when missing.
 * `source` is a short label (e.g. the endpoint) kept with the group.
 * An empty list writes nothing and returns 0 with group_id 0. Held slots
 * outside the answer are never touched. res may be NULL. */
int store_put_answer(struct store *s, const struct series_ref *ref, enum rtime_zone zone,
                     const struct slot_list *slots, int64_t fetched_at, const char *source,
                     struct store_write_result *res);

struct store_range {
	int64_t from;
	int64_t to;
};

struct store_lookup {
	struct slot_list slots; /* caller-owned; reused across lookups */
	struct store_range missing[STORE_MAX_MISSING];
	size_t n_missing;      /* gaps in [from,to) with no slot held */
	int truncated_missing; /* more gaps than fit in missing[] */
	int64_t fetched_at;    /* oldest fetched_at among the slots returned; 0 if none */
	int64_t newest_fetched_at;
};

/* Initialise/free the lookup's slot list (slot_list_init/free). */
void store_lookup_init(struct store_lookup *l);
void store_lookup_free(struct store_lookup *l);

/* The slots of `ref` overlapping [from, to), in order, and the sub-ranges
 * of [from, to) that no slot covers (gap detection). One cursor scan in a
 * reused read transaction; no allocation once the list has grown. A
 * series never seen gives no slots and one missing range. */
int store_lookup(struct store *s, const struct series_ref *ref, int64_t from, int64_t to,
                 struct store_lookup *out);

/* End of the last slot held for ref (DESIGN.md `complete_until`); 0 when
 * nothing is held. */
int store_complete_until(struct store *s, const struct series_ref *ref, int64_t *out);

struct store_group {
	uint64_t id;
	struct series_ref ref;
	int64_t fetched_at;
	int64_t from;        /* start of the first slot of the answer */
	int64_t to;          /* end of the last */
	uint32_t slot_count; /* slots still belonging to this group */
	char source[32];
};

/* Calls fn for each fetch group, oldest first. Same rules as
 * store_series_each. */
int store_group_each(struct store *s, int (*fn)(const struct store_group *g, void *arg), void *arg);

struct store_gc_result {
	size_t groups_evicted;
	size_t slots_evicted;
	uint64_t bytes_before;
	uint64_t bytes_after;
};

/* Evicts the oldest fetch groups until the data in use is under the size
 * bound (opt->max_bytes, or `max_bytes` when non-zero). Slots from the
 * local day before yesterday through tomorrow (series' zone, at `now`) are
 * never evicted: a group holding such slots loses only its other slots.
 * res may be NULL. */
int store_gc(struct store *s, int64_t now, uint64_t max_bytes, struct store_gc_result *res);

/* Bytes of the data in use (pages in use x page size). */
int store_used_bytes(struct store *s, uint64_t *out);

/* --- tokens -------------------------------------------------------------- */

struct store_token {
	char access[4096];
	char refresh[2048];         /* "" when none */
	int64_t expires_at;         /* of the access token */
	int64_t refresh_expires_at; /* 0: unknown */
	int64_t obtained_at;
};

/* `key` identifies the credential without holding it: a hex hash made by
 * auth (never the secret). RP_ENOENT when none. */
int store_token_get(struct store *s, const char *key, struct store_token *out);
int store_token_put(struct store *s, const char *key, const struct store_token *tok);
int store_token_delete(struct store *s, const char *key);

/* --- refresh leases (across processes) ---------------------------------- */

/* Takes or renews the refresh lease of `name` (e.g. "octopus/E-1R-...")
 * for `owner` (unique per process, e.g. "host:pid:start") until now+ttl.
 * Returns 0 when the caller holds it, RP_EBUSY when another owner holds an
 * unexpired lease. An expired lease is taken over. Atomic across
 * processes (one LMDB write transaction). */
int store_lease_acquire(struct store *s, const char *name, const char *owner, int64_t now, int ttl_s);
/* Releases it when held by owner; no-op otherwise. */
int store_lease_release(struct store *s, const char *name, const char *owner);

/* --- small records: health, per-user data, counters ---------------------- */

/* Stores a blob (at most 64 KiB) under a key (at most 200 bytes), e.g.
 * "health" (the health JSON that `ratepool health` reads from another
 * process) or "account/<alias>" (an Octopus account's tariff record). */
int store_meta_put(struct store *s, const char *key, const void *val, size_t len);
/* Copies the blob into a malloc'd, NUL-terminated buffer the caller frees.
 * RP_ENOENT when absent. */
int store_meta_get(struct store *s, const char *key, char **val, size_t *len);
int store_meta_delete(struct store *s, const char *key);

#endif
