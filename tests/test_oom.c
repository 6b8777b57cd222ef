/*
 * test_oom.c - every allocation on the request and parse paths fails in
 * turn, as jansson's and curl's own tests do it: no crash, no leak, a
 * clean error.
 *
 * How: this binary is linked with -Wl,--wrap=malloc,calloc,realloc,free,
 * strdup,strndup (Makefile), so every allocation made by libratepool.a
 * goes through the __wrap_* functions below; jansson (a shared library)
 * is given a tracking allocator with json_set_alloc_funcs(), and each
 * JSON load (json_loadb, json_load_file, wrapped too) counts as one
 * allocation that can fail. While a path runs "armed", allocations are
 * numbered; allocation number N returns NULL. Every block handed out
 * while armed (ours and jansson's) is remembered until freed.
 *
 * For each path: a reference run with no failure gives the expected
 * output and the number of allocations A; then for N = 1, 2, ... the path
 * runs again with allocation N failing, until a run makes fewer than N
 * allocations (nothing failed; it must equal the reference). After every
 * run, once the outputs are freed, no block may still be live. A run in
 * which an allocation failed must either report an error (a negative
 * code, a message, an empty output) or, when the code could do without
 * that block, give exactly the reference output - never a silently
 * different answer.
 */
#include "support/fixture.h"
#include "ratepool/aemo.h"
#include "ratepool/config.h"
#include "ratepool/energycharts.h"
#include "ratepool/log.h"
#include "ratepool/octopus.h"
#include "ratepool/publish.h"
#include "ratepool/request.h"
#include "ratepool/rtime.h"
#include "ratepool/slot.h"
#include "ratepool/tibber.h"
#include "ratepool/watttime.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* --- the counting allocator ---------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
json_t *__real_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__real_json_load_file(const char *path, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error);

/* Open addressing over block addresses; TOMB marks a freed entry. Sized
 * for the largest path here (a few thousand blocks per run). */
#define TRACK_CAP (1u << 18)
#define TOMB      ((void *)1)

static void **tracked;
static size_t live;           /* blocks handed out while armed, not yet freed */
static bool armed;            /* count (and maybe fail) allocations */
static unsigned long seq;     /* allocations counted since arming */
static unsigned long fail_at; /* the allocation that fails; 0: none */
static bool injected;         /* fail_at was reached */

static size_t slot_of(const void *p)
{
	uintptr_t x = (uintptr_t)p;

	x ^= x >> 17;
	x *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(x >> 20) & (TRACK_CAP - 1);
}

static void track_add(void *p)
{
	size_t i = slot_of(p);

	while(tracked[i] && tracked[i] != TOMB)
		i = (i + 1) & (TRACK_CAP - 1);
	tracked[i] = p;
	live++;
}

/* Forgets p; false when it was not handed out while armed. */
static bool track_remove(const void *p)
{
	size_t i = slot_of(p), k;

	if(!tracked)
		return false;
	for(k = 0; k < TRACK_CAP && tracked[i]; k++, i = (i + 1) & (TRACK_CAP - 1))
		if(tracked[i] == p) {
			tracked[i] = TOMB;
			live--;
			return true;
		}
	return false;
}

/* True when this allocation is the one to fail. */
static bool fail_now(void)
{
	if(!armed)
		return false;
	if(++seq == fail_at) {
		injected = true;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n)
{
	void *p;

	if(fail_now())
		return NULL;
	p = __real_malloc(n);
	if(p && armed)
		track_add(p);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p;

	if(fail_now())
		return NULL;
	p = __real_calloc(n, size);
	if(p && armed)
		track_add(p);
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	bool was_tracked;
	void *q;

	if(fail_now())
		return NULL; /* p stays valid, as with a real failure */
	q = __real_realloc(p, n);
	if(!q)
		return NULL;
	was_tracked = p && track_remove(p);
	if(was_tracked || (!p && armed))
		track_add(q);
	return q;
}

void __wrap_free(void *p)
{
	if(p)
		track_remove(p);
	__real_free(p);
}

char *__wrap_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = __wrap_malloc(n);

	if(p)
		memcpy(p, s, n);
	return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = __wrap_malloc(len + 1);

	if(p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* jansson's allocations: counted and tracked like ours, but only the
 * first one of a load call may fail (see __wrap_json_loadb). */
static bool jansson_fail_next;

static void *jansson_malloc(size_t n)
{
	void *p;

	if(jansson_fail_next) {
		jansson_fail_next = false;
		return NULL;
	}
	p = __real_malloc(n);
	if(p && armed)
		track_add(p);
	return p;
}

/*
 * A JSON load is one failure point: its first allocation fails, so
 * jansson gives up at once and returns NULL the way it does when memory
 * runs out. Failing jansson's later allocations one by one would test
 * jansson, not ratepool, and jansson 2.14's lexer does not survive them:
 * lex_save() ignores a failed strbuffer_append_byte(), so the saved token
 * loses characters and lex_scan_string() then runs past it or hits
 * assert(0) (load.c:442). What ratepool sees is the same either way: a
 * NULL root.
 */
json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error)
{
	json_t *root;

	jansson_fail_next = fail_now();
	root = __real_json_loadb(buffer, buflen, flags, error);
	jansson_fail_next = false;
	return root;
}

json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error)
{
	json_t *root;

	jansson_fail_next = fail_now();
	root = __real_json_load_file(path, flags, error);
	jansson_fail_next = false;
	return root;
}

static void arm(unsigned long fail)
{
	seq = 0;
	fail_at = fail;
	injected = false;
	armed = true;
}

static void disarm(void)
{
	armed = false;
}

/* --- the driver ---------------------------------------------------------- */

/* One path: runs the call under test armed (between arm() and disarm()),
 * then, disarmed, checks its outcome and frees what it produced.
 * reference: this is the run without failure (record the expected output).
 * Returns the call's code. */
typedef int (*oom_path)(void *ctx, bool reference);

static void oom_every_allocation(const char *name, oom_path path, void *ctx)
{
	unsigned long n, total, failed_runs = 0, recovered = 0;
	int rc;

	memset(tracked, 0, TRACK_CAP * sizeof(*tracked));
	live = 0;
	arm(0);
	disarm();
	rc = path(ctx, true);
	assert_int_equal(rc, 0);
	assert_false(injected);
	total = seq;
	assert_true(total > 0);
	if(live)
		fail_msg("%s: %zu block(s) leaked without any failure", name, live);

	for(n = 1;; n++) {
		memset(tracked, 0, TRACK_CAP * sizeof(*tracked));
		live = 0;
		fail_at = n;
		rc = path(ctx, false);
		if(live)
			fail_msg("%s: %zu block(s) leaked when allocation %lu of %lu failed (rc %d)", name,
			         live, n, total, rc);
		if(!injected) {
			assert_int_equal(rc, 0);
			break;
		}
		if(rc)
			failed_runs++;
		else
			recovered++;
		if(n > 10 * total + 1000)
			fail_msg("%s: allocations never end", name);
	}
	print_message("%s: %lu allocations, each failed once: %lu clean errors, %lu recovered with the same "
	              "result\n",
	              name, total, failed_runs, recovered);
}

static bool slots_equal(const struct slot_list *a, const struct slot_list *b)
{
	size_t i;

	if(a->n != b->n || strcmp(a->unit, b->unit))
		return false;
	for(i = 0; i < a->n; i++) {
		const struct slot *x = &a->v[i], *y = &b->v[i];
		if(x->start != y->start || x->end != y->end || x->value != y->value ||
		   (isnan(x->value_exc_vat) != isnan(y->value_exc_vat)) ||
		   (!isnan(x->value_exc_vat) && x->value_exc_vat != y->value_exc_vat))
			return false;
	}
	return true;
}

/* --- provider parsers ----------------------------------------------------- */

enum parser { P_OCTOPUS_RATES, P_TIBBER, P_WATTTIME, P_AEMO, P_ENERGYCHARTS };

struct parse_ctx {
	enum parser which;
	char *body;
	size_t len;
	int64_t from, to;
	struct slot_list expect;
};

static int parse_path(void *arg, bool reference)
{
	struct parse_ctx *c = arg;
	struct slot_list out;
	struct rp_err err;
	int rc = RP_EINVAL;

	slot_list_init(&out);
	rp_err_clear(&err);
	arm(fail_at);
	switch(c->which) {
	case P_OCTOPUS_RATES:
		rc = octopus_parse_rates(c->body, c->len, c->from, c->to, &out, &err);
		break;
	case P_TIBBER:
		rc = tibber_parse_prices(c->body, c->len, "96a14971-525a-4420-aae9-e5aedaa129ff", c->from,
		                         c->to, &out, &err);
		break;
	case P_WATTTIME:
		rc = watttime_parse_forecast(c->body, c->len, "CAISO_NORTH", "co2_moer", c->from, c->to, &out,
		                             &err);
		break;
	case P_AEMO:
		rc = aemo_parse_5min(c->body, c->len, "NSW1", c->from, c->to, &out, &err);
		break;
	case P_ENERGYCHARTS:
		rc = energycharts_parse(c->body, c->len, c->from, c->to, &out, &err);
		break;
	}
	disarm();
	if(reference) {
		assert_int_equal(rc, 0);
		assert_true(out.n > 0);
		c->expect = out; /* kept; freed by the test */
		/* The reference's blocks are the test's now. */
		if(out.v)
			track_remove(out.v);
		return rc;
	}
	if(rc) {
		assert_true(rc < 0);
		assert_true(err.msg[0] != '\0');
		/* The octopus parser may leave rows behind on error; every
		 * other parser documents an empty output. */
		if(c->which != P_OCTOPUS_RATES)
			assert_int_equal(out.n, 0);
	} else if(!slots_equal(&out, &c->expect))
		fail_msg("allocation %lu failed, the parser said 0 but its slots differ", fail_at);
	slot_list_free(&out);
	return rc;
}

static void run_parser(enum parser which, const char *dir, const char *file, const char *from, const char *to)
{
	struct parse_ctx c;
	char name[128];

	memset(&c, 0, sizeof(c));
	c.which = which;
	c.body = fixture_read(dir, file, &c.len);
	c.from = fixture_time(from);
	c.to = fixture_time(to);
	slot_list_init(&c.expect);
	snprintf(name, sizeof(name), "%s/%s", dir, file);
	oom_every_allocation(name, parse_path, &c);
	slot_list_free(&c.expect);
	free(c.body);
}

static void test_octopus_rates_survive_every_allocation_failure(void **state)
{
	run_parser(P_OCTOPUS_RATES, "octopus", "agile_day.json", "2020-01-01T00:00:00Z",
	           "2030-01-01T00:00:00Z");
}

static void test_tibber_prices_survive_every_allocation_failure(void **state)
{
	run_parser(P_TIBBER, "tibber", "quarter_today_only.json", "2025-10-14T00:00:00Z",
	           "2025-10-17T00:00:00Z");
}

static void test_watttime_forecast_survives_every_allocation_failure(void **state)
{
	run_parser(P_WATTTIME, "watttime", "forecast_doc_example.json", "2022-07-14T00:00:00Z",
	           "2022-07-16T00:00:00Z");
}

static void test_aemo_report_survives_every_allocation_failure(void **state)
{
	run_parser(P_AEMO, "aemo", "5min_doc_example.json", "2025-11-13T00:00:00Z", "2025-11-15T00:00:00Z");
}

static void test_energycharts_prices_survive_every_allocation_failure(void **state)
{
	run_parser(P_ENERGYCHARTS, "energycharts", "price_nl_15min_doc.json", "2025-12-30T00:00:00Z",
	           "2026-01-02T00:00:00Z");
}

/* --- the Octopus account parser ------------------------------------------ */

struct account_ctx {
	char *body;
	size_t len;
	struct octopus_agreement expect[OCTOPUS_MAX_AGREEMENTS];
	size_t n_expect;
};

static bool agreements_equal(const struct octopus_agreement *a, size_t na, const struct octopus_agreement *b,
                             size_t nb)
{
	size_t i;

	if(na != nb)
		return false;
	for(i = 0; i < na; i++)
		if(strcmp(a[i].tariff_code, b[i].tariff_code) || a[i].from != b[i].from || a[i].to != b[i].to)
			return false;
	return true;
}

static int account_path(void *arg, bool reference)
{
	struct account_ctx *c = arg;
	struct octopus_agreement ag[OCTOPUS_MAX_AGREEMENTS];
	struct rp_err err;
	size_t n = 0;
	int rc;

	memset(ag, 0, sizeof(ag));
	rp_err_clear(&err);
	arm(fail_at);
	rc = octopus_parse_account(c->body, c->len, ag, OCTOPUS_MAX_AGREEMENTS, &n, &err);
	disarm();
	if(reference) {
		assert_int_equal(rc, 0);
		assert_true(n > 0);
		memcpy(c->expect, ag, sizeof(ag));
		c->n_expect = n;
	} else if(rc) {
		assert_true(rc < 0);
		assert_true(err.msg[0] != '\0');
	} else if(!agreements_equal(ag, n, c->expect, c->n_expect))
		fail_msg("allocation %lu failed, the account parser said 0 but its agreements differ",
		         fail_at);
	return rc;
}

static void test_octopus_account_survives_every_allocation_failure(void **state)
{
	struct account_ctx c;

	memset(&c, 0, sizeof(c));
	c.body = fixture_read("octopus", "account_real.json", &c.len);
	oom_every_allocation("octopus/account_real.json", account_path, &c);
	free(c.body);
}

/* --- a request and its reply ---------------------------------------------- */

struct request_ctx {
	const char *topic;
	const char *payload;
	bool expect_refusal; /* the reference request is refused (an error reply) */
	char *expect;        /* the reference reply */
	struct slot_list slots;
};

static int request_path(void *arg, bool reference)
{
	struct request_ctx *c = arg;
	const int64_t now = 1795264496; /* 2026-11-21T12:34:56Z */
	struct store_range missing = {now + 7200, now + 9000};
	struct request req;
	struct rp_err err;
	char *json = NULL;
	size_t len = 0;
	int rc, prc;

	rp_err_clear(&err);
	arm(fail_at);
	prc = request_parse("ratepool", c->topic, c->payload, strlen(c->payload), false, now, NULL, &req,
	                    &err);
	if(prc == 0)
		rc = request_reply_json(&req, REQUEST_STATUS_PARTIAL, &c->slots, NULL, NULL, now - 60,
		                        &missing, 1, NULL, &json, &len);
	else if(prc == RP_EINVAL)
		rc = request_reply_json(&req, REQUEST_STATUS_ERROR, NULL, NULL, "", 0, NULL, 0, &err, &json,
		                        &len);
	else
		rc = prc;
	disarm();
	if(reference) {
		assert_int_equal(prc, c->expect_refusal ? RP_EINVAL : 0);
		assert_int_equal(rc, 0);
		assert_non_null(json);
		c->expect = json;
		track_remove(json);
		return 0;
	}
	if(rc) {
		/* Out of memory is said as such, never as a bad request. */
		assert_int_equal(rc, RP_ENOMEM);
		assert_null(json);
	} else if(strcmp(json, c->expect))
		fail_msg("allocation %lu failed, yet a different reply was built:\n%s\nexpected\n%s", fail_at,
		         json, c->expect);
	free(json);
	return rc;
}

static void run_request(const char *name, const char *topic, const char *payload, bool refused)
{
	struct request_ctx c;
	const int64_t now = 1795264496;
	int i;

	memset(&c, 0, sizeof(c));
	c.topic = topic;
	c.payload = payload;
	c.expect_refusal = refused;
	slot_list_init(&c.slots);
	snprintf(c.slots.unit, sizeof(c.slots.unit), "GBP/kWh");
	for(i = 0; i < 4; i++)
		assert_int_equal(slot_list_push(&c.slots, now + i * 1800, now + (i + 1) * 1800,
		                                0.2458575 - i * 0.1, NAN),
		                 0);
	oom_every_allocation(name, request_path, &c);
	free(c.expect);
	slot_list_free(&c.slots);
}

static void test_request_and_reply_survive_every_allocation_failure(void **state)
{
	run_request(
	        "request (valid)", "ratepool/request/octopus/E-1R-AGILE-24-10-01-C",
	        "{\"from\":\"2026-11-21T12:00:00Z\",\"to\":\"2026-11-21T16:00:00Z\",\"id\":\"q-\\u00e9-1\","
	        "\"reply_to\":\"home/prices/reply\",\"future_key\":[1,{\"a\":null}]}",
	        false);
}

static void test_refused_request_and_error_reply_survive_every_allocation_failure(void **state)
{
	run_request("request (refused)", "ratepool/request/octopus/E-1R-AGILE-24-10-01-C",
	            "{\"from\":\"2026-11-22T00:00:00Z\",\"to\":\"2026-11-21T00:00:00Z\",\"id\":42,"
	            "\"reply_to\":\"home/prices/reply\"}",
	            true);
}

/* --- the price document ---------------------------------------------------- */

struct doc_ctx {
	struct slot_list slots;
	struct series_ref ref;
	char *expect;
};

static int doc_path(void *arg, bool reference)
{
	struct doc_ctx *c = arg;
	struct publish_price_doc doc;
	struct publish_buf buf;
	int rc;

	memset(&doc, 0, sizeof(doc));
	doc.ref = &c->ref;
	doc.fetched_at = c->slots.v[0].start - 3600;
	doc.complete_until = c->slots.v[c->slots.n - 1].end;
	doc.slots = &c->slots;
	publish_buf_init(&buf, 0);
	arm(fail_at);
	rc = publish_price_doc(&buf, &doc);
	disarm();
	if(reference) {
		assert_int_equal(rc, 0);
		c->expect = strdup(buf.p);
		assert_non_null(c->expect);
		track_remove(c->expect);
	} else if(rc)
		assert_int_equal(rc, RP_ENOMEM);
	else
		assert_string_equal(buf.p, c->expect);
	publish_buf_free(&buf);
	return rc;
}

static void test_price_document_survives_every_allocation_failure(void **state)
{
	struct doc_ctx c;
	int64_t t0 = 1795219200; /* 2026-11-21T00:00:00Z */
	int i;

	memset(&c, 0, sizeof(c));
	snprintf(c.ref.provider, sizeof(c.ref.provider), "octopus");
	snprintf(c.ref.id, sizeof(c.ref.id), "E-1R-AGILE-24-10-01-C");
	slot_list_init(&c.slots);
	snprintf(c.slots.unit, sizeof(c.slots.unit), "GBP/kWh");
	for(i = 0; i < 3 * 48; i++)
		assert_int_equal(slot_list_push(&c.slots, t0 + i * 1800, t0 + (i + 1) * 1800,
		                                0.15 + 0.001 * i, (0.15 + 0.001 * i) / 1.05),
		                 0);
	oom_every_allocation("publish_price_doc (3 days)", doc_path, &c);
	free(c.expect);
	slot_list_free(&c.slots);
}

/* --- the configuration ------------------------------------------------------ */

struct config_ctx {
	char path[256];
	char *expect; /* config_dump of the reference */
};

static char *dump_config(const struct config *cfg)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	assert_non_null(f);
	assert_int_equal(config_dump(cfg, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static int config_path(void *arg, bool reference)
{
	struct config_ctx *c = arg;
	char *const env[] = {"RATEPOOL_TOPIC_PREFIX=home/energy", "RATEPOOL_SERIES=aemo/NSW1,tibber/x-1",
	                     "RATEPOOL_TIBBER_TOKEN=tibber-token-from-env", "RATEPOOL_LOG_LEVEL=warn", NULL};
	struct config cfg;
	struct rp_err err;
	char *text;
	int rc;

	rp_err_clear(&err);
	arm(fail_at);
	rc = config_load(&cfg, c->path, env, &err);
	disarm();
	if(reference) {
		assert_int_equal(rc, 0);
		c->expect = dump_config(&cfg);
	} else if(rc) {
		assert_int_equal(rc, RP_ENOMEM);
		assert_true(err.msg[0] != '\0');
	} else {
		static const char *const secrets[] = {"mqtt-pass-from-json", "sk_test_from_json",
		                                      "tibber-token-from-env", "watttime-pass-from-json"};
		char scrubbed[64];
		size_t i;
		/* Loaded means every secret is known to the log's scrubber. */
		for(i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
			log_scrub(secrets[i], scrubbed, sizeof(scrubbed));
			if(strcmp(scrubbed, "***"))
				fail_msg("allocation %lu failed, config_load said 0 but secret %zu would be "
				         "logged",
				         fail_at, i);
		}
		text = dump_config(&cfg);
		if(strcmp(text, c->expect))
			fail_msg("allocation %lu failed, config_load said 0 but the config differs:\n%s",
			         fail_at, text);
		free(text);
	}
	config_free(&cfg);
	/* The secrets config_load registered with the log are its
	 * allocations too: forget them so that none looks leaked. */
	log_close();
	return rc;
}

static void test_config_load_survives_every_allocation_failure(void **state)
{
	struct config_ctx c;
	char *body;
	size_t len;
	FILE *f;
	int fd;

	memset(&c, 0, sizeof(c));
	body = fixture_read("config", "full.json", &len);
	snprintf(c.path, sizeof(c.path), "%s/ratepool-oom-XXXXXX",
	         access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	fd = mkstemp(c.path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	oom_every_allocation("config_load (tests/data/config/full.json + environment)", config_path, &c);
	unlink(c.path);
	free(c.expect);
	free(body);
}

/* ---------------------------------------------------------------------------- */

static int setup(void **state)
{
	tracked = __real_calloc(TRACK_CAP, sizeof(*tracked));
	if(!tracked)
		return -1;
	json_set_alloc_funcs(jansson_malloc, __wrap_free);
	log_open(LOG_LEVEL_ERROR, NULL);
	return 0;
}

static int teardown(void **state)
{
	json_set_alloc_funcs(__real_malloc, __real_free);
	__real_free(tracked);
	tracked = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_and_reply_survive_every_allocation_failure),
	        cmocka_unit_test(test_refused_request_and_error_reply_survive_every_allocation_failure),
	        cmocka_unit_test(test_octopus_rates_survive_every_allocation_failure),
	        cmocka_unit_test(test_octopus_account_survives_every_allocation_failure),
	        cmocka_unit_test(test_tibber_prices_survive_every_allocation_failure),
	        cmocka_unit_test(test_watttime_forecast_survives_every_allocation_failure),
	        cmocka_unit_test(test_aemo_report_survives_every_allocation_failure),
	        cmocka_unit_test(test_energycharts_prices_survive_every_allocation_failure),
	        cmocka_unit_test(test_price_document_survives_every_allocation_failure),
	        cmocka_unit_test(test_config_load_survives_every_allocation_failure),
	};

	/* RATEPOOL_OOM_ONLY=test_aemo* runs one test (when debugging). */
	if(getenv("RATEPOOL_OOM_ONLY"))
		cmocka_set_test_filter(getenv("RATEPOOL_OOM_ONLY"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
