/*
 * bench_store.c - how fast the store answers one-day lookups, and how big
 * it is on disk.
 *
 * The store: 1,000 series x 7 days of 30-minute slots, written as one
 * fetch group per series and day (7,000 answers, 336,000 slots), as the
 * daemon would write them.
 *
 *   bench_store                    build in a temp dir, measure, clean up
 *   bench_store build DIR          build the store in DIR (must not exist)
 *   bench_store run DIR [SECONDS] [THREADS]
 *                                  one-day lookups for at least SECONDS
 *                                  (default 1) on THREADS threads
 *                                  (default 1); prints lookups per
 *                                  second of wall time and of CPU time
 *   bench_store lookups DIR N      exactly N lookups, for
 *                                  valgrind --tool=callgrind
 *                                  --toggle-collect=run_lookups
 *
 * Output is one "key: value" per line so tests/bench/run.sh and
 * docs/benchmarks.md can quote it. Exit status 1 when a lookup returns
 * anything but 48 slots and no gap.
 */
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"
#include "ratepool/slot.h"
#include "ratepool/store.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define N_SERIES 1000
#define N_DAYS   7
#define HH       1800

/* Monday 2026-11-16 00:00 London (GMT): a week without a DST change. */
static int64_t first_day(void)
{
	int64_t t = 0;
	rtime_parse("2026-11-16T00:00:00Z", &t);
	return t;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static void series_of(int i, struct series_ref *r)
{
	char id[SERIES_ID_MAX + 1];
	snprintf(id, sizeof(id), "E-1R-BENCH-%04d-C", i);
	series_ref_set(r, "octopus", id);
}

static int open_at(const char *dir, struct store **s)
{
	struct store_options o = {dir, 0, 0};
	struct rp_err err;
	int rc;

	rp_err_clear(&err);
	rc = store_open(s, &o, &err);
	if(rc)
		fprintf(stderr, "bench_store: %s\n", err.msg);
	return rc;
}

static int build(const char *dir)
{
	struct store *s = NULL;
	struct slot_list l;
	int64_t d0 = first_day();
	double t0;
	int d, i, rc = 0;

	if(open_at(dir, &s))
		return 1;
	slot_list_init(&l);
	snprintf(l.unit, sizeof(l.unit), "GBP/kWh");
	t0 = now_s();
	for(d = 0; d < N_DAYS && !rc; d++)
		for(i = 0; i < N_SERIES && !rc; i++) {
			struct series_ref r;
			int64_t day = rtime_day_add(RTIME_LONDON, d0, d),
			        end = rtime_day_add(RTIME_LONDON, d0, d + 1);
			int64_t t;
			series_of(i, &r);
			slot_list_clear(&l);
			for(t = day; t < end; t += HH)
				slot_list_push(&l, t, t + HH, 0.1 + (double)(t / HH % 97) / 100.0, NAN);
			rc = store_put_answer(s, &r, RTIME_LONDON, &l, day - 8 * 3600, "bench", NULL);
		}
	if(rc)
		fprintf(stderr, "bench_store: write failed: %s\n", rp_strerror(rc));
	printf("build_answers: %d\n", N_SERIES * N_DAYS);
	printf("build_slots: %d\n", N_SERIES * N_DAYS * 48);
	printf("build_seconds: %.2f\n", now_s() - t0);
	slot_list_free(&l);
	store_close(s);
	return rc ? 1 : 0;
}

static void report_size(const char *dir)
{
	char p[4096];
	struct store *s = NULL;
	struct stat st;
	uint64_t used = 0;

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	if(stat(p, &st) == 0) {
		printf("data_file_bytes: %lld\n", (long long)st.st_size);
		printf("data_file_mib: %.1f\n", (double)st.st_size / 1048576.0);
		printf("data_file_disk_bytes: %lld\n", (long long)st.st_blocks * 512);
	}
	if(open_at(dir, &s) == 0) {
		store_used_bytes(s, &used);
		printf("used_bytes: %llu\n", (unsigned long long)used);
		store_close(s);
	}
}

/* Set up once, before anything is measured. */
static struct series_ref refs[N_SERIES];
static int64_t days[N_DAYS + 1];

static void setup_refs(void)
{
	int i;

	for(i = 0; i < N_SERIES; i++)
		series_of(i, &refs[i]);
	for(i = 0; i <= N_DAYS; i++)
		days[i] = rtime_day_add(RTIME_LONDON, first_day(), i);
}

struct worker {
	struct store *s;
	long n; /* lookups to do; 0: until `until` */
	double until;
	unsigned seed;
	long done;
	long bad;
};

/* The measured loop: random series, random day, one-day lookup. Not
 * inlined, so callgrind's --toggle-collect can name it. */
__attribute__((noinline)) static void run_lookups(struct worker *w)
{
	struct store_lookup lk;
	uint32_t x = w->seed | 1;
	long i;

	store_lookup_init(&lk);
	for(i = 0; w->n == 0 || i < w->n; i++) {
		unsigned si, di;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		si = x % N_SERIES;
		di = (x >> 16) % N_DAYS;
		if(store_lookup(w->s, &refs[si], days[di], days[di + 1], &lk) || lk.slots.n != 48 ||
		   lk.n_missing)
			w->bad++;
		if(w->n == 0 && (i & 1023) == 1023 && now_s() >= w->until) {
			i++;
			break;
		}
	}
	w->done = i;
	store_lookup_free(&lk);
}

static void *worker_main(void *p)
{
	run_lookups(p);
	return NULL;
}

static int run(const char *dir, double seconds, int threads, long fixed)
{
	struct worker w[16];
	pthread_t th[16];
	struct store *s = NULL;
	double t0, el, c0, cpu;
	long total = 0, bad = 0;
	int i;

	if(threads < 1 || threads > 16)
		threads = 1;
	if(open_at(dir, &s))
		return 1;
	/* warm the page cache and the pooled transactions (not in the
	 * fixed-count mode, where callgrind counts every lookup made) */
	memset(w, 0, sizeof(w));
	setup_refs();
	w[0].s = s;
	w[0].n = 20000;
	w[0].seed = 7;
	if(!fixed)
		run_lookups(&w[0]);
	t0 = now_s();
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	for(i = 0; i < threads; i++) {
		w[i].s = s;
		w[i].n = fixed;
		w[i].until = t0 + seconds;
		w[i].seed = 12345u + (unsigned)i * 7919u;
		w[i].done = w[i].bad = 0;
	}
	if(threads == 1)
		run_lookups(&w[0]);
	else {
		for(i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, worker_main, &w[i]);
		for(i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
	}
	el = now_s() - t0;
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	for(i = 0; i < threads; i++) {
		total += w[i].done;
		bad += w[i].bad;
	}
	store_close(s);
	printf("threads: %d\n", threads);
	printf("lookups: %ld\n", total);
	printf("seconds: %.3f\n", el);
	printf("lookups_per_second: %.0f\n", (double)total / el);
	printf("ns_per_lookup: %.0f\n", el * 1e9 / (double)total * threads);
	/* CPU time: what the lookups cost when other work shares the cores */
	printf("cpu_seconds: %.3f\n", cpu);
	printf("lookups_per_cpu_second: %.0f\n", (double)total / cpu);
	printf("slots_per_lookup: 48\n");
	printf("bad_lookups: %ld\n", bad);
	return bad ? 1 : 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(int argc, char **argv)
{
	log_open(LOG_LEVEL_WARN, NULL);
	if(argc >= 3 && strcmp(argv[1], "build") == 0) {
		int rc = build(argv[2]);
		if(!rc)
			report_size(argv[2]);
		return rc;
	}
	if(argc >= 3 && strcmp(argv[1], "run") == 0)
		return run(argv[2], argc > 3 ? atof(argv[3]) : 1.0,
		           argc > 4 ? (int)strtol(argv[4], NULL, 10) : 1, 0);
	if(argc >= 4 && strcmp(argv[1], "lookups") == 0)
		return run(argv[2], 0, 1, strtol(argv[3], NULL, 10));
	if(argc == 1) {
		char tmp[] = "/tmp/ratepool-bench-XXXXXX";
		char dir[64];
		int rc;
		if(!mkdtemp(tmp)) {
			perror("mkdtemp");
			return 1;
		}
		snprintf(dir, sizeof(dir), "%s/store", tmp);
		rc = build(dir);
		if(!rc)
			report_size(dir);
		if(!rc)
			rc = run(dir, 1.0, 1, 0);
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		return rc;
	}
	fprintf(stderr, "usage: bench_store [build DIR | run DIR [SECONDS] [THREADS] | lookups DIR N]\n");
	return 2;
}
