/*
 * test_store.c - the LMDB fetch-group store: DST days, resolution changes,
 * touching and partial answers, gap detection, GC with protected days,
 * leases across processes, a writer killed by SIGKILL, schema and damage
 * detection, map growth, tokens and meta.
 *
 * Each test gets a fresh directory under /tmp. Tests that fork never use
 * cmocka in the child: a child reports through its exit code or a pipe,
 * and opens its own store (LMDB: one environment per process).
 *
 * This test includes lmdb.h itself, to forge what another program or a
 * newer ratepool would leave in the directory (docs/architecture.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"
#include "ratepool/slot.h"
#include "ratepool/store.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HH  1800
#define DAY 86400

struct fx {
	char dir[64];  /* the temp directory */
	char path[96]; /* the store directory inside it */
	struct store *s;
	struct slot_list l;
	struct store_lookup lk;
};

static int64_t t_of(const char *text)
{
	int64_t t = 0;
	assert_int_equal(rtime_parse(text, &t), 0);
	return t;
}

/* A deterministic price for the slot starting at t. */
static double price_at(int64_t t)
{
	return (double)(t / 60 % 1000) / 1000.0 + 0.05;
}

static struct series_ref ref_of(const char *provider, const char *id)
{
	struct series_ref r;
	assert_int_equal(series_ref_set(&r, provider, id), 0);
	return r;
}

/* Slots of `step` seconds covering [from, to), values from price_at. */
static void fill(struct slot_list *l, int64_t from, int64_t to, int step)
{
	int64_t t;

	slot_list_clear(l);
	snprintf(l->unit, sizeof(l->unit), "GBP/kWh");
	for(t = from; t < to; t += step)
		assert_int_equal(slot_list_push(l, t, t + step, price_at(t), NAN), 0);
}

static int open_store(struct fx *f, uint64_t max_bytes, uint64_t initial_map)
{
	struct store_options o = {f->path, max_bytes, initial_map};
	struct rp_err err;
	rp_err_clear(&err);
	return store_open(&f->s, &o, &err);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if(!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ratepool-store-XXXXXX");
	if(!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store", f->dir);
	slot_list_init(&f->l);
	store_lookup_init(&f->lk);
	*state = f;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	slot_list_free(&f->l);
	store_lookup_free(&f->lk);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Checks that the lookup holds contiguous slots exactly covering [from, to). */
static void assert_complete(const struct store_lookup *lk, int64_t from, int64_t to)
{
	size_t i;

	assert_int_equal(lk->n_missing, 0);
	assert_true(lk->slots.n > 0);
	assert_true(lk->slots.v[0].start == from);
	assert_true(lk->slots.v[lk->slots.n - 1].end == to);
	for(i = 1; i < lk->slots.n; i++)
		assert_true(lk->slots.v[i].start == lk->slots.v[i - 1].end);
	for(i = 0; i < lk->slots.n; i++)
		assert_true(lk->slots.v[i].value == price_at(lk->slots.v[i].start));
}

struct group_list {
	size_t n;
	struct store_group g[256];
};

static int collect_group(const struct store_group *g, void *arg)
{
	struct group_list *gl = arg;
	if(gl->n < 256)
		gl->g[gl->n++] = *g;
	return 0;
}

static const struct store_group *find_group(const struct group_list *gl, uint64_t id)
{
	size_t i;
	for(i = 0; i < gl->n; i++)
		if(gl->g[i].id == id)
			return &gl->g[i];
	return NULL;
}

/* --- DST and resolution -------------------------------------------------- */

static void dst_day(void **state, const char *noon, size_t expect)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t t = t_of(noon);
	int64_t from = rtime_day_start(RTIME_LONDON, t);
	int64_t to = rtime_day_add(RTIME_LONDON, t, 1);
	struct store_write_result res;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, from, to, HH);
	assert_int_equal(f->l.n, expect);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, t, "rest", &res), 0);
	assert_int_equal(res.added, expect);
	assert_true(res.group_id > 0);
	assert_int_equal(store_lookup(f->s, &r, from, to, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, expect);
	assert_complete(&f->lk, from, to);
	assert_string_equal(f->lk.slots.unit, "GBP/kWh");
	assert_true(f->lk.fetched_at == t);
}

static void test_dst_spring_day_has_46_half_hours(void **state)
{
	dst_day(state, "2026-03-29T12:00:00Z", 46);
}

static void test_dst_autumn_day_has_50_half_hours(void **state)
{
	dst_day(state, "2026-10-25T12:00:00Z", 50);
}

static void test_resolution_change_60_to_15_minutes(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("tibber", "home-1");
	int64_t before = rtime_day_start(RTIME_CET, t_of("2025-09-30T12:00:00Z"));
	int64_t change = rtime_day_add(RTIME_CET, before, 1); /* 2025-10-01 local midnight */
	int64_t after = rtime_day_add(RTIME_CET, before, 2);
	struct store_series rec;
	size_t i;

	assert_true(change == t_of("2025-09-30T22:00:00Z"));
	assert_int_equal(open_store(f, 0, 0), 0);
	/* one answer for "today and tomorrow", hourly then quarter-hourly */
	fill(&f->l, before, change, 3600);
	for(i = 0; i < 96; i++)
		assert_int_equal(slot_list_push(&f->l, change + (int64_t)i * 900,
		                                change + (int64_t)(i + 1) * 900,
		                                price_at(change + (int64_t)i * 900), NAN),
		                 0);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, change, "graphql", NULL), 0);

	assert_int_equal(store_lookup(f->s, &r, before, after, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 24 + 96);
	assert_complete(&f->lk, before, after);
	for(i = 0; i < f->lk.slots.n; i++)
		assert_int_equal(f->lk.slots.v[i].end - f->lk.slots.v[i].start, i < 24 ? 3600 : 900);
	/* a lookup straddling the change returns both kinds */
	assert_int_equal(store_lookup(f->s, &r, change - 7200, change + 1800, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 2 + 2);
	assert_complete(&f->lk, change - 7200, change + 1800);
	assert_int_equal(store_series_get(f->s, &r, &rec), 0);
	assert_int_equal(rec.resolution, 900);
	assert_int_equal(rec.zone, RTIME_CET);

	/* the same days fetched again as two answers change nothing */
	fill(&f->l, before, change, 3600);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, change + 10, "graphql", NULL), 0);
	fill(&f->l, change, after, 900);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, change + 20, "graphql", NULL), 0);
	assert_int_equal(store_lookup(f->s, &r, before, after, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 24 + 96);
	assert_complete(&f->lk, before, after);
}

static void test_finer_answer_replaces_a_held_slot_it_fully_covers(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("energycharts", "DE-LU");
	int64_t t0 = t_of("2025-09-30T10:00:00Z");
	struct store_write_result res;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, t0, t0 + 3 * 3600, 3600);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, 100, "a", NULL), 0);
	/* quarter-hours over the middle hour, exactly covering it */
	fill(&f->l, t0 + 3600, t0 + 7200, 900);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, 200, "b", &res), 0);
	assert_int_equal(res.changed, 4);
	assert_int_equal(res.added, 0);
	assert_int_equal(store_lookup(f->s, &r, t0, t0 + 3 * 3600, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1 + 4 + 1);
	assert_complete(&f->lk, t0, t0 + 3 * 3600);
}

static void test_partial_finer_answer_keeps_the_held_coarse_slot(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("energycharts", "DE-LU");
	int64_t t0 = t_of("2025-09-30T10:00:00Z");
	struct store_write_result res;
	struct group_list gl = {0};

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, t0, t0 + 3600, 3600);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, 100, "a", NULL), 0);
	/* two quarter-hours only: taking them would lose 10:30-11:00 */
	fill(&f->l, t0, t0 + 1800, 900);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_CET, &f->l, 200, "b", &res), 0);
	assert_true(res.group_id == 0);
	assert_int_equal(res.added + res.changed + res.touched, 0);
	assert_int_equal(store_lookup(f->s, &r, t0, t0 + 3600, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
	assert_int_equal(f->lk.slots.v[0].end - f->lk.slots.v[0].start, 3600);
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 1);
	/* nor did the refused answer change the series' resolution */
	{
		struct store_series rec;
		assert_int_equal(store_series_get(f->s, &r, &rec), 0);
		assert_int_equal(rec.resolution, 3600);
	}
}

/* --- touching, partial and empty answers --------------------------------- */

static void test_overlapping_answer_moves_slots_to_newer_group(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct store_write_result a, b, c;
	struct group_list gl = {0};
	size_t i;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, d0, d0 + 2 * DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 1000, "rest", &a), 0);
	assert_int_equal(a.added, 96);

	/* second answer: noon day 0 to noon day 1, ten values revised */
	fill(&f->l, d0 + DAY / 2, d0 + DAY + DAY / 2, HH);
	for(i = 0; i < 10; i++)
		f->l.v[i].value += 1.0;
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 2000, "rest", &b), 0);
	assert_true(b.group_id > a.group_id);
	assert_int_equal(b.added, 0);
	assert_int_equal(b.changed, 10);
	assert_int_equal(b.touched, 38);

	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 2);
	assert_true(gl.g[0].id == a.group_id); /* oldest first */
	assert_int_equal(gl.g[0].slot_count, 48);
	assert_int_equal(find_group(&gl, b.group_id)->slot_count, 48);
	assert_true(find_group(&gl, b.group_id)->fetched_at == 2000);
	assert_string_equal(gl.g[0].ref.id, "E-1R-AGILE-24-10-01-C");
	assert_string_equal(gl.g[0].source, "rest");

	assert_int_equal(store_lookup(f->s, &r, d0, d0 + 2 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 96); /* no duplicates */
	assert_int_equal(f->lk.n_missing, 0);
	for(i = 1; i < f->lk.slots.n; i++)
		assert_true(f->lk.slots.v[i].start == f->lk.slots.v[i - 1].end);
	assert_true(f->lk.slots.v[24].value == price_at(f->lk.slots.v[24].start) + 1.0);
	assert_true(f->lk.slots.v[34].value == price_at(f->lk.slots.v[34].start));
	assert_true(f->lk.fetched_at == 1000);
	assert_true(f->lk.newest_fetched_at == 2000);

	/* a third answer covering everything empties (and drops) both */
	fill(&f->l, d0, d0 + 3 * DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 3000, "rest", &c), 0);
	assert_int_equal(c.added, 48);
	assert_int_equal(c.changed, 10);
	assert_int_equal(c.touched, 86);
	memset(&gl, 0, sizeof(gl));
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 1);
	assert_true(gl.g[0].id == c.group_id);
	assert_int_equal(gl.g[0].slot_count, 144);
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + 3 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 144);
	assert_complete(&f->lk, d0, d0 + 3 * DAY);
}

static void test_partial_answer_next_to_held_one_keeps_both(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct store_write_result res;
	int64_t cu = 0;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, d0, d0 + DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 1000, "rest", NULL), 0);
	/* the next day's rates arrive partly (the first 10 half-hours) */
	fill(&f->l, d0 + DAY, d0 + DAY + 10 * HH, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 2000, "rest", &res), 0);
	assert_int_equal(res.added, 10);
	assert_int_equal(res.touched + res.changed, 0);

	assert_int_equal(store_lookup(f->s, &r, d0, d0 + 2 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 58);
	assert_int_equal(f->lk.n_missing, 1);
	assert_true(f->lk.missing[0].from == d0 + DAY + 10 * HH);
	assert_true(f->lk.missing[0].to == d0 + 2 * DAY);
	assert_int_equal(store_complete_until(f->s, &r, &cu), 0);
	assert_true(cu == d0 + DAY + 10 * HH);
}

static void test_partial_answer_keeps_held_slots(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct store_write_result res;
	struct group_list gl = {0};

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, d0, d0 + DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 1000, "rest", NULL), 0);
	/* a truncated re-fetch of the same day: 5 slots, held values */
	fill(&f->l, d0 + 20 * HH, d0 + 25 * HH, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 2000, "rest", &res), 0);
	assert_int_equal(res.touched, 5);
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	assert_complete(&f->lk, d0, d0 + DAY);
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 2);
	assert_int_equal(gl.g[0].slot_count, 43);
	assert_int_equal(gl.g[1].slot_count, 5);
}

static void test_empty_answer_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	struct series_ref other = ref_of("octopus", "never-seen");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct store_write_result res;
	struct group_list gl = {0};
	struct store_series rec;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, d0, d0 + DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 1000, "rest", NULL), 0);
	slot_list_clear(&f->l);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, 2000, "rest", &res), 0);
	assert_true(res.group_id == 0);
	assert_int_equal(res.added + res.changed + res.touched, 0);
	assert_int_equal(store_put_answer(f->s, &other, RTIME_LONDON, &f->l, 2000, "rest", &res), 0);
	assert_int_equal(store_series_get(f->s, &other, &rec), RP_ENOENT);

	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	assert_complete(&f->lk, d0, d0 + DAY);
	assert_true(f->lk.fetched_at == 1000);
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 1);
	assert_int_equal(gl.g[0].slot_count, 48);
}

static void test_put_refuses_unsorted_or_overlapping_slots(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "X");
	struct series_ref bad;

	assert_int_equal(open_store(f, 0, 0), 0);
	fill(&f->l, 0, 4 * HH, HH);
	f->l.v[2].start -= 60; /* overlaps the one before */
	assert_int_equal(store_put_answer(f->s, &r, RTIME_UTC, &f->l, 1, "x", NULL), RP_EINVAL);
	fill(&f->l, 0, 4 * HH, HH);
	f->l.unit[0] = '\0';
	assert_int_equal(store_put_answer(f->s, &r, RTIME_UTC, &f->l, 1, "x", NULL), RP_EINVAL);
	fill(&f->l, 0, 4 * HH, HH);
	memset(&bad, 0, sizeof(bad));
	snprintf(bad.provider, sizeof(bad.provider), "octopus");
	snprintf(bad.id, sizeof(bad.id), "a/b");
	assert_int_equal(store_put_answer(f->s, &bad, RTIME_UTC, &f->l, 1, "x", NULL), RP_EINVAL);
}

/* --- lookups and gaps ------------------------------------------------------ */

static void put_range(struct fx *f, const struct series_ref *r, int64_t from, int64_t to, int step)
{
	fill(&f->l, from, to, step);
	assert_int_equal(store_put_answer(f->s, r, RTIME_UTC, &f->l, from, "t", NULL), 0);
}

static void test_gap_detection_finds_every_hole(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("aemo", "NSW1");
	int64_t h = 3600, t0 = t_of("2026-11-21T00:00:00Z");

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, t0, t0 + 2 * h, HH);
	put_range(f, &r, t0 + 3 * h, t0 + 5 * h, HH);
	put_range(f, &r, t0 + 8 * h, t0 + 9 * h, HH);
	put_range(f, &r, t0 + 10 * h, t0 + 12 * h, HH);

	assert_int_equal(store_lookup(f->s, &r, t0 - h, t0 + 14 * h, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 14);
	assert_int_equal(f->lk.n_missing, 5);
	assert_true(f->lk.missing[0].from == t0 - h && f->lk.missing[0].to == t0);
	assert_true(f->lk.missing[1].from == t0 + 2 * h && f->lk.missing[1].to == t0 + 3 * h);
	assert_true(f->lk.missing[2].from == t0 + 5 * h && f->lk.missing[2].to == t0 + 8 * h);
	assert_true(f->lk.missing[3].from == t0 + 9 * h && f->lk.missing[3].to == t0 + 10 * h);
	assert_true(f->lk.missing[4].from == t0 + 12 * h && f->lk.missing[4].to == t0 + 14 * h);
	assert_int_equal(f->lk.truncated_missing, 0);

	/* starting inside a slot returns that slot; starting in a hole, the hole */
	assert_int_equal(store_lookup(f->s, &r, t0 + 600, t0 + 3 * h + 60, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 4 + 1);
	assert_true(f->lk.slots.v[0].start == t0);
	assert_int_equal(f->lk.n_missing, 1);
	assert_true(f->lk.missing[0].from == t0 + 2 * h && f->lk.missing[0].to == t0 + 3 * h);
	assert_int_equal(store_lookup(f->s, &r, t0 + 6 * h, t0 + 8 * h + HH, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
	assert_int_equal(f->lk.n_missing, 1);
	assert_true(f->lk.missing[0].from == t0 + 6 * h && f->lk.missing[0].to == t0 + 8 * h);
	/* an empty range: nothing, nothing missing */
	assert_int_equal(store_lookup(f->s, &r, t0, t0, &f->lk), 0);
	assert_int_equal(f->lk.slots.n + f->lk.n_missing, 0);
	assert_int_equal(store_lookup(f->s, &r, t0 + 1, t0, &f->lk), RP_EINVAL);
}

static void test_gap_detection_reports_truncation(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("aemo", "VIC1");
	int64_t t0 = t_of("2026-11-21T00:00:00Z");
	int i;

	assert_int_equal(open_store(f, 0, 0), 0);
	slot_list_clear(&f->l);
	snprintf(f->l.unit, sizeof(f->l.unit), "AUD/kWh");
	for(i = 0; i < 40; i++) /* every other 5 minutes */
		assert_int_equal(slot_list_push(&f->l, t0 + i * 600, t0 + i * 600 + 300, 0.1, NAN), 0);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_NEM, &f->l, 1, "t", NULL), 0);
	assert_int_equal(store_lookup(f->s, &r, t0, t0 + 40 * 600, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 40);
	assert_int_equal(f->lk.n_missing, STORE_MAX_MISSING);
	assert_int_equal(f->lk.truncated_missing, 1);
}

static void test_unknown_series_is_one_missing_range(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "nope");
	int64_t cu = 123;

	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_lookup(f->s, &r, 1000, 5000, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 0);
	assert_int_equal(f->lk.n_missing, 1);
	assert_true(f->lk.missing[0].from == 1000 && f->lk.missing[0].to == 5000);
	assert_true(f->lk.fetched_at == 0);
	assert_int_equal(store_complete_until(f->s, &r, &cu), 0);
	assert_true(cu == 0);
}

static void test_lookups_keep_to_their_own_series(void **state)
{
	struct fx *f = *state;
	struct series_ref a = ref_of("octopus", "A"), b = ref_of("octopus", "B"), c = ref_of("octopus", "C");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	int64_t cu = 0;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &a, d0, d0 + DAY, HH);
	put_range(f, &b, d0 + DAY, d0 + 2 * DAY, HH);
	put_range(f, &c, d0 - DAY, d0, HH);
	/* b's first slot must not be mistaken for one of a's */
	assert_int_equal(store_lookup(f->s, &a, d0 + DAY - HH, d0 + 2 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
	assert_int_equal(store_lookup(f->s, &b, d0, d0 + DAY + 60, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
	assert_true(f->lk.missing[0].from == d0 && f->lk.missing[0].to == d0 + DAY);
	assert_int_equal(store_complete_until(f->s, &a, &cu), 0);
	assert_true(cu == d0 + DAY);
	assert_int_equal(store_complete_until(f->s, &b, &cu), 0);
	assert_true(cu == d0 + 2 * DAY);
	assert_int_equal(store_complete_until(f->s, &c, &cu), 0);
	assert_true(cu == d0);
}

static void test_lookup_does_not_allocate_once_warm(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "A");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct slot *v;
	size_t cap;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, d0, d0 + 7 * DAY, HH);
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	v = f->lk.slots.v;
	cap = f->lk.slots.cap;
	assert_int_equal(store_lookup(f->s, &r, d0 + 3 * DAY, d0 + 4 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	assert_ptr_equal(f->lk.slots.v, v);
	assert_int_equal(f->lk.slots.cap, cap);
}

static void test_series_with_a_single_slot(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("watttime", "CAISO_NORTH");
	int64_t t0 = t_of("2026-11-21T12:00:00Z");
	int64_t cu = 0;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, t0, t0 + 300, 300);
	assert_int_equal(store_lookup(f->s, &r, t0 - 600, t0 + 600, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
	assert_int_equal(f->lk.n_missing, 2);
	assert_int_equal(store_lookup(f->s, &r, t0 + 100, t0 + 200, &f->lk), 0); /* inside it */
	assert_int_equal(f->lk.slots.n, 1);
	assert_int_equal(f->lk.n_missing, 0);
	assert_int_equal(store_lookup(f->s, &r, t0 + 300, t0 + 600, &f->lk), 0); /* after it */
	assert_int_equal(f->lk.slots.n, 0);
	assert_int_equal(store_complete_until(f->s, &r, &cu), 0);
	assert_true(cu == t0 + 300);
}

static void test_lookup_sees_the_unit_of_the_newest_answer(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("watttime", "CAISO_NORTH");
	struct series_ref other = ref_of("watttime", "PJM");
	int64_t t0 = t_of("2026-11-21T12:00:00Z");

	assert_int_equal(open_store(f, 0, 0), 0);
	/* a lookup of a series not yet known is remembered as unknown... */
	assert_int_equal(store_lookup(f->s, &other, t0, t0 + 300, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 0);
	fill(&f->l, t0, t0 + 600, 300);
	snprintf(f->l.unit, sizeof(f->l.unit), "lbs_co2_per_mwh");
	assert_int_equal(store_put_answer(f->s, &r, RTIME_UTC, &f->l, 1, "t", NULL), 0);
	assert_int_equal(store_lookup(f->s, &r, t0, t0 + 600, &f->lk), 0);
	assert_string_equal(f->lk.slots.unit, "lbs_co2_per_mwh");
	/* ...and every commit makes the memo of the series read again */
	snprintf(f->l.unit, sizeof(f->l.unit), "percent");
	assert_int_equal(store_put_answer(f->s, &r, RTIME_UTC, &f->l, 2, "t", NULL), 0);
	assert_int_equal(store_lookup(f->s, &r, t0, t0 + 600, &f->lk), 0);
	assert_string_equal(f->lk.slots.unit, "percent");
	assert_int_equal(store_put_answer(f->s, &other, RTIME_UTC, &f->l, 3, "t", NULL), 0);
	assert_int_equal(store_lookup(f->s, &other, t0, t0 + 300, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
}

/* Random answers on a 5-minute grid for three interleaved series (many
 * pages of slots each), checked against a plain array after every
 * answer, then random unaligned lookups checked slot by slot and gap by
 * gap. */
#define MODEL_N 2016 /* a week of 5-minute slots */

struct model {
	double value[MODEL_N];
	int64_t fetched[MODEL_N]; /* 0: not held */
};

static unsigned rnd(unsigned *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_random_answers_match_a_model(void **state)
{
	struct fx *f = *state;
	static struct model m[3];
	int64_t t0 = t_of("2026-11-16T00:00:00Z");
	unsigned x = 2463534242u;
	int round, k;

	memset(m, 0, sizeof(m));
	assert_int_equal(open_store(f, 0, 0), 0);
	for(round = 0; round < 120; round++) {
		int si = (int)(rnd(&x) % 3);
		char id[8];
		struct series_ref r;
		int a = (int)(rnd(&x) % MODEL_N), n = 1 + (int)(rnd(&x) % 400), i;
		size_t added = 0, changed = 0, touched = 0;
		struct store_write_result res;

		if(a + n > MODEL_N)
			n = MODEL_N - a;
		snprintf(id, sizeof(id), "M%d", si);
		r = ref_of("aemo", id);
		slot_list_clear(&f->l);
		snprintf(f->l.unit, sizeof(f->l.unit), "AUD/kWh");
		for(i = a; i < a + n; i++) {
			double v = (rnd(&x) % 4 == 0) ? (double)(rnd(&x) % 1000) / 100.0
			                              : (m[si].fetched[i] ? m[si].value[i] : 1.0);
			if(!m[si].fetched[i])
				added++;
			else if(v != m[si].value[i])
				changed++;
			else
				touched++;
			m[si].value[i] = v;
			m[si].fetched[i] = 1000 + round;
			assert_int_equal(slot_list_push(&f->l, t0 + i * 300, t0 + (i + 1) * 300, v, NAN), 0);
		}
		assert_int_equal(store_put_answer(f->s, &r, RTIME_NEM, &f->l, 1000 + round, "m", &res), 0);
		assert_int_equal(res.added, added);
		assert_int_equal(res.changed, changed);
		assert_int_equal(res.touched, touched);
	}
	for(k = 0; k < 600; k++) {
		int si = (int)(rnd(&x) % 3), i;
		char id[8];
		struct series_ref r;
		int64_t from = t0 - 3000 + (int64_t)(rnd(&x) % ((MODEL_N + 20) * 300));
		int64_t to = from + 1 + (int64_t)(rnd(&x) % (300 * 300));
		size_t ns = 0, s_i = 0, g_i = 0;
		int64_t lo = 0, hi = 0, gap_from = -1;

		snprintf(id, sizeof(id), "M%d", si);
		r = ref_of("aemo", id);
		assert_int_equal(store_lookup(f->s, &r, from, to, &f->lk), 0);
		/* walk the model over [from, to) in 5-minute cells */
		for(i = -20; i < MODEL_N + 320; i++) {
			int64_t cs = t0 + (int64_t)i * 300, ce = cs + 300;
			int held = i >= 0 && i < MODEL_N && m[si].fetched[i];
			if(ce <= from || cs >= to)
				continue;
			if(held) {
				if(gap_from >= 0) {
					assert_true(g_i < f->lk.n_missing);
					assert_true(f->lk.missing[g_i].from == gap_from);
					assert_true(f->lk.missing[g_i].to == cs);
					g_i++;
					gap_from = -1;
				}
				assert_true(s_i < f->lk.slots.n);
				assert_true(f->lk.slots.v[s_i].start == cs);
				assert_true(f->lk.slots.v[s_i].value == m[si].value[i]);
				s_i++;
				ns++;
				if(!lo || m[si].fetched[i] < lo)
					lo = m[si].fetched[i];
				if(m[si].fetched[i] > hi)
					hi = m[si].fetched[i];
			} else if(gap_from < 0)
				gap_from = cs < from ? from : cs;
		}
		if(gap_from >= 0) {
			assert_true(g_i < f->lk.n_missing);
			assert_true(f->lk.missing[g_i].from == gap_from && f->lk.missing[g_i].to == to);
			g_i++;
		}
		assert_int_equal(f->lk.slots.n, ns);
		if(!f->lk.truncated_missing)
			assert_int_equal(f->lk.n_missing, g_i);
		assert_true(f->lk.fetched_at == lo);
		assert_true(f->lk.newest_fetched_at == hi);
	}
}

/* --- series records and groups ------------------------------------------- */

static int collect_series(const struct store_series *rec, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%s/%s,", rec->ref.provider, rec->ref.id);
	return 0;
}

static int stop_at_first(const struct store_series *rec, void *arg)
{
	(void)rec;
	(*(int *)arg)++;
	return 7;
}

static void test_series_records_round_trip_in_order(void **state)
{
	struct fx *f = *state;
	struct store_series rec, got;
	char order[256] = "";
	int calls = 0;
	int64_t d0 = t_of("2026-11-21T00:00:00Z");

	assert_int_equal(open_store(f, 0, 0), 0);
	memset(&rec, 0, sizeof(rec));
	rec.ref = ref_of("a-b", "x");
	snprintf(rec.unit, sizeof(rec.unit), "EUR/kWh");
	rec.resolution = 900;
	rec.zone = RTIME_CET;
	rec.tracked = 1;
	rec.last_requested = 111;
	rec.created_at = 99;
	assert_int_equal(store_series_put(f->s, &rec), 0);
	rec.ref = ref_of("a", "y");
	assert_int_equal(store_series_put(f->s, &rec), 0);
	rec.ref = ref_of("a", "x");
	assert_int_equal(store_series_put(f->s, &rec), 0);
	assert_int_equal(store_series_each(f->s, collect_series, order), 0);
	assert_string_equal(order, "a/x,a/y,a-b/x,");
	assert_int_equal(store_series_each(f->s, stop_at_first, &calls), 7);
	assert_int_equal(calls, 1);

	assert_int_equal(store_series_get(f->s, &rec.ref, &got), 0);
	assert_string_equal(got.ref.provider, "a");
	assert_string_equal(got.ref.id, "x");
	assert_string_equal(got.unit, "EUR/kWh");
	assert_int_equal(got.resolution, 900);
	assert_int_equal(got.zone, RTIME_CET);
	assert_int_equal(got.tracked, 1);
	assert_true(got.last_requested == 111 && got.created_at == 99);

	/* replacing the record keeps its slots (the number is kept) */
	put_range(f, &rec.ref, d0, d0 + DAY, HH);
	rec.tracked = 0;
	rec.last_requested = 222;
	assert_int_equal(store_series_put(f->s, &rec), 0);
	assert_int_equal(store_series_get(f->s, &rec.ref, &got), 0);
	assert_int_equal(got.tracked, 0);
	assert_true(got.last_requested == 222);
	assert_int_equal(store_lookup(f->s, &rec.ref, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
}

static void test_series_delete_removes_slots_and_groups(void **state)
{
	struct fx *f = *state;
	struct series_ref a = ref_of("octopus", "A"), b = ref_of("octopus", "B");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct group_list gl = {0};
	struct store_series got;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &a, d0, d0 + DAY, HH);
	put_range(f, &b, d0, d0 + DAY, HH);
	put_range(f, &a, d0 + DAY, d0 + 2 * DAY, HH);
	assert_int_equal(store_series_delete(f->s, &a), 0);
	assert_int_equal(store_series_get(f->s, &a, &got), RP_ENOENT);
	assert_int_equal(store_series_delete(f->s, &a), RP_ENOENT);
	assert_int_equal(store_lookup(f->s, &a, d0, d0 + 2 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 0);
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 1);
	assert_string_equal(gl.g[0].ref.id, "B");
	assert_int_equal(store_lookup(f->s, &b, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	/* a series made again starts empty */
	put_range(f, &a, d0, d0 + HH, HH);
	assert_int_equal(store_lookup(f->s, &a, d0, d0 + 2 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 1);
}

/* --- GC ---------------------------------------------------------------- */

static void test_gc_evicts_oldest_groups_and_keeps_protected_days(void **state)
{
	struct fx *f = *state;
	int64_t now = t_of("2026-06-15T12:00:00Z");
	int64_t pfrom = rtime_day_add(RTIME_LONDON, now, -2); /* 2026-06-13 local */
	int64_t pto = rtime_day_add(RTIME_LONDON, now, 2);    /* end of 2026-06-16 */
	int64_t first = rtime_day_add(RTIME_LONDON, now, -60);
	struct store_gc_result res;
	struct group_list gl = {0};
	uint64_t used = 0, bound;
	uint64_t straddle_gid;
	struct store_write_result w;
	char id[16];
	int d, k;

	assert_true(pfrom == t_of("2026-06-12T23:00:00Z"));
	assert_true(pto == t_of("2026-06-16T23:00:00Z"));
	assert_int_equal(open_store(f, 0, 0), 0);
	/* first (so the oldest group) an answer reaching from old days into
	 * the protected ones: only its protected slots may survive */
	{
		struct series_ref x = ref_of("octopus", "X");
		fill(&f->l, pfrom - 2 * DAY, pfrom + DAY, HH);
		assert_int_equal(store_put_answer(f->s, &x, RTIME_LONDON, &f->l, 1, "t", &w), 0);
		straddle_gid = w.group_id;
	}
	/* 60 old days then the protected ones, 8 series, a group per day */
	for(d = -60; d < 2; d++)
		for(k = 0; k < 8; k++) {
			struct series_ref r;
			int64_t day = rtime_day_add(RTIME_LONDON, now, d);
			snprintf(id, sizeof(id), "S%d", k);
			r = ref_of("octopus", id);
			fill(&f->l, day, rtime_day_add(RTIME_LONDON, day, 1), HH);
			assert_int_equal(store_put_answer(f->s, &r, RTIME_LONDON, &f->l, day, "t", NULL), 0);
		}
	assert_int_equal(store_used_bytes(f->s, &used), 0);
	assert_true(used > 1u << 20);

	/* under the bound: nothing happens */
	assert_int_equal(store_gc(f->s, now, used + (1u << 20), &res), 0);
	assert_int_equal(res.groups_evicted, 0);
	assert_int_equal(res.slots_evicted, 0);

	bound = used / 4;
	assert_int_equal(store_gc(f->s, now, bound, &res), 0);
	assert_true(res.groups_evicted > 0);
	assert_true(res.bytes_before == used);
	assert_true(res.bytes_after <= bound);
	assert_int_equal(store_used_bytes(f->s, &used), 0);
	assert_true(used <= bound);

	/* oldest first: what is left is the newest groups, and the evicted
	 * ones were each older than every one kept (ids grow with time) */
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_true(gl.n > 0 && gl.n < 256);
	for(k = 1; k < (int)gl.n; k++)
		assert_true(gl.g[k].id > gl.g[k - 1].id);
	assert_true(gl.g[0].id == straddle_gid);    /* kept, but only in part */
	assert_true(gl.g[1].id > straddle_gid + 1); /* the oldest day is gone */
	{
		struct series_ref s0 = ref_of("octopus", "S0");
		assert_int_equal(
		        store_lookup(f->s, &s0, first, rtime_day_add(RTIME_LONDON, first, 1), &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 0);
	}

	/* the protected days are all there, for every series */
	for(k = 0; k < 8; k++) {
		struct series_ref r;
		snprintf(id, sizeof(id), "S%d", k);
		r = ref_of("octopus", id);
		assert_int_equal(store_lookup(f->s, &r, pfrom, pto, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 4 * 48);
		assert_complete(&f->lk, pfrom, pto);
	}
	{
		struct series_ref x = ref_of("octopus", "X");
		const struct store_group *g = find_group(&gl, straddle_gid);
		assert_non_null(g);
		assert_int_equal(g->slot_count, 48);
		assert_int_equal(store_lookup(f->s, &x, pfrom - 2 * DAY, pfrom + DAY, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 48);
		assert_true(f->lk.slots.v[0].start == pfrom);
	}

	/* a bound nothing can meet: every unprotected slot goes, no more */
	assert_int_equal(store_gc(f->s, now, 1, &res), 0);
	memset(&gl, 0, sizeof(gl));
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	assert_int_equal(gl.n, 8 * 4 + 1);
	for(k = 0; k < 8; k++) {
		struct series_ref r;
		snprintf(id, sizeof(id), "S%d", k);
		r = ref_of("octopus", id);
		assert_int_equal(store_lookup(f->s, &r, first, pto + DAY, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 4 * 48);
	}
}

/* --- leases across processes ---------------------------------------------- */

/* Child: open its own store, wait for the go signal, try the lease. */
static void lease_child(const char *path, int go_fd, const char *owner, int64_t now)
{
	struct store_options o = {path, 0, 0};
	struct store *s = NULL;
	char b;
	int rc;

	if(store_open(&s, &o, NULL))
		_exit(3);
	if(read(go_fd, &b, 1) < 0)
		_exit(4);
	rc = store_lease_acquire(s, "octopus/E-1R-AGILE-24-10-01-C", owner, now, 60);
	store_close(s);
	_exit(rc == 0 ? 0 : rc == RP_EBUSY ? 1 : 2);
}

static void test_lease_two_processes_exactly_one_wins(void **state)
{
	struct fx *f = *state;
	const int n = 4;
	pid_t pid[4];
	int go[2], i, winners = 0, busy = 0;
	int64_t now = 1795262400;

	/* make the store before forking so the children only open it */
	assert_int_equal(open_store(f, 0, 0), 0);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pipe(go), 0);
	for(i = 0; i < n; i++) {
		char owner[32];
		snprintf(owner, sizeof(owner), "host:%d:child", i);
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if(pid[i] == 0) {
			close(go[1]);
			lease_child(f->path, go[0], owner, now);
		}
	}
	close(go[0]);
	usleep(100000);
	close(go[1]); /* every child's read returns at once */
	for(i = 0; i < n; i++) {
		int st = 0;
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st));
		if(WEXITSTATUS(st) == 0)
			winners++;
		else if(WEXITSTATUS(st) == 1)
			busy++;
	}
	assert_int_equal(winners, 1);
	assert_int_equal(busy, n - 1);

	/* taken over by another process once expired, not before */
	assert_int_equal(pipe(go), 0);
	pid[0] = fork();
	if(pid[0] == 0) {
		close(go[1]);
		lease_child(f->path, go[0], "host:99:late", now + 30);
	}
	close(go[0]);
	close(go[1]);
	{
		int st = 0;
		assert_int_equal(waitpid(pid[0], &st, 0), pid[0]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	}
	assert_int_equal(pipe(go), 0);
	pid[0] = fork();
	if(pid[0] == 0) {
		close(go[1]);
		lease_child(f->path, go[0], "host:99:late", now + 61);
	}
	close(go[0]);
	close(go[1]);
	{
		int st = 0;
		assert_int_equal(waitpid(pid[0], &st, 0), pid[0]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_lease_acquire(f->s, "octopus/E-1R-AGILE-24-10-01-C", "me", now + 62, 60),
	                 RP_EBUSY);
}

static void test_lease_renew_and_release_by_owner_only(void **state)
{
	struct fx *f = *state;
	const char *name = "tibber/home-1";

	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_lease_acquire(f->s, name, "a", 100, 10), 0);
	assert_int_equal(store_lease_acquire(f->s, name, "a", 105, 10), 0); /* renew */
	assert_int_equal(store_lease_acquire(f->s, name, "b", 112, 10), RP_EBUSY);
	assert_int_equal(store_lease_release(f->s, name, "b"), 0); /* not b's: no-op */
	assert_int_equal(store_lease_acquire(f->s, name, "b", 114, 10), RP_EBUSY);
	assert_int_equal(store_lease_release(f->s, name, "a"), 0);
	assert_int_equal(store_lease_acquire(f->s, name, "b", 114, 10), 0);
	assert_int_equal(store_lease_acquire(f->s, name, "", 114, 10), RP_EINVAL);
	assert_int_equal(store_lease_acquire(f->s, name, "c", 114, 0), RP_EINVAL);
}

/* --- a writer killed with SIGKILL ------------------------------------------ */

struct report {
	int64_t day;
	uint64_t gid;
};

static void writer_child(const char *path, int out_fd, int64_t d0)
{
	struct store_options o = {path, 0, 0};
	struct store_lookup lk;
	struct slot_list l;
	struct store *s = NULL;
	struct series_ref r;
	int64_t i;

	if(store_open(&s, &o, NULL))
		_exit(3);
	series_ref_set(&r, "octopus", "W");
	store_lookup_init(&lk);
	slot_list_init(&l);
	store_lookup(s, &r, d0, d0 + DAY, &lk); /* holds a reader slot from now on */
	snprintf(l.unit, sizeof(l.unit), "GBP/kWh");
	for(i = 0;; i++) {
		struct store_write_result res;
		struct report rep;
		int64_t day = d0 + i * DAY, t;
		slot_list_clear(&l);
		for(t = day; t < day + DAY; t += HH)
			slot_list_push(&l, t, t + HH, price_at(t), NAN);
		if(store_put_answer(s, &r, RTIME_UTC, &l, day, "loop", &res))
			_exit(5);
		rep.day = day;
		rep.gid = res.group_id;
		if(write(out_fd, &rep, sizeof(rep)) != sizeof(rep))
			_exit(6);
	}
}

static int read_report(int fd, struct report *rep)
{
	size_t got = 0;
	while(got < sizeof(*rep)) {
		ssize_t n = read(fd, (char *)rep + got, sizeof(*rep) - got);
		if(n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void test_writer_killed_mid_write_loses_no_committed_group(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "W");
	int64_t d0 = t_of("2020-01-01T00:00:00Z");
	static struct report reps[8192];
	static struct group_list gl;
	size_t n = 0, i;
	int p[2], st = 0, cleared = -1;
	pid_t pid;

	assert_int_equal(open_store(f, 0, 0), 0); /* create it */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0) {
		close(p[0]);
		writer_child(f->path, p[1], d0);
	}
	close(p[1]);
	while(n < 20)
		assert_int_equal(read_report(p[0], &reps[n++]), 0);
	/* open our own environment while the child writes, so the lock
	 * table (and the child's reader slot in it) outlives the child */
	assert_int_equal(open_store(f, 0, 0), 0);
	while(n < 30)
		assert_int_equal(read_report(p[0], &reps[n++]), 0);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	while(n < 8192 && read_report(p[0], &reps[n]) == 0)
		n++;
	close(p[0]);

	/* the dead child's reader slot is cleared, and writing still works
	 * (LMDB's robust write mutex recovers if it died holding it) */
	assert_int_equal(store_reader_check(f->s, &cleared), 0);
	assert_true(cleared >= 1);
	put_range(f, &r, d0 - DAY, d0, HH);
	store_close(f->s);
	f->s = NULL;

	assert_int_equal(open_store(f, 0, 0), 0);
	memset(&gl, 0, sizeof(gl));
	assert_int_equal(store_group_each(f->s, collect_group, &gl), 0);
	for(i = 0; i < n; i++) {
		const struct store_group *g = find_group(&gl, reps[i].gid);
		assert_non_null(g);
		assert_int_equal(g->slot_count, 48);
		assert_true(g->from == reps[i].day);
		assert_int_equal(store_lookup(f->s, &r, reps[i].day, reps[i].day + DAY, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 48);
		assert_complete(&f->lk, reps[i].day, reps[i].day + DAY);
	}
}

/* --- schema and damage ------------------------------------------------------ */

/* Opens the environment with plain LMDB (no store open in this process). */
static MDB_env *raw_open(const char *path)
{
	MDB_env *env = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	return env;
}

static void raw_put_sys(const char *path, const char *key, uint64_t v)
{
	MDB_env *env = raw_open(path);
	MDB_txn *txn;
	MDB_dbi dbi;
	uint64_t le = htole64(v);
	MDB_val k = {strlen(key), (void *)key}, val = {8, &le};

	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "sys", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static int open_with_err(struct fx *f, struct rp_err *err)
{
	struct store_options o = {f->path, 0, 0};
	rp_err_clear(err);
	return store_open(&f->s, &o, err);
}

static void assert_reset_hint(const struct rp_err *err, const char *path)
{
	assert_non_null(strstr(err->msg, path));
	assert_non_null(strstr(err->msg, "ratepool store-reset"));
}

static void test_newer_schema_refuses_to_open(void **state)
{
	struct fx *f = *state;
	struct rp_err err;

	assert_int_equal(open_store(f, 0, 0), 0);
	store_close(f->s);
	f->s = NULL;
	raw_put_sys(f->path, "schema", STORE_SCHEMA_VERSION + 1);
	assert_int_equal(open_with_err(f, &err), RP_ESCHEMA);
	assert_null(f->s);
	assert_int_equal(err.code, RP_ESCHEMA);
	assert_reset_hint(&err, f->path);
	assert_non_null(strstr(err.msg, "newer"));
	/* an unknown (zero) version is refused as well */
	raw_put_sys(f->path, "schema", 0);
	assert_int_equal(open_with_err(f, &err), RP_ESCHEMA);
	assert_reset_hint(&err, f->path);
}

static void test_foreign_lmdb_file_is_refused(void **state)
{
	struct fx *f = *state;
	struct rp_err err;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {5, "hello"}, v = {5, "world"};

	assert_int_equal(mkdir(f->path, 0700), 0);
	env = raw_open(f->path);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(open_with_err(f, &err), RP_ESCHEMA);
	assert_reset_hint(&err, f->path);
	assert_non_null(strstr(err.msg, "not a ratepool store"));
}

static void write_data_file(struct fx *f, const unsigned char *buf, size_t n)
{
	char p[160];
	int fd;

	mkdir(f->path, 0700);
	snprintf(p, sizeof(p), "%s/data.mdb", f->path);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void test_garbage_data_file_is_corrupt_and_can_be_moved_aside(void **state)
{
	struct fx *f = *state;
	static unsigned char buf[65536];
	struct series_ref r = ref_of("octopus", "A");
	char moved[256], p[300];
	struct rp_err err;
	struct stat st;
	uint32_t x = 12345;
	size_t i;

	for(i = 0; i < sizeof(buf); i++) { /* xorshift: random-looking bytes */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	write_data_file(f, buf, sizeof(buf));
	assert_int_equal(open_with_err(f, &err), RP_ECORRUPT);
	assert_null(f->s);
	assert_reset_hint(&err, f->path);

	assert_int_equal(store_move_aside(f->path, moved, sizeof(moved)), 0);
	assert_non_null(strstr(moved, ".broken-"));
	assert_int_equal(strncmp(moved, f->path, strlen(f->path)), 0);
	snprintf(p, sizeof(p), "%s/data.mdb", moved);
	assert_int_equal(stat(p, &st), 0); /* kept for inspection */
	assert_int_equal(stat(f->path, &st), -1);

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, 0, DAY, HH);
	assert_int_equal(store_lookup(f->s, &r, 0, DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	assert_int_equal(store_move_aside("/nonexistent/ratepool-store", NULL, 0), RP_EIO);
}

static void test_zero_filled_and_short_data_files_are_corrupt(void **state)
{
	struct fx *f = *state;
	static unsigned char zeros[16384];
	struct rp_err err;

	write_data_file(f, zeros, sizeof(zeros));
	assert_int_equal(open_with_err(f, &err), RP_ECORRUPT);
	assert_reset_hint(&err, f->path);
	write_data_file(f, (const unsigned char *)"not an lmdb file", 16);
	assert_int_equal(open_with_err(f, &err), RP_ECORRUPT);
	assert_reset_hint(&err, f->path);
}

/* Overwrites n bytes at off in data.mdb. */
static void patch_data_file(struct fx *f, off_t off, const void *bytes, size_t n)
{
	char p[160];
	int fd;

	snprintf(p, sizeof(p), "%s/data.mdb", f->path);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void test_lmdb_format_version_mismatch_is_refused(void **state)
{
	struct fx *f = *state;
	long psize = sysconf(_SC_PAGESIZE);
	uint32_t v = htole32(999);
	struct rp_err err;

	assert_int_equal(open_store(f, 0, 0), 0);
	store_close(f->s);
	f->s = NULL;
	/* both meta pages: page header (16 bytes), magic (4), version (4) */
	patch_data_file(f, 20, &v, 4);
	patch_data_file(f, psize + 20, &v, 4);
	assert_int_equal(open_with_err(f, &err), RP_ESCHEMA);
	assert_reset_hint(&err, f->path);
}

static void test_damaged_tree_pages_are_corrupt(void **state)
{
	struct fx *f = *state;
	long psize = sysconf(_SC_PAGESIZE);
	struct series_ref r = ref_of("octopus", "A");
	static unsigned char zeros[1 << 16];
	struct rp_err err;
	struct stat st;
	char p[160];
	off_t off;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, 0, 7 * DAY, HH);
	store_close(f->s);
	f->s = NULL;
	/* metas intact, every tree page zeroed */
	snprintf(p, sizeof(p), "%s/data.mdb", f->path);
	assert_int_equal(stat(p, &st), 0);
	for(off = 2 * psize; off < st.st_size; off += (off_t)sizeof(zeros)) {
		size_t n = (size_t)(st.st_size - off) < sizeof(zeros) ? (size_t)(st.st_size - off)
		                                                      : sizeof(zeros);
		patch_data_file(f, off, zeros, n);
	}
	assert_int_equal(open_with_err(f, &err), RP_ECORRUPT);
	assert_reset_hint(&err, f->path);
}

static void test_files_are_private(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char p[160];
	mode_t old = umask(022);

	assert_int_equal(open_store(f, 0, 0), 0);
	umask(old);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/data.mdb", f->path);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/lock.mdb", f->path);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* --- map growth --------------------------------------------------------- */

static void test_map_grows_when_full(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("aemo", "QLD1");
	int64_t d0 = t_of("2026-01-01T00:00:00Z");
	uint64_t used = 0;
	int d;

	/* 64 KiB map: the first few answers already fill it */
	assert_int_equal(open_store(f, 64u << 20, 64u << 10), 0);
	for(d = 0; d < 60; d++) {
		fill(&f->l, d0 + d * DAY, d0 + (d + 1) * DAY, 300);
		assert_int_equal(store_put_answer(f->s, &r, RTIME_NEM, &f->l, d0 + d * DAY, "t", NULL), 0);
	}
	assert_int_equal(store_used_bytes(f->s, &used), 0);
	assert_true(used > (512u << 10));
	for(d = 0; d < 60; d++) {
		assert_int_equal(store_lookup(f->s, &r, d0 + d * DAY, d0 + (d + 1) * DAY, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 288);
		assert_complete(&f->lk, d0 + d * DAY, d0 + (d + 1) * DAY);
	}
}

static void test_map_stops_growing_at_its_bound(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("aemo", "SA1");
	int64_t d0 = t_of("2026-01-01T00:00:00Z");
	int d, rc = 0;

	/* max_bytes 256 KiB: the map may reach 512 KiB, then RP_EFULL */
	assert_int_equal(open_store(f, 256u << 10, 64u << 10), 0);
	for(d = 0; d < 200 && rc == 0; d++) {
		fill(&f->l, d0 + d * DAY, d0 + (d + 1) * DAY, 300);
		rc = store_put_answer(f->s, &r, RTIME_NEM, &f->l, d0 + d * DAY, "t", NULL);
	}
	assert_int_equal(rc, RP_EFULL);
	/* what was committed is intact, and GC makes room again */
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 288);
	assert_int_equal(store_gc(f->s, d0 + 400 * DAY, 128u << 10, NULL), 0);
	fill(&f->l, d0 + 300 * DAY, d0 + 301 * DAY, 300);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_NEM, &f->l, 1, "t", NULL), 0);
}

static void test_map_grown_by_another_process_is_adopted(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("aemo", "TAS1");
	int64_t d0 = t_of("2026-01-01T00:00:00Z");
	int go[2], st = 0, d;
	pid_t pid;

	assert_int_equal(open_store(f, 64u << 20, 64u << 10), 0);
	/* a first lookup so our pooled read transaction exists */
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0) {
		struct store_options o = {f->path, 64u << 20, 64u << 10};
		struct store *s = NULL;
		struct slot_list l;
		close(go[0]);
		close(go[1]);
		if(store_open(&s, &o, NULL))
			_exit(3);
		slot_list_init(&l);
		snprintf(l.unit, sizeof(l.unit), "AUD/kWh");
		for(d = 0; d < 40; d++) {
			int64_t t;
			slot_list_clear(&l);
			for(t = d0 + d * DAY; t < d0 + (d + 1) * DAY; t += 300)
				slot_list_push(&l, t, t + 300, price_at(t), NAN);
			if(store_put_answer(s, &r, RTIME_NEM, &l, 1, "child", NULL))
				_exit(4);
		}
		store_close(s);
		_exit(0);
	}
	close(go[0]);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* our map is still 64 KiB: reading and writing must adopt theirs */
	for(d = 0; d < 40; d++) {
		assert_int_equal(store_lookup(f->s, &r, d0 + d * DAY, d0 + (d + 1) * DAY, &f->lk), 0);
		assert_int_equal(f->lk.slots.n, 288);
	}
	put_range(f, &r, d0 + 100 * DAY, d0 + 101 * DAY, 300);
	assert_int_equal(store_lookup(f->s, &r, d0 + 100 * DAY, d0 + 101 * DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 288);
}

/* --- threads ---------------------------------------------------------------- */

struct thr_arg {
	struct store *s;
	int64_t d0;
	int bad;
};

/* Each one-day lookup must see a whole answer or none of it. */
static void *lookup_thread(void *p)
{
	struct thr_arg *a = p;
	struct series_ref r;
	struct store_lookup lk;
	unsigned seed = (unsigned)(uintptr_t)p;
	int i;

	series_ref_set(&r, "octopus", "T");
	store_lookup_init(&lk);
	for(i = 0; i < 3000; i++) {
		int d = (int)(rand_r(&seed) % 20);
		int64_t from = a->d0 + d * DAY;
		if(store_lookup(a->s, &r, from, from + DAY, &lk) ||
		   !(lk.slots.n == 0 || (lk.slots.n == 48 && lk.n_missing == 0)))
			a->bad++;
	}
	store_lookup_free(&lk);
	return NULL;
}

static void test_concurrent_lookups_see_whole_answers(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "T");
	struct thr_arg args[4];
	pthread_t th[4];
	int i, d;

	/* a tiny map so that growth happens while readers run */
	assert_int_equal(open_store(f, 64u << 20, 64u << 10), 0);
	for(i = 0; i < 4; i++) {
		args[i].s = f->s;
		args[i].d0 = 0;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, lookup_thread, &args[i]), 0);
	}
	for(d = 0; d < 20; d++)
		put_range(f, &r, d * DAY, (d + 1) * DAY, HH);
	for(i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
}

/* --- tokens and meta ------------------------------------------------------ */

static void test_tokens_round_trip(void **state)
{
	struct fx *f = *state;
	static struct store_token t, got;
	const char *key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_token_get(f->s, key, &got), RP_ENOENT);
	memset(&t, 0, sizeof(t));
	memset(t.access, 'a', sizeof(t.access) - 1); /* the longest token */
	snprintf(t.refresh, sizeof(t.refresh), "refresh-xyz");
	t.expires_at = 1795262400;
	t.refresh_expires_at = 1795862400;
	t.obtained_at = 1795258800;
	assert_int_equal(store_token_put(f->s, key, &t), 0);
	assert_int_equal(store_token_get(f->s, key, &got), 0);
	assert_memory_equal(&got, &t, sizeof(t));

	snprintf(t.access, sizeof(t.access), "short");
	t.refresh[0] = '\0';
	assert_int_equal(store_token_put(f->s, key, &t), 0);
	assert_int_equal(store_token_get(f->s, key, &got), 0);
	assert_string_equal(got.access, "short");
	assert_string_equal(got.refresh, "");
	assert_true(got.expires_at == 1795262400);

	/* keys are hashes, never a secret: anything not hex is refused */
	assert_int_equal(store_token_put(f->s, "sk_live_secret", &t), RP_EINVAL);
	assert_int_equal(store_token_put(f->s, "", &t), RP_EINVAL);
	assert_int_equal(store_token_delete(f->s, key), 0);
	assert_int_equal(store_token_get(f->s, key, &got), RP_ENOENT);
	assert_int_equal(store_token_delete(f->s, key), RP_ENOENT);
}

static void test_meta_round_trip(void **state)
{
	struct fx *f = *state;
	const char *health = "{\"status\":\"healthy\",\"uptime_s\":12}";
	static char big[(64 << 10) + 1];
	char key[202];
	char *v = NULL;
	size_t n = 0;

	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_meta_get(f->s, "health", &v, &n), RP_ENOENT);
	assert_null(v);
	assert_int_equal(store_meta_put(f->s, "health", health, strlen(health)), 0);
	assert_int_equal(store_meta_get(f->s, "health", &v, &n), 0);
	assert_int_equal(n, strlen(health));
	assert_string_equal(v, health);
	free(v);
	assert_int_equal(store_meta_put(f->s, "health", "{}", 2), 0);
	assert_int_equal(store_meta_get(f->s, "health", &v, &n), 0);
	assert_string_equal(v, "{}");
	free(v);
	assert_int_equal(store_meta_put(f->s, "empty", "", 0), 0);
	assert_int_equal(store_meta_get(f->s, "empty", &v, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(v, "");
	free(v);

	memset(big, 'x', sizeof(big));
	assert_int_equal(store_meta_put(f->s, "account/home", big, sizeof(big) - 1), 0);
	assert_int_equal(store_meta_get(f->s, "account/home", &v, &n), 0);
	assert_int_equal(n, sizeof(big) - 1);
	free(v);
	assert_int_equal(store_meta_put(f->s, "account/home", big, sizeof(big)), RP_EINVAL);
	memset(key, 'k', sizeof(key));
	key[201] = '\0';
	assert_int_equal(store_meta_put(f->s, key, "1", 1), RP_EINVAL);
	key[200] = '\0';
	assert_int_equal(store_meta_put(f->s, key, "1", 1), 0);

	assert_int_equal(store_meta_delete(f->s, "health"), 0);
	assert_int_equal(store_meta_get(f->s, "health", &v, &n), RP_ENOENT);

	/* another process reads what this one wrote (ratepool health) */
	assert_int_equal(store_meta_put(f->s, "health", health, strlen(health)), 0);
	{
		pid_t pid = fork();
		int st = 0;
		if(pid == 0) {
			struct store_options o = {f->path, 0, 0};
			struct store *s = NULL;
			char *cv = NULL;
			size_t cn = 0;
			if(store_open(&s, &o, NULL) || store_meta_get(s, "health", &cv, &cn) ||
			   strcmp(cv, health))
				_exit(1);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

static void test_reopen_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct series_ref r = ref_of("octopus", "A");
	int64_t d0 = t_of("2026-11-21T00:00:00Z");
	struct store_write_result w;

	assert_int_equal(open_store(f, 0, 0), 0);
	put_range(f, &r, d0, d0 + DAY, HH);
	store_close(f->s);
	assert_int_equal(open_store(f, 0, 0), 0);
	assert_int_equal(store_lookup(f->s, &r, d0, d0 + DAY, &f->lk), 0);
	assert_int_equal(f->lk.slots.n, 48);
	/* group ids keep growing across a reopen */
	fill(&f->l, d0 + DAY, d0 + 2 * DAY, HH);
	assert_int_equal(store_put_answer(f->s, &r, RTIME_UTC, &f->l, 2, "t", &w), 0);
	assert_true(w.group_id == 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_dst_spring_day_has_46_half_hours),
	        T(test_dst_autumn_day_has_50_half_hours),
	        T(test_resolution_change_60_to_15_minutes),
	        T(test_finer_answer_replaces_a_held_slot_it_fully_covers),
	        T(test_partial_finer_answer_keeps_the_held_coarse_slot),
	        T(test_overlapping_answer_moves_slots_to_newer_group),
	        T(test_partial_answer_next_to_held_one_keeps_both),
	        T(test_partial_answer_keeps_held_slots),
	        T(test_empty_answer_keeps_everything),
	        T(test_put_refuses_unsorted_or_overlapping_slots),
	        T(test_gap_detection_finds_every_hole),
	        T(test_gap_detection_reports_truncation),
	        T(test_unknown_series_is_one_missing_range),
	        T(test_lookups_keep_to_their_own_series),
	        T(test_lookup_does_not_allocate_once_warm),
	        T(test_series_with_a_single_slot),
	        T(test_lookup_sees_the_unit_of_the_newest_answer),
	        T(test_random_answers_match_a_model),
	        T(test_series_records_round_trip_in_order),
	        T(test_series_delete_removes_slots_and_groups),
	        T(test_gc_evicts_oldest_groups_and_keeps_protected_days),
	        T(test_lease_two_processes_exactly_one_wins),
	        T(test_lease_renew_and_release_by_owner_only),
	        T(test_writer_killed_mid_write_loses_no_committed_group),
	        T(test_newer_schema_refuses_to_open),
	        T(test_foreign_lmdb_file_is_refused),
	        T(test_garbage_data_file_is_corrupt_and_can_be_moved_aside),
	        T(test_zero_filled_and_short_data_files_are_corrupt),
	        T(test_lmdb_format_version_mismatch_is_refused),
	        T(test_damaged_tree_pages_are_corrupt),
	        T(test_files_are_private),
	        T(test_map_grows_when_full),
	        T(test_map_stops_growing_at_its_bound),
	        T(test_map_grown_by_another_process_is_adopted),
	        T(test_concurrent_lookups_see_whole_answers),
	        T(test_tokens_round_trip),
	        T(test_meta_round_trip),
	        T(test_reopen_keeps_everything),
	};

	/* every log line is formatted (catches format bugs) but discarded */
	log_open(LOG_LEVEL_DEBUG, "/dev/null");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
