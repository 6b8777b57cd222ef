/*
 * store.c - the LMDB fetch-group store (the only file that includes
 * lmdb.h). docs/architecture.md "LMDB layout" describes every database,
 * key and value byte by byte; keep it in step with the encoders below.
 *
 * Concurrency inside one process:
 *  - map_lock (a writer-preferring rwlock) is held shared by every
 *    transaction and exclusively by a map size change, because
 *    mdb_env_set_mapsize may only be called while this process has no
 *    active transaction;
 *  - reads use a small pool of reused read-only transactions (MDB_NOTLS
 *    ties each reader slot to its MDB_txn, not to a thread); each has a
 *    mutex because one MDB_txn must not be used by two threads at once.
 *    Between uses a transaction is reset, so it pins no snapshot;
 *  - writes begin their own short write transaction; LMDB serialises
 *    writers across threads and processes.
 */
#include "ratepool/store.h"
#include "ratepool/log.h"

#include <endian.h>
#include <errno.h>
#include <lmdb.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define STORE_READERS     4
#define STORE_MAGIC       "ratepool"
#define DEFAULT_MAX_BYTES (256ull << 20)
#define DEFAULT_INITIAL   (16ull << 20)
#define MIN_MAP           (64ull << 10)
#define SLOT_NUM_SIZE     4
#define SLOT_ITEM_SIZE    44
#define GROUP_KEY_SIZE    8
#define GROUP_VAL_MIN     33
#define SERIES_VAL_SIZE   52
#define SERIES_KEY_MAX    (PROVIDER_ID_MAX + 1 + SERIES_ID_MAX)
#define TOKEN_HDR_SIZE    28
#define TOKEN_KEY_MAX     128
#define LEASE_FIELD_MAX   200
#define META_KEY_MAX      200
#define META_VAL_MAX      (64u << 10)
#define SOURCE_MAX        31
#define GC_BATCH_GROUPS   32
#define WRITE_ATTEMPTS    64
#define DEC_MAX           64
#define TIME_BIAS         UINT64_C(0x8000000000000000)

/* A lookup memo per reader (so the reader's mutex guards it): series
 * key -> (number, unit), valid only for the snapshot it was read in
 * (mdb_txn_id), so a commit by any process invalidates it. It saves the
 * string-keyed B-tree search that would otherwise cost about a tenth of
 * a one-day lookup. */
#define SERIES_CACHE 4096

struct series_memo {
	size_t txnid; /* snapshot; 0: empty */
	uint32_t num; /* 0: no such series */
	unsigned char klen;
	unsigned char key[PROVIDER_ID_MAX + 1 + SERIES_ID_MAX];
	char unit[SLOT_UNIT_SIZE];
};

struct reader {
	pthread_mutex_t mu;
	MDB_txn *txn;              /* NULL until first use; reset between uses */
	MDB_cursor *slots;         /* cursor on db_slots, renewed with txn */
	struct series_memo *smemo; /* SERIES_CACHE entries, made on first lookup */
};

struct store {
	MDB_env *env;
	MDB_dbi db_sys, db_series, db_series_num, db_groups, db_slots, db_tokens, db_leases, db_meta;
	pthread_rwlock_t map_lock;
	struct reader readers[STORE_READERS];
	unsigned int psize;
	uint64_t max_bytes;
	uint64_t map_max;
	char path[PATH_MAX];
};

/* A slot as held in db_slots, decoded. */
struct held {
	int64_t start;
	int64_t end;
	double value;
	double exc;
	uint64_t gid;
	int64_t fetched_at;                /* of group gid, kept with the slot for lookups */
	unsigned char raw[SLOT_ITEM_SIZE]; /* as stored: deletes name it exactly */
};

/* A group record, decoded. */
struct group_rec {
	uint32_t num;
	uint32_t count;
	int64_t fetched_at;
	int64_t from;
	int64_t to;
	char source[SOURCE_MAX + 1];
};

/* --- byte order helpers (keys big-endian so they sort; values little) -- */

static void put_u32be(unsigned char *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void put_u64be(unsigned char *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint64_t get_u64be(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

static void put_u16le(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static uint16_t get_u16le(const unsigned char *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static uint32_t get_u32le(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static void put_u64le(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint64_t get_u64le(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put_i64le(unsigned char *p, int64_t v)
{
	put_u64le(p, (uint64_t)v);
}

static int64_t get_i64le(const unsigned char *p)
{
	return (int64_t)get_u64le(p);
}

static void put_f64le(unsigned char *p, double d)
{
	uint64_t v;
	if(isnan(d))
		d = NAN; /* one canonical NaN on disk */
	memcpy(&v, &d, 8);
	put_u64le(p, v);
}

static double get_f64le(const unsigned char *p)
{
	uint64_t v = get_u64le(p);
	double d;
	memcpy(&d, &v, 8);
	return d;
}

/* --- encoders ------------------------------------------------------------ */

/* Slots live in a MDB_DUPSORT|MDB_DUPFIXED database: the key is the
 * series number, each duplicate a fixed-size item that begins with the
 * big-endian start, so the duplicates of a series sort by start and a
 * range is one ordered scan, read a page of items at a time
 * (MDB_GET_MULTIPLE). */
static void slot_num_key(unsigned char k[SLOT_NUM_SIZE], uint32_t num)
{
	put_u32be(k, num);
}

static void slot_item(unsigned char it[SLOT_ITEM_SIZE], const struct held *h)
{
	put_u64be(it, (uint64_t)h->start ^ TIME_BIAS);
	put_u32le(it + 8, (uint32_t)(h->end - h->start));
	put_f64le(it + 12, h->value);
	put_f64le(it + 20, h->exc);
	put_u64le(it + 28, h->gid);
	put_i64le(it + 36, h->fetched_at);
}

/* A search item: `start` then zeros, which sorts before (or on) every
 * item starting at `start`. */
static void slot_probe(unsigned char it[SLOT_ITEM_SIZE], int64_t start)
{
	memset(it, 0, SLOT_ITEM_SIZE);
	put_u64be(it, (uint64_t)start ^ TIME_BIAS);
}

static int64_t slot_item_start(const unsigned char *p)
{
	return (int64_t)(get_u64be(p) ^ TIME_BIAS);
}

/* Decodes one item; 0 or RP_ECORRUPT for a malformed one. */
static int slot_decode(const MDB_val *v, struct held *h)
{
	const unsigned char *p = v->mv_data;

	if(v->mv_size != SLOT_ITEM_SIZE)
		return RP_ECORRUPT;
	h->start = slot_item_start(p);
	h->end = h->start + get_u32le(p + 8);
	h->value = get_f64le(p + 12);
	h->exc = get_f64le(p + 20);
	h->gid = get_u64le(p + 28);
	h->fetched_at = get_i64le(p + 36);
	memcpy(h->raw, p, SLOT_ITEM_SIZE);
	return 0;
}

static void group_key(unsigned char k[GROUP_KEY_SIZE], uint64_t gid)
{
	put_u64be(k, gid);
}

static size_t group_val(unsigned char v[GROUP_VAL_MIN + SOURCE_MAX], const struct group_rec *g)
{
	size_t n = strnlen(g->source, SOURCE_MAX);

	put_u32le(v, g->num);
	put_u32le(v + 4, g->count);
	put_i64le(v + 8, g->fetched_at);
	put_i64le(v + 16, g->from);
	put_i64le(v + 24, g->to);
	v[32] = (unsigned char)n;
	memcpy(v + 33, g->source, n);
	return GROUP_VAL_MIN + n;
}

static int group_decode(const MDB_val *v, struct group_rec *g)
{
	const unsigned char *p = v->mv_data;
	size_t n;

	if(v->mv_size < GROUP_VAL_MIN)
		return RP_ECORRUPT;
	n = p[32];
	if(n > SOURCE_MAX || v->mv_size < GROUP_VAL_MIN + n)
		return RP_ECORRUPT;
	g->num = get_u32le(p);
	g->count = get_u32le(p + 4);
	g->fetched_at = get_i64le(p + 8);
	g->from = get_i64le(p + 16);
	g->to = get_i64le(p + 24);
	memcpy(g->source, p + 33, n);
	g->source[n] = '\0';
	return 0;
}

/* Key of a series: provider, one NUL, id (no terminator), so that keys
 * sort by (provider, id). Returns the length, 0 when ref is malformed. */
static size_t series_key(unsigned char k[SERIES_KEY_MAX], const struct series_ref *ref)
{
	size_t pl = strnlen(ref->provider, sizeof(ref->provider));
	size_t il = strnlen(ref->id, sizeof(ref->id));

	if(!pl || !il || pl > PROVIDER_ID_MAX || il > SERIES_ID_MAX)
		return 0;
	memcpy(k, ref->provider, pl);
	k[pl] = 0;
	memcpy(k + pl + 1, ref->id, il);
	return pl + 1 + il;
}

static int series_key_to_ref(const MDB_val *k, struct series_ref *ref)
{
	const unsigned char *p = k->mv_data;
	const unsigned char *nul = memchr(p, 0, k->mv_size);
	size_t pl, il;

	if(!nul)
		return RP_ECORRUPT;
	pl = (size_t)(nul - p);
	il = k->mv_size - pl - 1;
	if(!pl || !il || pl > PROVIDER_ID_MAX || il > SERIES_ID_MAX)
		return RP_ECORRUPT;
	memcpy(ref->provider, p, pl);
	ref->provider[pl] = '\0';
	memcpy(ref->id, nul + 1, il);
	ref->id[il] = '\0';
	return 0;
}

static void series_val(unsigned char v[SERIES_VAL_SIZE], uint32_t num, const struct store_series *rec)
{
	memset(v, 0, SERIES_VAL_SIZE);
	put_u32le(v, num);
	put_u32le(v + 4, (uint32_t)rec->resolution);
	v[8] = (unsigned char)rec->zone;
	v[9] = rec->tracked ? 1 : 0;
	put_i64le(v + 12, rec->last_requested);
	put_i64le(v + 20, rec->created_at);
	memcpy(v + 28, rec->unit, strnlen(rec->unit, SLOT_UNIT_SIZE - 1));
}

/* Decodes a series value (ref not touched); *num gets its number. */
static int series_decode(const MDB_val *v, uint32_t *num, struct store_series *rec)
{
	const unsigned char *p = v->mv_data;

	if(v->mv_size < SERIES_VAL_SIZE)
		return RP_ECORRUPT;
	*num = get_u32le(p);
	if(!rec)
		return 0;
	rec->resolution = (int)get_u32le(p + 4);
	rec->zone = p[8] <= RTIME_NEM ? (enum rtime_zone)p[8] : RTIME_UTC;
	rec->tracked = p[9] ? 1 : 0;
	rec->last_requested = get_i64le(p + 12);
	rec->created_at = get_i64le(p + 20);
	memcpy(rec->unit, p + 28, SLOT_UNIT_SIZE - 1);
	rec->unit[SLOT_UNIT_SIZE - 1] = '\0';
	return 0;
}

static int is_rp_code(int rc)
{
	return rc >= RP_ENOMEM && rc < RP_ECODE_END;
}

/* True when the file system of the store has (almost) no room left. */
static bool no_space_left(const struct store *s)
{
	struct statvfs v;

	return statvfs(s->path, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < (64u << 10);
}

/* Converts an LMDB (or errno) code to RP_E* and logs it: the one place
 * LMDB errors are logged. RP codes pass through unlogged. */
static int lmdb_code(const struct store *s, const char *op, int rc)
{
	int code;

	if(rc == 0 || is_rp_code(rc))
		return rc;
	switch(rc) {
	case MDB_NOTFOUND:
		return RP_ENOENT;
	case MDB_MAP_FULL:
	case ENOSPC:
		code = RP_EFULL;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
	case MDB_INVALID:
	case MDB_BAD_TXN:
		code = RP_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		code = RP_ESCHEMA;
		break;
	case ENOMEM:
		code = RP_ENOMEM;
		break;
	case EIO:
		/* LMDB reports a write cut short by a full disk as EIO. */
		code = no_space_left(s) ? RP_EFULL : RP_EIO;
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		code = RP_EIO;
		break;
	default:
		code = RP_ESTORE;
	}
	if(code == RP_ECORRUPT)
		log_error("store_corrupt",
		          "op=%s path=\"%s\" rc=%d error=\"%s\" hint=\"move it aside and rebuild it with "
		          "ratepool store-reset\"",
		          op, s->path, rc, mdb_strerror(rc));
	else if(code == RP_EFULL)
		log_error("store_full", "op=%s path=\"%s\" rc=%d error=\"%s\" hint=\"the disk is full\"", op,
		          s->path, rc, mdb_strerror(rc));
	else
		log_error("store_error", "op=%s path=\"%s\" rc=%d error=\"%s\"", op, s->path, rc,
		          mdb_strerror(rc));
	return code;
}

/* --- map size -------------------------------------------------------------- */

/* Adopts a map size grown by another process (MDB_MAP_RESIZED). */
static void map_adopt(struct store *s)
{
	int rc;

	pthread_rwlock_wrlock(&s->map_lock);
	rc = mdb_env_set_mapsize(s->env, 0);
	pthread_rwlock_unlock(&s->map_lock);
	if(rc)
		lmdb_code(s, "map_adopt", rc);
	else
		log_info("store_map_adopted", "path=\"%s\"", s->path);
}

/* Doubles the map (up to map_max) after MDB_MAP_FULL, unless another
 * thread already grew it past `seen`. Garbage collection may go an eighth
 * beyond map_max: in LMDB even a delete needs fresh pages (copy on
 * write), so a store at its bound could otherwise never free anything.
 * Returns 0 or RP_EFULL. */
static int map_grow(struct store *s, size_t seen, bool gc)
{
	MDB_envinfo info;
	uint64_t limit = gc ? ((s->map_max + s->map_max / 8 + 4095) & ~(uint64_t)4095) : s->map_max;
	size_t next;
	int rc = 0;

	if(limit > SIZE_MAX / 2)
		limit = s->map_max;
	pthread_rwlock_wrlock(&s->map_lock);
	mdb_env_info(s->env, &info);
	if(info.me_mapsize > seen)
		goto out;
	if(info.me_mapsize >= limit) {
		rc = RP_EFULL;
		goto out;
	}
	next = info.me_mapsize > limit / 2 ? (size_t)limit : info.me_mapsize * 2;
	rc = mdb_env_set_mapsize(s->env, next);
	if(rc)
		rc = lmdb_code(s, "map_grow", rc);
	else
		log_info("store_map_grown", "path=\"%s\" from=%zu to=%zu", s->path, info.me_mapsize, next);
out:
	pthread_rwlock_unlock(&s->map_lock);
	if(rc == RP_EFULL)
		log_error("store_full", "path=\"%s\" map_bytes=%zu max=%llu", s->path, info.me_mapsize,
		          (unsigned long long)s->map_max);
	return rc;
}

/* --- transactions --------------------------------------------------------- */

/* A write step: runs inside a fresh write transaction and may run again
 * from the start (after the map grew), so it resets what it reports.
 * Returns 0 to commit, or an RP code / LMDB code to abort. */
typedef int (*write_fn)(struct store *s, MDB_txn *txn, void *arg);

/* Runs fn in one write transaction, growing the map on MDB_MAP_FULL and
 * adopting a map grown elsewhere on MDB_MAP_RESIZED, then retrying. */
static int write_txn(struct store *s, const char *op, write_fn fn, void *arg)
{
	int attempt;

	for(attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		MDB_envinfo info;
		MDB_txn *txn = NULL;
		int rc;

		pthread_rwlock_rdlock(&s->map_lock);
		mdb_env_info(s->env, &info);
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if(rc == MDB_MAP_RESIZED) {
			pthread_rwlock_unlock(&s->map_lock);
			map_adopt(s);
			continue;
		}
		if(rc) {
			pthread_rwlock_unlock(&s->map_lock);
			return lmdb_code(s, op, rc);
		}
		rc = fn(s, txn, arg);
		if(rc == 0)
			rc = mdb_txn_commit(txn); /* frees txn, also on failure */
		else
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&s->map_lock);
		if(rc == MDB_MAP_FULL) {
			int g = map_grow(s, info.me_mapsize, !strcmp(op, "gc"));
			if(g)
				return g;
			continue;
		}
		return lmdb_code(s, op, rc);
	}
	log_error("store_error", "op=%s path=\"%s\" error=\"map kept changing\"", op, s->path);
	return RP_ESTORE;
}

/* Takes a reader from the pool (its mutex locked); a free one if any. */
static struct reader *reader_take(struct store *s)
{
	unsigned i;

	for(i = 0; i < STORE_READERS; i++)
		if(pthread_mutex_trylock(&s->readers[i].mu) == 0)
			return &s->readers[i];
	i = (unsigned)(((uintptr_t)pthread_self() >> 8) % STORE_READERS);
	pthread_mutex_lock(&s->readers[i].mu);
	return &s->readers[i];
}

/* Starts (renews) a pooled read transaction and its slot cursor. On 0 the
 * caller holds map_lock shared and r->mu, and must call read_end. */
static int read_begin(struct store *s, const char *op, struct reader **out)
{
	int attempt;

	for(attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		struct reader *r;
		int rc;

		pthread_rwlock_rdlock(&s->map_lock);
		r = reader_take(s);
		if(r->txn)
			rc = mdb_txn_renew(r->txn);
		else
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
		if(rc == 0) {
			if(r->slots)
				rc = mdb_cursor_renew(r->txn, r->slots);
			else
				rc = mdb_cursor_open(r->txn, s->db_slots, &r->slots);
			if(rc)
				mdb_txn_reset(r->txn);
		}
		if(rc == 0) {
			*out = r;
			return 0;
		}
		/* a failed begin leaves r->txn NULL; a failed renew leaves it
		 * reset and renewable */
		pthread_mutex_unlock(&r->mu);
		pthread_rwlock_unlock(&s->map_lock);
		if(rc != MDB_MAP_RESIZED)
			return lmdb_code(s, op, rc);
		map_adopt(s);
	}
	return RP_ESTORE;
}

static void read_end(struct store *s, struct reader *r)
{
	mdb_txn_reset(r->txn);
	pthread_mutex_unlock(&r->mu);
	pthread_rwlock_unlock(&s->map_lock);
}

/* --- small record helpers (inside a transaction) ------------------------- */

static int sys_get_u64(struct store *s, MDB_txn *txn, const char *name, uint64_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, s->db_sys, &k, &v);

	if(rc)
		return rc;
	if(v.mv_size == 8)
		*out = get_u64le(v.mv_data);
	else if(v.mv_size == 4)
		*out = get_u32le(v.mv_data);
	else
		return MDB_CORRUPTED;
	return 0;
}

static int sys_put_u64(struct store *s, MDB_txn *txn, const char *name, uint64_t val)
{
	unsigned char b[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, b};

	put_u64le(b, val);
	return mdb_put(txn, s->db_sys, &k, &v, 0);
}

static int group_get(struct store *s, MDB_txn *txn, uint64_t gid, struct group_rec *g)
{
	unsigned char kb[GROUP_KEY_SIZE];
	MDB_val k = {sizeof(kb), kb}, v;
	int rc;

	group_key(kb, gid);
	rc = mdb_get(txn, s->db_groups, &k, &v);
	if(rc)
		return rc;
	return group_decode(&v, g) ? MDB_CORRUPTED : 0;
}

static int group_put(struct store *s, MDB_txn *txn, uint64_t gid, const struct group_rec *g)
{
	unsigned char kb[GROUP_KEY_SIZE], vb[GROUP_VAL_MIN + SOURCE_MAX];
	MDB_val k = {sizeof(kb), kb}, v;

	group_key(kb, gid);
	v.mv_size = group_val(vb, g);
	v.mv_data = vb;
	return mdb_put(txn, s->db_groups, &k, &v, 0);
}

static int group_del(struct store *s, MDB_txn *txn, uint64_t gid)
{
	unsigned char kb[GROUP_KEY_SIZE];
	MDB_val k = {sizeof(kb), kb};

	group_key(kb, gid);
	return mdb_del(txn, s->db_groups, &k, NULL);
}

/* Looks the series up; *num gets its number. MDB_NOTFOUND when unknown. */
static int series_find(struct store *s, MDB_txn *txn, const struct series_ref *ref, uint32_t *num,
                       struct store_series *rec)
{
	unsigned char kb[SERIES_KEY_MAX];
	MDB_val k, v;
	int rc;

	k.mv_size = series_key(kb, ref);
	k.mv_data = kb;
	if(!k.mv_size)
		return RP_EINVAL;
	rc = mdb_get(txn, s->db_series, &k, &v);
	if(rc)
		return rc;
	if(series_decode(&v, num, rec))
		return MDB_CORRUPTED;
	if(rec)
		rec->ref = *ref;
	return 0;
}

/* The series record of a number (for GC and group_each). */
static int series_by_num(struct store *s, MDB_txn *txn, uint32_t num, struct store_series *rec)
{
	unsigned char nb[4];
	MDB_val k = {4, nb}, v;
	uint32_t n2;
	int rc;

	put_u32be(nb, num);
	rc = mdb_get(txn, s->db_series_num, &k, &v);
	if(rc)
		return rc;
	if(series_key_to_ref(&v, &rec->ref))
		return MDB_CORRUPTED;
	rc = mdb_get(txn, s->db_series, &v, &k);
	if(rc)
		return rc;
	return series_decode(&k, &n2, rec) ? MDB_CORRUPTED : 0;
}

/* Writes the series record, giving it a new number when it has none
 * (*num == 0). */
static int series_write(struct store *s, MDB_txn *txn, uint32_t *num, const struct store_series *rec)
{
	unsigned char kb[SERIES_KEY_MAX], vb[SERIES_VAL_SIZE], nb[4];
	MDB_val k, v, nk, nv;
	int rc;

	k.mv_size = series_key(kb, &rec->ref);
	k.mv_data = kb;
	if(!k.mv_size)
		return RP_EINVAL;
	if(*num == 0) {
		uint64_t next;
		rc = sys_get_u64(s, txn, "next_series", &next);
		if(rc)
			return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
		if(next == 0 || next > UINT32_MAX)
			return RP_EFULL;
		rc = sys_put_u64(s, txn, "next_series", next + 1);
		if(rc)
			return rc;
		*num = (uint32_t)next;
		put_u32be(nb, *num);
		nk.mv_size = 4;
		nk.mv_data = nb;
		nv = k;
		rc = mdb_put(txn, s->db_series_num, &nk, &nv, 0);
		if(rc)
			return rc;
	}
	series_val(vb, *num, rec);
	v.mv_size = sizeof(vb);
	v.mv_data = vb;
	return mdb_put(txn, s->db_series, &k, &v, 0);
}

/*
 * Positions cur on the first slot of series `num` that may reach into
 * [from, ...): the one starting at `from`; else the one before the first
 * that starts after `from` (held slots never overlap, so only that one
 * can still cover `from`; callers skip it when it ends by `from`); else
 * the series' last slot. *v gets that slot. MDB_NOTFOUND when the series
 * holds none. kb and probe back k and v and must live as long.
 */
static int slots_seek(MDB_cursor *cur, MDB_val *k, MDB_val *v, unsigned char kb[SLOT_NUM_SIZE],
                      unsigned char probe[SLOT_ITEM_SIZE], uint32_t num, int64_t from)
{
	int rc;

	slot_num_key(kb, num);
	slot_probe(probe, from);
	k->mv_size = SLOT_NUM_SIZE;
	k->mv_data = kb;
	v->mv_size = SLOT_ITEM_SIZE;
	v->mv_data = probe;
	rc = mdb_cursor_get(cur, k, v, MDB_GET_BOTH_RANGE);
	if(rc == 0) {
		if(v->mv_size == SLOT_ITEM_SIZE && slot_item_start(v->mv_data) == from)
			return 0;
		rc = mdb_cursor_get(cur, k, v, MDB_PREV_DUP);
		if(rc == MDB_NOTFOUND) /* it was the first; the cursor stays on it */
			rc = mdb_cursor_get(cur, k, v, MDB_GET_CURRENT);
		return rc;
	}
	if(rc != MDB_NOTFOUND)
		return rc;
	k->mv_size = SLOT_NUM_SIZE;
	k->mv_data = kb;
	rc = mdb_cursor_get(cur, k, v, MDB_SET_KEY);
	if(rc)
		return rc;
	return mdb_cursor_get(cur, k, v, MDB_LAST_DUP);
}

/* --- open / close -------------------------------------------------------- */

/* mkdir -p with 0700 for what it creates. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), i;

	if(n == 0 || n >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for(i = 1; i <= n; i++) {
		if(buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if(mkdir(buf, 0700) && errno != EEXIST)
			return errno;
		buf[i] = i == n ? '\0' : '/';
	}
	return 0;
}

struct setup_ctx {
	int outcome;      /* 0, or SETUP_* below */
	uint64_t version; /* schema found */
	int created;
};

enum { SETUP_FOREIGN = 1, SETUP_NEWER, SETUP_UNKNOWN };

/* Opens every database and checks (or, on a fresh file, stamps) the
 * schema, in one write transaction so two processes opening a new store
 * at once agree. Nothing is created in a store that fails the check. */
static int setup_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct setup_ctx *c = arg;
	static const struct {
		const char *name;
		size_t off;
		unsigned int flags;
	} dbs[] = {
	        {"series", offsetof(struct store, db_series), 0},
	        {"series_num", offsetof(struct store, db_series_num), 0},
	        {"groups", offsetof(struct store, db_groups), 0},
	        {"slots", offsetof(struct store, db_slots), MDB_DUPSORT | MDB_DUPFIXED},
	        {"tokens", offsetof(struct store, db_tokens), 0},
	        {"leases", offsetof(struct store, db_leases), 0},
	        {"meta", offsetof(struct store, db_meta), 0},
	};
	MDB_val k, v;
	size_t i;
	int rc;

	c->outcome = 0;
	c->version = 0;
	c->created = 0;
	rc = mdb_dbi_open(txn, "sys", 0, &s->db_sys);
	if(rc == MDB_NOTFOUND) {
		MDB_dbi main_db;
		MDB_stat st;
		rc = mdb_dbi_open(txn, NULL, 0, &main_db);
		if(!rc)
			rc = mdb_stat(txn, main_db, &st);
		if(rc)
			return rc;
		if(st.ms_entries) {
			c->outcome = SETUP_FOREIGN;
			return RP_ESCHEMA;
		}
		rc = mdb_dbi_open(txn, "sys", MDB_CREATE, &s->db_sys);
		if(rc)
			return rc;
		k.mv_size = strlen("magic");
		k.mv_data = "magic";
		v.mv_size = strlen(STORE_MAGIC);
		v.mv_data = STORE_MAGIC;
		rc = mdb_put(txn, s->db_sys, &k, &v, 0);
		if(!rc)
			rc = sys_put_u64(s, txn, "schema", STORE_SCHEMA_VERSION);
		if(!rc)
			rc = sys_put_u64(s, txn, "next_group", 1);
		if(!rc)
			rc = sys_put_u64(s, txn, "next_series", 1);
		if(!rc)
			rc = sys_put_u64(s, txn, "created_at", (uint64_t)rtime_now());
		if(rc)
			return rc;
		c->created = 1;
		c->version = STORE_SCHEMA_VERSION;
	} else if(rc == MDB_INCOMPATIBLE) {
		/* "sys" is a plain key of some other program's main database */
		c->outcome = SETUP_FOREIGN;
		return RP_ESCHEMA;
	} else if(rc)
		return rc;
	else {
		k.mv_size = strlen("magic");
		k.mv_data = "magic";
		rc = mdb_get(txn, s->db_sys, &k, &v);
		if(rc == MDB_NOTFOUND ||
		   (!rc && (v.mv_size != strlen(STORE_MAGIC) || memcmp(v.mv_data, STORE_MAGIC, v.mv_size)))) {
			c->outcome = SETUP_FOREIGN;
			return RP_ESCHEMA;
		}
		if(rc)
			return rc;
		rc = sys_get_u64(s, txn, "schema", &c->version);
		if(rc == MDB_NOTFOUND || rc == MDB_CORRUPTED || (!rc && c->version == 0)) {
			c->outcome = SETUP_UNKNOWN;
			return RP_ESCHEMA;
		}
		if(rc)
			return rc;
		if(c->version > STORE_SCHEMA_VERSION) {
			c->outcome = SETUP_NEWER;
			return RP_ESCHEMA;
		}
	}
	for(i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags,
		                  (MDB_dbi *)((char *)s + dbs[i].off));
		if(rc == MDB_INCOMPATIBLE) {
			/* a database of ours with other flags: not this schema */
			c->outcome = SETUP_UNKNOWN;
			return RP_ESCHEMA;
		}
		if(rc)
			return rc;
	}
	return 0;
}

static const char RESET_HINT[] = "move it aside and rebuild it with `ratepool store-reset`";

/* Fills err for a failure while opening; returns code. */
static int open_error(struct rp_err *err, const char *path, int code, int mdb_rc)
{
	switch(code) {
	case RP_ECORRUPT:
		rp_err_set(err, code, "store %s/data.mdb is damaged (%s); %s", path, mdb_strerror(mdb_rc),
		           RESET_HINT);
		break;
	case RP_ESCHEMA:
		rp_err_set(err, code,
		           "store %s/data.mdb was written by an incompatible LMDB version (%s); %s", path,
		           mdb_strerror(mdb_rc), RESET_HINT);
		break;
	default:
		rp_err_set(err, code, "cannot open store %s: %s", path, mdb_strerror(mdb_rc));
	}
	log_error("store_open_failed", "path=\"%s\" code=%s rc=%d error=\"%s\"", path, rp_code_name(code),
	          mdb_rc, mdb_strerror(mdb_rc));
	return code;
}

int store_open(struct store **out, const struct store_options *opt, struct rp_err *err)
{
	struct store *s = NULL;
	struct setup_ctx setup;
	pthread_rwlockattr_t attr;
	char data_path[PATH_MAX + 16];
	struct stat st;
	uint64_t initial;
	int dead = 0;
	int rc, i;

	*out = NULL;
	if(!opt || !opt->path || !opt->path[0])
		return rp_err_set(err, RP_EINVAL, "store path is empty");
	if(strlen(opt->path) >= PATH_MAX - 16)
		return rp_err_set(err, RP_EINVAL, "store path is too long");
	rc = make_dirs(opt->path);
	if(rc)
		return rp_err_set(err, RP_EIO, "cannot create store directory %s: %s", opt->path,
		                  strerror(rc));
	snprintf(data_path, sizeof(data_path), "%s/data.mdb", opt->path);
	if(stat(data_path, &st) == 0 && !S_ISREG(st.st_mode))
		return rp_err_set(err, RP_ECORRUPT, "store %s is not a regular file; %s", data_path,
		                  RESET_HINT);

	s = calloc(1, sizeof(*s));
	if(!s)
		return rp_err_set(err, RP_ENOMEM, "out of memory opening the store");
	snprintf(s->path, sizeof(s->path), "%s", opt->path);
	s->max_bytes = opt->max_bytes ? opt->max_bytes : DEFAULT_MAX_BYTES;
	initial = opt->initial_map ? opt->initial_map : DEFAULT_INITIAL;
	if(initial < MIN_MAP)
		initial = MIN_MAP;
	initial = (initial + 4095) & ~(uint64_t)4095;
	/* The map may hold up to twice the GC bound: GC runs between
	 * writes, so data can overshoot the bound until the next pass. */
	s->map_max = s->max_bytes > UINT64_MAX / 4 ? UINT64_MAX / 2 : s->max_bytes * 2;
	/* A small bound (RATEPOOL_STORE_MAX_BYTES=1MiB) is a bound: the first
	 * map shrinks to it rather than the bound growing to the first map. */
	if(initial > s->map_max)
		initial = s->map_max < MIN_MAP ? MIN_MAP : s->map_max;
	if(s->map_max < initial)
		s->map_max = initial;
	if(s->map_max > SIZE_MAX / 2)
		s->map_max = SIZE_MAX / 2;
	s->map_max = (s->map_max + 4095) & ~(uint64_t)4095;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	for(i = 0; i < STORE_READERS; i++)
		pthread_mutex_init(&s->readers[i].mu, NULL);

	rc = mdb_env_create(&s->env);
	if(rc) {
		s->env = NULL;
		rc = open_error(err, opt->path, rc == ENOMEM ? RP_ENOMEM : RP_EIO, rc);
		goto fail;
	}
	mdb_env_set_maxdbs(s->env, 16);
	mdb_env_set_mapsize(s->env, (size_t)initial);
	rc = mdb_env_open(s->env, opt->path, MDB_NOTLS, 0600);
	if(rc) {
		int code = RP_EIO;
		if(rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
			code = RP_ECORRUPT;
		else if(rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE)
			code = RP_ESCHEMA;
		else if(rc == ENOMEM)
			code = RP_ENOMEM;
		rc = open_error(err, opt->path, code, rc);
		goto fail;
	}
	rc = mdb_reader_check(s->env, &dead);
	if(rc == 0 && dead > 0)
		log_warn("store_stale_readers", "path=\"%s\" cleared=%d", opt->path, dead);
	/* Adopt the map size the file was last grown to, but never less than
	 * asked for. No transaction is active yet. */
	if(mdb_env_set_mapsize(s->env, 0) == 0) {
		MDB_envinfo info;
		mdb_env_info(s->env, &info);
		if(info.me_mapsize < initial)
			mdb_env_set_mapsize(s->env, (size_t)initial);
	}
	{
		MDB_stat est;
		mdb_env_stat(s->env, &est);
		s->psize = est.ms_psize;
	}

	rc = write_txn(s, "open", setup_fn, &setup);
	if(rc) {
		if(rc == RP_ESCHEMA && setup.outcome == SETUP_NEWER)
			rp_err_set(err, rc,
			           "store %s was written by a newer ratepool (schema %llu, this build knows "
			           "%d); "
			           "run that version, or %s",
			           opt->path, (unsigned long long)setup.version, STORE_SCHEMA_VERSION,
			           RESET_HINT);
		else if(rc == RP_ESCHEMA && setup.outcome == SETUP_UNKNOWN)
			rp_err_set(err, rc, "store %s has an unknown schema record; %s", opt->path,
			           RESET_HINT);
		else if(rc == RP_ESCHEMA)
			rp_err_set(err, rc, "store %s is an LMDB file but not a ratepool store; %s",
			           opt->path, RESET_HINT);
		else if(rc == RP_ECORRUPT)
			rp_err_set(err, rc, "store %s/data.mdb is damaged; %s", opt->path, RESET_HINT);
		else
			rp_err_set(err, rc, "cannot open store %s: %s", opt->path, rp_strerror(rc));
		log_error("store_open_failed", "path=\"%s\" code=%s msg=\"%s\"", opt->path, rp_code_name(rc),
		          err ? err->msg : "");
		goto fail;
	}
	if(setup.created)
		log_info("store_created", "path=\"%s\" schema=%d", opt->path, STORE_SCHEMA_VERSION);
	log_info("store_opened", "path=\"%s\" schema=%llu max_bytes=%llu stale_readers=%d", opt->path,
	         (unsigned long long)setup.version, (unsigned long long)s->max_bytes, dead);
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	int i;

	if(!s)
		return;
	for(i = 0; i < STORE_READERS; i++) {
		struct reader *r = &s->readers[i];
		if(r->slots)
			mdb_cursor_close(r->slots);
		if(r->txn)
			mdb_txn_abort(r->txn);
		free(r->smemo);
		pthread_mutex_destroy(&r->mu);
	}
	if(s->env)
		mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->map_lock);
	free(s);
}

int store_reader_check(struct store *s, int *cleared)
{
	int dead = 0;
	int rc = mdb_reader_check(s->env, &dead);

	if(cleared)
		*cleared = dead;
	if(rc)
		return lmdb_code(s, "reader_check", rc);
	if(dead > 0)
		log_warn("store_stale_readers", "path=\"%s\" cleared=%d", s->path, dead);
	return 0;
}

int store_move_aside(const char *path, char *moved_to, size_t n)
{
	char src[PATH_MAX], dst[PATH_MAX + 64];
	size_t len;
	long long now = (long long)rtime_now();
	struct stat st;
	int i;

	if(!path)
		return RP_EIO;
	len = strlen(path);
	while(len > 1 && path[len - 1] == '/')
		len--;
	if(len == 0 || len >= sizeof(src))
		return RP_EIO;
	memcpy(src, path, len);
	src[len] = '\0';
	for(i = 0; i < 100; i++) {
		if(i == 0)
			snprintf(dst, sizeof(dst), "%s.broken-%lld", src, now);
		else
			snprintf(dst, sizeof(dst), "%s.broken-%lld-%d", src, now, i);
		/* rename() would silently replace an empty directory */
		if(lstat(dst, &st) != 0 && errno == ENOENT)
			break;
	}
	if(i == 100 || rename(src, dst) != 0) {
		log_error("store_move_aside_failed", "path=\"%s\" error=\"%s\"", src,
		          i == 100 ? "no free name" : strerror(errno));
		return RP_EIO;
	}
	log_warn("store_moved_aside", "path=\"%s\" moved_to=\"%s\"", src, dst);
	if(moved_to && n)
		snprintf(moved_to, n, "%s", dst);
	return 0;
}

/* --- series ------------------------------------------------------------ */

static int ref_valid(const struct series_ref *ref)
{
	return ref && memchr(ref->provider, 0, sizeof(ref->provider)) &&
	       memchr(ref->id, 0, sizeof(ref->id)) && series_id_valid(ref->provider) &&
	       series_id_valid(ref->id);
}

static int series_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
	const struct store_series *rec = arg;
	uint32_t num = 0;
	int rc = series_find(s, txn, &rec->ref, &num, NULL);

	if(rc && rc != MDB_NOTFOUND)
		return rc;
	if(rc == MDB_NOTFOUND)
		num = 0;
	return series_write(s, txn, &num, rec);
}

int store_series_put(struct store *s, const struct store_series *rec)
{
	if(!s || !rec || !ref_valid(&rec->ref) || !memchr(rec->unit, 0, sizeof(rec->unit)) ||
	   (unsigned)rec->zone > RTIME_NEM)
		return RP_EINVAL;
	return write_txn(s, "series_put", series_put_fn, (void *)rec);
}

int store_series_get(struct store *s, const struct series_ref *ref, struct store_series *out)
{
	struct reader *r;
	uint32_t num;
	int rc;

	if(!s || !ref_valid(ref) || !out)
		return RP_EINVAL;
	rc = read_begin(s, "series_get", &r);
	if(rc)
		return rc;
	rc = series_find(s, r->txn, ref, &num, out);
	read_end(s, r);
	return lmdb_code(s, "series_get", rc);
}

int store_series_each(struct store *s, int (*fn)(const struct store_series *rec, void *arg), void *arg)
{
	struct reader *r;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc, stop = 0;

	if(!s || !fn)
		return RP_EINVAL;
	rc = read_begin(s, "series_each", &r);
	if(rc)
		return rc;
	rc = mdb_cursor_open(r->txn, s->db_series, &cur);
	if(rc)
		goto out;
	for(rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_series rec;
		uint32_t num;
		memset(&rec, 0, sizeof(rec));
		if(series_key_to_ref(&k, &rec.ref) || series_decode(&v, &num, &rec)) {
			rc = MDB_CORRUPTED;
			goto out;
		}
		stop = fn(&rec, arg);
		if(stop)
			break;
	}
	rc = 0;
out:
	if(cur)
		mdb_cursor_close(cur);
	read_end(s, r);
	if(stop)
		return stop;
	return lmdb_code(s, "series_each", rc);
}

/* Deletes every slot of series `num` (all duplicates of its key). */
static int slots_delete_all(struct store *s, MDB_txn *txn, uint32_t num)
{
	unsigned char kb[SLOT_NUM_SIZE];
	MDB_val k = {sizeof(kb), kb};
	int rc;

	slot_num_key(kb, num);
	rc = mdb_del(txn, s->db_slots, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int series_delete_fn(struct store *s, MDB_txn *txn, void *arg)
{
	const struct series_ref *ref = arg;
	unsigned char kb[SERIES_KEY_MAX], nb[4];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint32_t num;
	int rc;

	rc = series_find(s, txn, ref, &num, NULL);
	if(rc)
		return rc == MDB_NOTFOUND ? RP_ENOENT : rc;
	rc = slots_delete_all(s, txn, num);
	if(rc)
		return rc;
	/* Groups are few (one per answer kept); a walk is cheaper than
	 * keeping a per-series index up to date on every write. */
	rc = mdb_cursor_open(txn, s->db_groups, &cur);
	if(rc)
		return rc;
	for(rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if(v.mv_size >= 4 && get_u32le(v.mv_data) == num) {
			rc = mdb_cursor_del(cur, 0);
			if(rc)
				break;
		}
	}
	mdb_cursor_close(cur);
	if(rc != MDB_NOTFOUND)
		return rc;
	put_u32be(nb, num);
	k.mv_size = 4;
	k.mv_data = nb;
	rc = mdb_del(txn, s->db_series_num, &k, NULL);
	if(rc && rc != MDB_NOTFOUND)
		return rc;
	k.mv_size = series_key(kb, ref);
	k.mv_data = kb;
	return mdb_del(txn, s->db_series, &k, NULL);
}

int store_series_delete(struct store *s, const struct series_ref *ref)
{
	if(!s || !ref_valid(ref))
		return RP_EINVAL;
	return write_txn(s, "series_delete", series_delete_fn, (void *)ref);
}

/* --- writing an answer --------------------------------------------------- */

struct dec {
	uint64_t gid;
	uint32_t n;
};

struct put_ctx {
	const struct series_ref *ref;
	enum rtime_zone zone;
	const struct slot_list *slots;
	int64_t fetched_at;
	const char *source;
	struct store_write_result res;
	size_t conflicts;
	size_t replaced;
	struct held *held; /* held slots overlapping the answer; reused */
	size_t held_cap;
	int64_t tail;            /* start of the series' last held slot, INT64_MIN: none */
	int nothing;             /* the answer changed nothing: the transaction was aborted */
	struct dec dec[DEC_MAX]; /* slots leaving older groups, per group */
	size_t n_dec;
};

static int dec_flush(struct store *s, MDB_txn *txn, struct put_ctx *c)
{
	size_t i;
	int rc;

	for(i = 0; i < c->n_dec; i++) {
		struct group_rec g;
		rc = group_get(s, txn, c->dec[i].gid, &g);
		if(rc == MDB_NOTFOUND)
			continue; /* a slot naming a lost group: nothing to count */
		if(rc)
			return rc;
		g.count = g.count > c->dec[i].n ? g.count - c->dec[i].n : 0;
		/* a group none of whose slots are left is dropped at once */
		rc = g.count ? group_put(s, txn, c->dec[i].gid, &g) : group_del(s, txn, c->dec[i].gid);
		if(rc)
			return rc;
	}
	c->n_dec = 0;
	return 0;
}

/* Notes that one slot left group gid. */
static int dec_add(struct store *s, MDB_txn *txn, struct put_ctx *c, uint64_t gid)
{
	size_t i;
	int rc;

	for(i = c->n_dec; i-- > 0;)
		if(c->dec[i].gid == gid) {
			c->dec[i].n++;
			return 0;
		}
	if(c->n_dec == DEC_MAX) {
		rc = dec_flush(s, txn, c);
		if(rc)
			return rc;
	}
	c->dec[c->n_dec].gid = gid;
	c->dec[c->n_dec].n = 1;
	c->n_dec++;
	return 0;
}

/* Reads the held slots of `num` overlapping [from, to) into c->held, and
 * the start of the series' last slot into c->tail. */
static int held_read(struct store *s, MDB_txn *txn, struct put_ctx *c, uint32_t num, int64_t from, int64_t to,
                     size_t *n_out)
{
	unsigned char kb[SLOT_NUM_SIZE], probe[SLOT_ITEM_SIZE];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t n = 0;
	int rc;

	*n_out = 0;
	c->tail = INT64_MIN;
	rc = mdb_cursor_open(txn, s->db_slots, &cur);
	if(rc)
		return rc;
	for(rc = slots_seek(cur, &k, &v, kb, probe, num, from); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
		struct held h;
		if(slot_decode(&v, &h)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if(h.start >= to)
			break;
		if(h.end <= from)
			continue;
		if(n == c->held_cap) {
			size_t cap = c->held_cap ? c->held_cap * 2 : 256;
			struct held *nh = realloc(c->held, cap * sizeof(*nh));
			if(!nh) {
				rc = RP_ENOMEM;
				break;
			}
			c->held = nh;
			c->held_cap = cap;
		}
		c->held[n++] = h;
	}
	if(rc == 0 || rc == MDB_NOTFOUND) {
		k.mv_size = SLOT_NUM_SIZE;
		k.mv_data = kb;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		if(rc == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
		if(rc == 0) {
			struct held h;
			if(slot_decode(&v, &h))
				rc = MDB_CORRUPTED;
			else
				c->tail = h.start;
		}
	}
	mdb_cursor_close(cur);
	if(rc && rc != MDB_NOTFOUND)
		return rc;
	*n_out = n;
	return 0;
}

/* A new slot of group gid, from the answer. */
static struct held held_of(const struct slot *x, uint64_t gid, int64_t fetched_at)
{
	struct held h;

	memset(&h, 0, sizeof(h));
	h.start = x->start;
	h.end = x->end;
	h.value = x->value;
	h.exc = x->value_exc_vat;
	h.gid = gid;
	h.fetched_at = fetched_at;
	return h;
}

static int same_value(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

/* Adds one slot. `append`: it starts after every slot of the series, so
 * MDB_APPENDDUP may add it at the end without splitting pages in half
 * (daily answers then pack pages full). */
static int slot_write(struct store *s, MDB_txn *txn, uint32_t num, const struct held *h, int append)
{
	unsigned char kb[SLOT_NUM_SIZE], it[SLOT_ITEM_SIZE];
	MDB_val k = {sizeof(kb), kb}, v = {sizeof(it), it};
	int rc;

	slot_num_key(kb, num);
	slot_item(it, h);
	if(append) {
		rc = mdb_put(txn, s->db_slots, &k, &v, MDB_APPENDDUP);
		if(rc != MDB_KEYEXIST)
			return rc;
		k.mv_size = sizeof(kb);
		k.mv_data = kb;
		v.mv_size = sizeof(it);
		v.mv_data = it;
	}
	return mdb_put(txn, s->db_slots, &k, &v, 0);
}

/* Removes one held slot, named by its stored bytes. */
static int slot_delete(struct store *s, MDB_txn *txn, uint32_t num, const struct held *h)
{
	unsigned char kb[SLOT_NUM_SIZE];
	MDB_val k = {sizeof(kb), kb}, v = {SLOT_ITEM_SIZE, (void *)h->raw};

	slot_num_key(kb, num);
	return mdb_del(txn, s->db_slots, &k, &v);
}

/*
 * Merges the answer into the held slots. Answer and held slots are both
 * ordered and non-overlapping; they are swept together in groups of
 * mutually overlapping slots ("components"):
 *  - an answer slot alone: added;
 *  - an answer slot with a held slot of the same bounds: the held slot
 *    moves to the new group (touched, or changed when its value differs);
 *  - any other mix (bounds differ, e.g. a resolution change): the answer
 *    wins only when its slots cover every held slot of the component
 *    without a hole; otherwise the held slots stay and the answer's
 *    slots there are dropped, so coverage is never lost.
 * Held slots outside every component are not touched.
 */
static int put_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct put_ctx *c = arg;
	const struct slot_list *sl = c->slots;
	const struct slot *nv = sl->v;
	size_t nn = sl->n, nh = 0, i = 0, j = 0, assigned = 0;
	struct store_series rec;
	struct group_rec g;
	uint32_t num = 0;
	uint64_t gid;
	int rc;

	memset(&c->res, 0, sizeof(c->res));
	c->conflicts = c->replaced = 0;
	c->nothing = 0;
	c->n_dec = 0;

	memset(&rec, 0, sizeof(rec));
	rc = series_find(s, txn, c->ref, &num, &rec);
	if(rc == MDB_NOTFOUND) {
		num = 0;
		rec.ref = *c->ref;
		rec.created_at = rtime_now();
	} else if(rc)
		return rc;
	rec.resolution = (int)(nv[nn - 1].end - nv[nn - 1].start);
	rec.zone = c->zone;
	memcpy(rec.unit, sl->unit, sizeof(rec.unit));
	rec.unit[sizeof(rec.unit) - 1] = '\0';
	rc = series_write(s, txn, &num, &rec);
	if(rc)
		return rc;

	rc = sys_get_u64(s, txn, "next_group", &gid);
	if(rc)
		return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
	rc = sys_put_u64(s, txn, "next_group", gid + 1);
	if(rc)
		return rc;

	rc = held_read(s, txn, c, num, nv[0].start, nv[nn - 1].end, &nh);
	if(rc)
		return rc;

	while(i < nn || j < nh) {
		size_t i0 = i, j0 = j;
		int64_t end;
		/* start a component with whichever starts first */
		if(j < nh && (i >= nn || c->held[j].start < nv[i].start))
			end = c->held[j++].end;
		else
			end = nv[i++].end;
		for(;;) {
			if(i < nn && nv[i].start < end) {
				if(nv[i].end > end)
					end = nv[i].end;
				i++;
			} else if(j < nh && c->held[j].start < end) {
				if(c->held[j].end > end)
					end = c->held[j].end;
				j++;
			} else
				break;
		}
		if(i == i0)
			continue; /* held only */
		if(j == j0) {
			/* answer only: one slot (answer slots never overlap) */
			struct held h = held_of(&nv[i0], gid, c->fetched_at);
			rc = slot_write(s, txn, num, &h, h.start > c->tail);
			if(rc)
				return rc;
			c->res.added++;
			assigned++;
			continue;
		}
		if(i - i0 == 1 && j - j0 == 1 && nv[i0].start == c->held[j0].start &&
		   nv[i0].end == c->held[j0].end) {
			const struct held *o = &c->held[j0];
			struct held h = held_of(&nv[i0], gid, c->fetched_at);
			if(same_value(o->value, h.value) && same_value(o->exc, h.exc))
				c->res.touched++;
			else
				c->res.changed++;
			rc = slot_delete(s, txn, num, o);
			if(!rc)
				rc = slot_write(s, txn, num, &h, 0);
			if(!rc)
				rc = dec_add(s, txn, c, o->gid);
			if(rc)
				return rc;
			assigned++;
			continue;
		}
		{
			int covers = nv[i0].start <= c->held[j0].start && nv[i - 1].end >= c->held[j - 1].end;
			size_t x;
			for(x = i0 + 1; covers && x < i; x++)
				if(nv[x].start != nv[x - 1].end)
					covers = 0;
			if(!covers) {
				c->conflicts += i - i0;
				continue;
			}
			for(x = j0; x < j; x++) {
				rc = slot_delete(s, txn, num, &c->held[x]);
				if(!rc)
					rc = dec_add(s, txn, c, c->held[x].gid);
				if(rc)
					return rc;
			}
			for(x = i0; x < i; x++) {
				struct held h = held_of(&nv[x], gid, c->fetched_at);
				rc = slot_write(s, txn, num, &h, h.start > c->tail);
				if(rc)
					return rc;
				c->res.changed++;
				assigned++;
			}
			c->replaced += j - j0;
		}
	}
	rc = dec_flush(s, txn, c);
	if(rc)
		return rc;
	if(!assigned) {
		/* every slot conflicted: change nothing, not even the series'
		 * resolution (abort; store_put_answer reports success) */
		c->nothing = 1;
		return RP_ENOENT;
	}
	memset(&g, 0, sizeof(g));
	g.num = num;
	g.count = (uint32_t)assigned;
	g.fetched_at = c->fetched_at;
	g.from = nv[0].start;
	g.to = nv[nn - 1].end;
	if(c->source)
		snprintf(g.source, sizeof(g.source), "%s", c->source);
	rc = group_put(s, txn, gid, &g);
	if(rc)
		return rc;
	c->res.group_id = gid;
	return 0;
}

int store_put_answer(struct store *s, const struct series_ref *ref, enum rtime_zone zone,
                     const struct slot_list *slots, int64_t fetched_at, const char *source,
                     struct store_write_result *res)
{
	struct put_ctx c;
	size_t i;
	int rc;

	if(res)
		memset(res, 0, sizeof(*res));
	if(!s || !ref_valid(ref) || !slots || (unsigned)zone > RTIME_NEM)
		return RP_EINVAL;
	if(slots->n == 0)
		return 0;
	if(!slots->v || slots->n > SLOT_LIST_MAX || !slots->unit[0] ||
	   !memchr(slots->unit, 0, SLOT_UNIT_SIZE))
		return RP_EINVAL;
	/* cheap re-check of what the layout relies on: ordered,
	 * non-overlapping, lengths that fit the 32-bit length field */
	for(i = 0; i < slots->n; i++) {
		const struct slot *x = &slots->v[i];
		if(x->end <= x->start || x->end - x->start > 86400 || (i && x->start < slots->v[i - 1].end))
			return RP_EINVAL;
	}
	memset(&c, 0, sizeof(c));
	c.ref = ref;
	c.zone = zone;
	c.slots = slots;
	c.fetched_at = fetched_at;
	c.source = source;
	rc = write_txn(s, "put_answer", put_fn, &c);
	free(c.held);
	if(rc == RP_ENOENT && c.nothing) {
		memset(&c.res, 0, sizeof(c.res));
		rc = 0;
	}
	if(rc)
		return rc;
	if(c.conflicts)
		log_warn("store_answer_conflict", "provider=%s series=%s dropped=%zu", ref->provider, ref->id,
		         c.conflicts);
	if(c.replaced)
		log_info("store_slots_replaced", "provider=%s series=%s replaced=%zu", ref->provider, ref->id,
		         c.replaced);
	if(res)
		*res = c.res;
	return 0;
}

/* --- lookups -------------------------------------------------------------- */

void store_lookup_init(struct store_lookup *l)
{
	memset(l, 0, sizeof(*l));
	slot_list_init(&l->slots);
}

void store_lookup_free(struct store_lookup *l)
{
	slot_list_free(&l->slots);
}

static void add_missing(struct store_lookup *out, int64_t from, int64_t to)
{
	if(out->n_missing < STORE_MAX_MISSING) {
		out->missing[out->n_missing].from = from;
		out->missing[out->n_missing].to = to;
		out->n_missing++;
	} else
		out->truncated_missing = 1;
}

/*
 * The scan behind store_lookup, inside a read transaction: one seek, then
 * whole pages of the series' items (MDB_GET_MULTIPLE, then
 * MDB_NEXT_MULTIPLE) until a slot starts at or after `to`. A page may
 * begin before the seek position; its items that end by `from` are
 * skipped. The loop keeps its state in locals (the slot stores could
 * alias out->...) and appends without a call while the list has room.
 */
static int lookup_scan(struct reader *r, uint32_t num, int64_t from, int64_t to, struct store_lookup *out)
{
	unsigned char kb[SLOT_NUM_SIZE], probe[SLOT_ITEM_SIZE];
	struct slot_list *sl = &out->slots;
	struct slot *vec = sl->v;
	size_t n = sl->n, cap = sl->cap;
	int64_t pos = from, lo = 0, hi = 0, last = INT64_MIN;
	MDB_val k, v;
	int rc, stop = 0;

	rc = slots_seek(r->slots, &k, &v, kb, probe, num, from);
	/* a series holding a single slot has no page of duplicates: then
	 * MDB_GET_MULTIPLE leaves v on that slot, which is what we want */
	if(rc == 0)
		rc = mdb_cursor_get(r->slots, &k, &v, MDB_GET_MULTIPLE);
	while(rc == 0 && !stop) {
		const unsigned char *p = v.mv_data;
		size_t i, m = v.mv_size / SLOT_ITEM_SIZE;

		if(!m || v.mv_size % SLOT_ITEM_SIZE) {
			rc = MDB_CORRUPTED;
			break;
		}
		for(i = 0; i < m; i++, p += SLOT_ITEM_SIZE) {
			int64_t start = slot_item_start(p), end, fetched;
			double value, exc;

			if(start <= last)
				continue;
			if(start >= to) {
				stop = 1;
				break;
			}
			end = start + get_u32le(p + 8);
			if(end <= from)
				continue;
			last = start;
			value = get_f64le(p + 12);
			exc = get_f64le(p + 20);
			fetched = get_i64le(p + 36);
			if(start > pos)
				add_missing(out, pos, start);
			if(end > pos)
				pos = end;
			if(n == cap) {
				/* grow through slot_list_push (it owns the policy
				 * and the SLOT_LIST_MAX cap), then go on in place */
				sl->n = n;
				rc = slot_list_push(sl, start, end, value, exc);
				if(rc) {
					stop = 1;
					break;
				}
				vec = sl->v;
				n = sl->n;
				cap = sl->cap;
			} else {
				struct slot *x = &vec[n++];
				x->start = start;
				x->end = end;
				x->value = value;
				x->value_exc_vat = exc;
			}
			if(fetched) {
				if(!lo || fetched < lo)
					lo = fetched;
				if(fetched > hi)
					hi = fetched;
			}
		}
		if(!stop)
			rc = mdb_cursor_get(r->slots, &k, &v, MDB_NEXT_MULTIPLE);
	}
	sl->n = n;
	out->fetched_at = lo;
	out->newest_fetched_at = hi;
	if(rc && rc != MDB_NOTFOUND)
		return rc;
	if(pos < to)
		add_missing(out, pos, to);
	return 0;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	while(n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* The series' number (0 when unknown) and unit, through the reader's
 * memo for this snapshot. */
static int lookup_series(struct store *s, struct reader *r, const struct series_ref *ref, uint32_t *num,
                         char unit[SLOT_UNIT_SIZE])
{
	unsigned char kb[SERIES_KEY_MAX];
	size_t klen = series_key(kb, ref);
	size_t txnid = mdb_txn_id(r->txn);
	struct series_memo *m = NULL;
	struct store_series rec;
	int rc;

	if(!klen)
		return RP_EINVAL;
	if(!r->smemo)
		r->smemo = calloc(SERIES_CACHE, sizeof(*r->smemo)); /* NULL: go without */
	if(r->smemo) {
		m = &r->smemo[fnv1a(kb, klen) % SERIES_CACHE];
		if(m->txnid == txnid && m->klen == klen && memcmp(m->key, kb, klen) == 0) {
			*num = m->num;
			memcpy(unit, m->unit, SLOT_UNIT_SIZE);
			return 0;
		}
	}
	memset(&rec, 0, sizeof(rec));
	rc = series_find(s, r->txn, ref, num, &rec);
	if(rc == MDB_NOTFOUND)
		*num = 0;
	else if(rc)
		return rc;
	memcpy(unit, rec.unit, SLOT_UNIT_SIZE);
	if(m) {
		m->txnid = txnid;
		m->num = *num;
		m->klen = (unsigned char)klen;
		memcpy(m->key, kb, klen);
		memcpy(m->unit, rec.unit, SLOT_UNIT_SIZE);
	}
	return 0;
}

int store_lookup(struct store *s, const struct series_ref *ref, int64_t from, int64_t to,
                 struct store_lookup *out)
{
	struct reader *r;
	uint32_t num = 0;
	int rc;

	if(!out)
		return RP_EINVAL;
	slot_list_clear(&out->slots);
	out->slots.unit[0] = '\0';
	out->n_missing = 0;
	out->truncated_missing = 0;
	out->fetched_at = 0;
	out->newest_fetched_at = 0;
	if(!s || !ref || from > to)
		return RP_EINVAL;
	rc = read_begin(s, "lookup", &r);
	if(rc)
		return rc;
	rc = lookup_series(s, r, ref, &num, out->slots.unit);
	if(rc == 0 && num == 0) {
		if(from < to)
			add_missing(out, from, to);
	} else if(rc == 0 && from < to)
		rc = lookup_scan(r, num, from, to, out);
	read_end(s, r);
	return lmdb_code(s, "lookup", rc);
}

int store_complete_until(struct store *s, const struct series_ref *ref, int64_t *out)
{
	unsigned char kb[SLOT_NUM_SIZE];
	MDB_val k = {sizeof(kb), kb}, v;
	struct reader *r;
	uint32_t num;
	int rc;

	if(!s || !ref || !out)
		return RP_EINVAL;
	*out = 0;
	rc = read_begin(s, "complete_until", &r);
	if(rc)
		return rc;
	rc = series_find(s, r->txn, ref, &num, NULL);
	if(rc == 0) {
		slot_num_key(kb, num);
		rc = mdb_cursor_get(r->slots, &k, &v, MDB_SET_KEY);
		if(rc == 0)
			rc = mdb_cursor_get(r->slots, &k, &v, MDB_LAST_DUP);
		if(rc == 0) {
			struct held h;
			if(slot_decode(&v, &h))
				rc = MDB_CORRUPTED;
			else
				*out = h.end;
		}
	}
	read_end(s, r);
	if(rc == MDB_NOTFOUND)
		rc = 0;
	return lmdb_code(s, "complete_until", rc);
}

int store_group_each(struct store *s, int (*fn)(const struct store_group *g, void *arg), void *arg)
{
	struct reader *r;
	MDB_cursor *cur = NULL;
	struct store_series srec;
	uint32_t cached = 0;
	MDB_val k, v;
	int rc, stop = 0;

	if(!s || !fn)
		return RP_EINVAL;
	rc = read_begin(s, "group_each", &r);
	if(rc)
		return rc;
	memset(&srec, 0, sizeof(srec));
	rc = mdb_cursor_open(r->txn, s->db_groups, &cur);
	if(rc)
		goto out;
	for(rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_group out;
		struct group_rec g;
		if(k.mv_size != GROUP_KEY_SIZE || group_decode(&v, &g)) {
			rc = MDB_CORRUPTED;
			goto out;
		}
		if(g.num != cached) {
			memset(&srec, 0, sizeof(srec));
			rc = series_by_num(s, r->txn, g.num, &srec);
			if(rc && rc != MDB_NOTFOUND)
				goto out;
			cached = g.num;
		}
		memset(&out, 0, sizeof(out));
		out.id = get_u64be(k.mv_data);
		out.ref = srec.ref;
		out.fetched_at = g.fetched_at;
		out.from = g.from;
		out.to = g.to;
		out.slot_count = g.count;
		memcpy(out.source, g.source, sizeof(out.source));
		stop = fn(&out, arg);
		if(stop)
			break;
	}
	rc = 0;
out:
	if(cur)
		mdb_cursor_close(cur);
	read_end(s, r);
	if(stop)
		return stop;
	return lmdb_code(s, "group_each", rc);
}

/* --- size and GC ------------------------------------------------------- */

/* Pages in use: every page up to the last one written, less the free
 * pages the free list holds (as mdb_stat -f counts them); mdb_stat per
 * database would miss the sub-trees of the duplicate slots. RP_EBUSY when
 * the meta read is newer than the snapshot (a commit in between). */
static int used_pages(struct store *s, struct reader *r, uint64_t *pages)
{
	MDB_envinfo info;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t free_pages = 0;
	int rc;

	mdb_env_info(s->env, &info);
	if(info.me_last_txnid != mdb_txn_id(r->txn))
		return RP_EBUSY;
	rc = mdb_cursor_open(r->txn, 0 /* the free list */, &cur);
	if(rc)
		return rc;
	while((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		size_t cnt;
		if(v.mv_size < sizeof(cnt)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&cnt, v.mv_data, sizeof(cnt));
		free_pages += cnt;
	}
	mdb_cursor_close(cur);
	if(rc != MDB_NOTFOUND)
		return rc;
	*pages = info.me_last_pgno + 1 > free_pages ? info.me_last_pgno + 1 - free_pages : 0;
	return 0;
}

int store_used_bytes(struct store *s, uint64_t *out)
{
	uint64_t pages = 0;
	int attempt, rc = 0;

	if(!s || !out)
		return RP_EINVAL;
	*out = 0;
	for(attempt = 0; attempt < 16; attempt++) {
		struct reader *r;
		rc = read_begin(s, "used_bytes", &r);
		if(rc)
			return rc;
		rc = used_pages(s, r, &pages);
		read_end(s, r);
		if(rc != RP_EBUSY)
			break;
	}
	if(rc == RP_EBUSY)
		rc = RP_ESTORE; /* commits never paused: give up rather than spin */
	*out = pages * s->psize;
	return lmdb_code(s, "used_bytes", rc);
}

struct gc_ctx {
	int64_t now;
	uint64_t after; /* resume after this group id */
	uint64_t want;  /* bytes this batch should free */
	/* per batch, reset on retry */
	size_t groups, slots;
	uint64_t last_gid;
	int exhausted; /* every group was seen */
};

/* Evicts the unprotected slots of one group; *kept gets what stays. */
static int gc_group(struct store *s, MDB_txn *txn, uint64_t gid, const struct group_rec *g, int64_t now,
                    size_t *evicted, uint32_t *kept)
{
	unsigned char kb[SLOT_NUM_SIZE], probe[SLOT_ITEM_SIZE];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	struct store_series rec;
	int64_t pfrom, pto;
	int rc;

	*kept = 0;
	*evicted = 0;
	memset(&rec, 0, sizeof(rec));
	rc = series_by_num(s, txn, g->num, &rec);
	if(rc && rc != MDB_NOTFOUND)
		return rc;
	if(rc)
		rec.zone = RTIME_UTC;
	pfrom = rtime_day_add(rec.zone, now, -2);
	pto = rtime_day_add(rec.zone, now, 2);

	rc = mdb_cursor_open(txn, s->db_slots, &cur);
	if(rc)
		return rc;
	rc = slots_seek(cur, &k, &v, kb, probe, g->num, g->from);
	while(rc == 0) {
		struct held h;
		if(slot_decode(&v, &h)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if(h.start >= g->to)
			break;
		if(h.gid != gid) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
			continue;
		}
		if(h.start < pto && h.end > pfrom) {
			(*kept)++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
			continue;
		}
		rc = mdb_cursor_del(cur, 0); /* this duplicate only */
		if(rc)
			break;
		(*evicted)++;
		/* seek the next one rather than trust the cursor after a delete */
		k.mv_size = SLOT_NUM_SIZE;
		k.mv_data = kb;
		slot_probe(probe, h.start + 1);
		v.mv_size = SLOT_ITEM_SIZE;
		v.mv_data = probe;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One batch of GC, oldest group first, until about c->want bytes are
 * freed or GC_BATCH_GROUPS groups were seen. Each group is found again
 * by key, so no cursor is used across a delete. */
static int gc_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct gc_ctx *c = arg;
	unsigned char kb[GROUP_KEY_SIZE];
	MDB_cursor *cur = NULL;
	uint64_t freed = 0;
	int n, rc;

	c->groups = c->slots = 0;
	c->last_gid = c->after;
	c->exhausted = 0;
	rc = mdb_cursor_open(txn, s->db_groups, &cur);
	if(rc)
		return rc;
	for(n = 0; n < GC_BATCH_GROUPS && freed < c->want; n++) {
		MDB_val k = {sizeof(kb), kb}, v;
		struct group_rec g;
		uint64_t gid;
		size_t ev;
		uint32_t kept;

		if(c->last_gid == UINT64_MAX) {
			c->exhausted = 1;
			break;
		}
		group_key(kb, c->last_gid + 1);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if(rc == MDB_NOTFOUND) {
			c->exhausted = 1;
			rc = 0;
			break;
		}
		if(rc)
			break;
		if(k.mv_size != GROUP_KEY_SIZE || group_decode(&v, &g)) {
			rc = MDB_CORRUPTED;
			break;
		}
		gid = get_u64be(k.mv_data);
		c->last_gid = gid;
		rc = gc_group(s, txn, gid, &g, c->now, &ev, &kept);
		if(rc)
			break;
		c->slots += ev;
		freed += (uint64_t)ev * SLOT_ITEM_SIZE;
		if(kept == 0) {
			rc = group_del(s, txn, gid);
			c->groups++;
			freed += GROUP_KEY_SIZE + GROUP_VAL_MIN;
		} else if(kept != g.count) {
			g.count = kept;
			rc = group_put(s, txn, gid, &g);
		}
		if(rc)
			break;
	}
	mdb_cursor_close(cur);
	return rc;
}

static int gc_mark_fn(struct store *s, MDB_txn *txn, void *arg)
{
	return sys_put_u64(s, txn, "last_gc", (uint64_t) * (const int64_t *)arg);
}

int store_gc(struct store *s, int64_t now, uint64_t max_bytes, struct store_gc_result *res)
{
	struct gc_ctx c;
	struct store_gc_result r;
	uint64_t bound, used = 0;
	int rc;

	if(res)
		memset(res, 0, sizeof(*res));
	if(!s)
		return RP_EINVAL;
	memset(&r, 0, sizeof(r));
	memset(&c, 0, sizeof(c));
	c.now = now;
	bound = max_bytes ? max_bytes : s->max_bytes;
	rc = store_used_bytes(s, &used);
	if(rc)
		return rc;
	r.bytes_before = used;
	/* Short write transactions: evict about what is over the bound,
	 * commit (freed pages count only once committed), measure again. */
	while(used > bound) {
		c.want = used - bound;
		rc = write_txn(s, "gc", gc_fn, &c);
		if(rc)
			break;
		r.groups_evicted += c.groups;
		r.slots_evicted += c.slots;
		c.after = c.last_gid;
		rc = store_used_bytes(s, &used);
		if(rc || c.exhausted)
			break;
	}
	/* LMDB reuses pages freed by a commit only once a later commit
	 * exists (the newest two snapshots stay whole): record when GC ran,
	 * so that what it freed is usable by the very next write. */
	if(!rc && (r.groups_evicted || r.slots_evicted))
		rc = write_txn(s, "gc", gc_mark_fn, &now);
	r.bytes_after = used;
	if(r.groups_evicted || r.slots_evicted)
		log_info("store_gc", "groups=%zu slots=%zu bytes_before=%llu bytes_after=%llu bound=%llu",
		         r.groups_evicted, r.slots_evicted, (unsigned long long)r.bytes_before,
		         (unsigned long long)r.bytes_after, (unsigned long long)bound);
	if(!rc && r.bytes_after > bound)
		log_warn("store_gc_over_bound", "bytes=%llu bound=%llu reason=\"only protected days left\"",
		         (unsigned long long)r.bytes_after, (unsigned long long)bound);
	if(res)
		*res = r;
	return rc;
}

/* --- tokens ------------------------------------------------------------- */

static int token_key_valid(const char *key)
{
	size_t i, n;

	if(!key)
		return 0;
	n = strnlen(key, TOKEN_KEY_MAX + 1);
	if(n == 0 || n > TOKEN_KEY_MAX)
		return 0;
	for(i = 0; i < n; i++) {
		char ch = key[i];
		if(!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return 0;
	}
	return 1;
}

struct token_ctx {
	const char *key;
	const struct store_token *tok;
};

static int token_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct token_ctx *c = arg;
	size_t al = strnlen(c->tok->access, sizeof(c->tok->access));
	size_t rl = strnlen(c->tok->refresh, sizeof(c->tok->refresh));
	MDB_val k = {strlen(c->key), (void *)c->key}, v;
	unsigned char *p;
	int rc;

	v.mv_size = TOKEN_HDR_SIZE + al + rl;
	v.mv_data = NULL;
	rc = mdb_put(txn, s->db_tokens, &k, &v, MDB_RESERVE);
	if(rc)
		return rc;
	p = v.mv_data;
	put_i64le(p, c->tok->expires_at);
	put_i64le(p + 8, c->tok->refresh_expires_at);
	put_i64le(p + 16, c->tok->obtained_at);
	put_u16le(p + 24, (uint16_t)al);
	put_u16le(p + 26, (uint16_t)rl);
	memcpy(p + TOKEN_HDR_SIZE, c->tok->access, al);
	memcpy(p + TOKEN_HDR_SIZE + al, c->tok->refresh, rl);
	return 0;
}

int store_token_put(struct store *s, const char *key, const struct store_token *tok)
{
	struct token_ctx c = {key, tok};

	if(!s || !tok || !token_key_valid(key) || !memchr(tok->access, 0, sizeof(tok->access)) ||
	   !memchr(tok->refresh, 0, sizeof(tok->refresh)))
		return RP_EINVAL;
	return write_txn(s, "token_put", token_put_fn, &c);
}

int store_token_get(struct store *s, const char *key, struct store_token *out)
{
	MDB_val k, v;
	struct reader *r;
	int rc;

	if(!s || !out || !token_key_valid(key))
		return RP_EINVAL;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	rc = read_begin(s, "token_get", &r);
	if(rc)
		return rc;
	rc = mdb_get(r->txn, s->db_tokens, &k, &v);
	if(rc == 0) {
		const unsigned char *p = v.mv_data;
		size_t al, rl;
		if(v.mv_size < TOKEN_HDR_SIZE)
			rc = MDB_CORRUPTED;
		else {
			al = get_u16le(p + 24);
			rl = get_u16le(p + 26);
			if(al >= sizeof(out->access) || rl >= sizeof(out->refresh) ||
			   v.mv_size != TOKEN_HDR_SIZE + al + rl)
				rc = MDB_CORRUPTED;
			else {
				memset(out, 0, sizeof(*out));
				out->expires_at = get_i64le(p);
				out->refresh_expires_at = get_i64le(p + 8);
				out->obtained_at = get_i64le(p + 16);
				memcpy(out->access, p + TOKEN_HDR_SIZE, al);
				memcpy(out->refresh, p + TOKEN_HDR_SIZE + al, rl);
			}
		}
	}
	read_end(s, r);
	return lmdb_code(s, "token_get", rc);
}

struct del_ctx {
	MDB_dbi dbi;
	MDB_val key;
};

static int del_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct del_ctx *c = arg;
	int rc = mdb_del(txn, c->dbi, &c->key, NULL);

	(void)s;
	return rc == MDB_NOTFOUND ? RP_ENOENT : rc;
}

int store_token_delete(struct store *s, const char *key)
{
	struct del_ctx c;

	if(!s || !token_key_valid(key))
		return RP_EINVAL;
	c.dbi = s->db_tokens;
	c.key.mv_size = strlen(key);
	c.key.mv_data = (void *)key;
	return write_txn(s, "token_delete", del_fn, &c);
}

/* --- leases ------------------------------------------------------------- */

struct lease_ctx {
	const char *name;
	const char *owner;
	int64_t now;
	int ttl;
};

static int lease_acquire_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct lease_ctx *c = arg;
	size_t ol = strlen(c->owner);
	MDB_val k = {strlen(c->name), (void *)c->name}, v;
	unsigned char *p;
	int rc;

	rc = mdb_get(txn, s->db_leases, &k, &v);
	if(rc == 0) {
		if(v.mv_size < 8)
			return MDB_CORRUPTED;
		if(get_i64le(v.mv_data) > c->now &&
		   !(v.mv_size - 8 == ol && memcmp((const char *)v.mv_data + 8, c->owner, ol) == 0))
			return RP_EBUSY;
	} else if(rc != MDB_NOTFOUND)
		return rc;
	v.mv_size = 8 + ol;
	rc = mdb_put(txn, s->db_leases, &k, &v, MDB_RESERVE);
	if(rc)
		return rc;
	p = v.mv_data;
	put_i64le(p, c->now + c->ttl);
	memcpy(p + 8, c->owner, ol);
	return 0;
}

static int lease_args_valid(const char *name, const char *owner)
{
	return name && owner && name[0] && owner[0] &&
	       strnlen(name, LEASE_FIELD_MAX + 1) <= LEASE_FIELD_MAX &&
	       strnlen(owner, LEASE_FIELD_MAX + 1) <= LEASE_FIELD_MAX;
}

int store_lease_acquire(struct store *s, const char *name, const char *owner, int64_t now, int ttl_s)
{
	struct lease_ctx c = {name, owner, now, ttl_s};

	if(!s || !lease_args_valid(name, owner) || ttl_s <= 0)
		return RP_EINVAL;
	return write_txn(s, "lease_acquire", lease_acquire_fn, &c);
}

static int lease_release_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct lease_ctx *c = arg;
	size_t ol = strlen(c->owner);
	MDB_val k = {strlen(c->name), (void *)c->name}, v;
	int rc = mdb_get(txn, s->db_leases, &k, &v);

	if(rc == MDB_NOTFOUND)
		return 0;
	if(rc)
		return rc;
	if(v.mv_size < 8 || v.mv_size - 8 != ol || memcmp((const char *)v.mv_data + 8, c->owner, ol))
		return 0;
	return mdb_del(txn, s->db_leases, &k, NULL);
}

int store_lease_release(struct store *s, const char *name, const char *owner)
{
	struct lease_ctx c = {name, owner, 0, 0};

	if(!s || !lease_args_valid(name, owner))
		return RP_EINVAL;
	return write_txn(s, "lease_release", lease_release_fn, &c);
}

/* --- meta ------------------------------------------------------------------ */

struct meta_ctx {
	MDB_val key;
	const void *val;
	size_t len;
};

static int meta_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
	struct meta_ctx *c = arg;
	MDB_val v = {c->len, NULL};
	int rc = mdb_put(txn, s->db_meta, &c->key, &v, MDB_RESERVE);

	if(rc)
		return rc;
	if(c->len)
		memcpy(v.mv_data, c->val, c->len);
	return 0;
}

static int meta_key_valid(const char *key)
{
	return key && key[0] && strnlen(key, META_KEY_MAX + 1) <= META_KEY_MAX;
}

int store_meta_put(struct store *s, const char *key, const void *val, size_t len)
{
	struct meta_ctx c;

	if(!s || !meta_key_valid(key) || (len && !val) || len > META_VAL_MAX)
		return RP_EINVAL;
	c.key.mv_size = strlen(key);
	c.key.mv_data = (void *)key;
	c.val = val;
	c.len = len;
	return write_txn(s, "meta_put", meta_put_fn, &c);
}

int store_meta_get(struct store *s, const char *key, char **val, size_t *len)
{
	MDB_val k, v;
	struct reader *r;
	char *buf = NULL;
	int rc;

	if(val)
		*val = NULL;
	if(len)
		*len = 0;
	if(!s || !meta_key_valid(key) || !val)
		return RP_EINVAL;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	rc = read_begin(s, "meta_get", &r);
	if(rc)
		return rc;
	rc = mdb_get(r->txn, s->db_meta, &k, &v);
	if(rc == 0) {
		if(v.mv_size > META_VAL_MAX)
			rc = MDB_CORRUPTED;
		else if(!(buf = malloc(v.mv_size + 1)))
			rc = RP_ENOMEM;
		else {
			memcpy(buf, v.mv_data, v.mv_size);
			buf[v.mv_size] = '\0';
			*val = buf;
			if(len)
				*len = v.mv_size;
		}
	}
	read_end(s, r);
	return lmdb_code(s, "meta_get", rc);
}

int store_meta_delete(struct store *s, const char *key)
{
	struct del_ctx c;

	if(!s || !meta_key_valid(key))
		return RP_EINVAL;
	c.dbi = s->db_meta;
	c.key.mv_size = strlen(key);
	c.key.mv_data = (void *)key;
	return write_txn(s, "meta_delete", del_fn, &c);
}
