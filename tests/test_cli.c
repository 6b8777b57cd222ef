/* test_cli.c - the command line: parsing, health's exit codes against a
 * real store, fetch against the fake upstream, store-reset, check-config.
 * (`run` is the daemon and is tested by the integration tests.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/cli.h"
#include "ratepool/config.h"
#include "ratepool/error.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/store.h"
#include "support/fake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];
static char store_path[128];

/* Output of one command, captured. */
struct run {
	char *out, *err;
	size_t out_len, err_len;
	FILE *o, *e;
};

static void run_begin(struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->o = open_memstream(&r->out, &r->out_len);
	r->e = open_memstream(&r->err, &r->err_len);
	assert_non_null(r->o);
	assert_non_null(r->e);
}

static void run_end(struct run *r)
{
	fclose(r->o);
	fclose(r->e);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cli.XXXXXX");
	if(!mkdtemp(tmpdir))
		return -1;
	snprintf(store_path, sizeof(store_path), "%s/store", tmpdir);
	log_open(LOG_LEVEL_ERROR, NULL);
	return http_global_init();
}

static int group_teardown(void **state)
{
	char cmd[128];

	http_global_cleanup();
	fake_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A config with the store in the temp dir and the upstreams at the fake
 * (when it runs), plus `extra` environment entries (may be NULL). */
static void load_config(struct config *cfg, const char *extra)
{
	char e_store[200], e_ec[128], e_oct[128];
	char *env[] = {e_store, e_ec, e_oct, (char *)extra, NULL};
	struct rp_err err;

	snprintf(e_store, sizeof(e_store), "RATEPOOL_STORE=%s", store_path);
	snprintf(e_ec, sizeof(e_ec), "RATEPOOL_ENERGYCHARTS_URL=%s",
	         fake_url()[0] ? fake_url() : "http://127.0.0.1:9");
	snprintf(e_oct, sizeof(e_oct), "RATEPOOL_OCTOPUS_URL=%s",
	         fake_url()[0] ? fake_url() : "http://127.0.0.1:9");
	rp_err_clear(&err);
	if(config_load(cfg, NULL, env, &err))
		fail_msg("config: %s", err.msg);
}

static void remove_store(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'.broken-*", store_path, store_path);
	assert_int_equal(system(cmd), 0);
}

/* --- parsing ------------------------------------------------------------------- */

static int parse(struct cli_args *a, const char *line, char **err_text)
{
	char buf[512];
	char *argv[32];
	int argc = 0, rc;
	char *p;
	struct run r;

	/* Split on single spaces (no quoting needed in these tests). */
	snprintf(buf, sizeof(buf), "ratepool %s", line);
	for(p = buf; *p && argc < 31;) {
		argv[argc++] = p;
		p += strcspn(p, " ");
		if(*p)
			*p++ = '\0';
	}
	argv[argc] = NULL;
	run_begin(&r);
	rc = cli_parse(argc, argv, a, r.e);
	run_end(&r);
	if(err_text)
		*err_text = strdup(r.err ? r.err : "");
	/* Strings borrowed from argv would dangle: keep only what tests need. */
	a->config_path = a->config_path ? "set" : NULL;
	a->provider = a->provider ? strdup(a->provider) : NULL;
	a->series = a->series ? strdup(a->series) : NULL;
	a->from = a->from ? strdup(a->from) : NULL;
	a->to = a->to ? strdup(a->to) : NULL;
	a->log_level = a->log_level ? "set" : NULL;
	run_free(&r);
	return rc;
}

static void args_free(struct cli_args *a)
{
	free((char *)a->provider);
	free((char *)a->series);
	free((char *)a->from);
	free((char *)a->to);
}

static void test_no_command_runs_the_daemon(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "", NULL), 0);
	assert_int_equal(a.command, CLI_RUN);
	assert_null(a.config_path);
	assert_int_equal(parse(&a, "--config x.json", NULL), 0);
	assert_int_equal(a.command, CLI_RUN);
	assert_non_null(a.config_path);
	assert_int_equal(parse(&a, "run", NULL), 0);
	assert_int_equal(a.command, CLI_RUN);
}

static void test_commands_and_global_options(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "--config c.json health", NULL), 0);
	assert_int_equal(a.command, CLI_HEALTH);
	assert_non_null(a.config_path);
	assert_int_equal(parse(&a, "--config=c.json --log-level=debug check-config", NULL), 0);
	assert_int_equal(a.command, CLI_CHECK_CONFIG);
	assert_non_null(a.config_path);
	assert_non_null(a.log_level);
	assert_int_equal(parse(&a, "store-reset --config c.json", NULL), 0);
	assert_int_equal(a.command, CLI_STORE_RESET);
	assert_non_null(a.config_path);
	assert_int_equal(parse(&a, "--help", NULL), 0);
	assert_int_equal(a.command, CLI_HELP);
	assert_int_equal(parse(&a, "-h", NULL), 0);
	assert_int_equal(a.command, CLI_HELP);
	assert_int_equal(parse(&a, "help", NULL), 0);
	assert_int_equal(a.command, CLI_HELP);
	assert_int_equal(parse(&a, "health --help", NULL), 0);
	assert_int_equal(a.command, CLI_HELP);
	assert_int_equal(parse(&a, "--version", NULL), 0);
	assert_int_equal(a.command, CLI_VERSION);
	assert_int_equal(parse(&a, "-V", NULL), 0);
	assert_int_equal(a.command, CLI_VERSION);
}

static void test_fetch_arguments(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "fetch octopus E-1R-AGILE-24-10-01-C", NULL), 0);
	assert_int_equal(a.command, CLI_FETCH);
	assert_string_equal(a.provider, "octopus");
	assert_string_equal(a.series, "E-1R-AGILE-24-10-01-C");
	assert_null(a.from);
	assert_null(a.to);
	args_free(&a);
	assert_int_equal(parse(&a,
	                       "--config c.json fetch --from 2026-11-21T00:00:00Z energycharts DE-LU "
	                       "--to=2026-11-22T00:00:00Z",
	                       NULL),
	                 0);
	assert_string_equal(a.provider, "energycharts");
	assert_string_equal(a.series, "DE-LU");
	assert_string_equal(a.from, "2026-11-21T00:00:00Z");
	assert_string_equal(a.to, "2026-11-22T00:00:00Z");
	args_free(&a);
}

static void assert_usage_error(const char *line, const char *words)
{
	struct cli_args a;
	char *err = NULL;

	memset(&a, 0, sizeof(a));
	assert_int_equal(parse(&a, line, &err), CLI_EXIT_USAGE);
	if(!strstr(err, words) || !strstr(err, "ratepool --help"))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", line, err, words);
	free(err);
	args_free(&a);
}

static void test_usage_errors_exit_2_with_a_message(void **state)
{
	assert_usage_error("bogus", "unknown command \"bogus\"");
	assert_usage_error("--bogus", "unknown option --bogus");
	assert_usage_error("health --from 2026-11-21T00:00:00Z", "unknown option --from");
	assert_usage_error("--config", "option --config needs a value");
	assert_usage_error("--config=", "--config needs a file name");
	assert_usage_error("--log-level loud", "--log-level \"loud\" is not one of");
	assert_usage_error("fetch", "fetch needs a PROVIDER and a SERIES");
	assert_usage_error("fetch octopus", "fetch needs a PROVIDER and a SERIES");
	assert_usage_error("fetch octopus X Y", "unexpected argument \"Y\"");
	assert_usage_error("fetch octopus X --from", "option --from needs a value");
	assert_usage_error("health now", "unexpected argument \"now\"");
	assert_usage_error("run health", "unexpected argument \"health\"");
}

static void test_usage_names_every_command_and_the_settings_doc(void **state)
{
	static const char *const words[] = {
	        "run",          "health",      "fetch PROVIDER SERIES [--from T] [--to T]",
	        "check-config", "store-reset", "--config FILE",
	        "--log-level",  "--version",   "docs/configuration.md",
	        "RATEPOOL_"};
	struct run r;
	size_t i;

	run_begin(&r);
	cli_usage(r.o);
	cli_version(r.e);
	run_end(&r);
	for(i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if(!strstr(r.out, words[i]))
			fail_msg("usage lacks \"%s\"", words[i]);
	assert_string_equal(r.err, "ratepool " RATEPOOL_VERSION "\n");
	assert_string_equal(RATEPOOL_VERSION, "0.1.0");
	run_free(&r);
}

/* --- check-config ---------------------------------------------------------------- */

static void test_check_config_prints_the_effective_config(void **state)
{
	struct config cfg;
	json_error_t jerr;
	json_t *root;
	struct run r;

	load_config(&cfg, "RATEPOOL_TIBBER_TOKEN=tibber-secret-value");
	run_begin(&r);
	assert_int_equal(cli_check_config(&cfg, r.o, r.e), 0);
	run_end(&r);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "store")), store_path);
	assert_string_equal(json_string_value(json_object_get(root, "tibber_token")), "***");
	assert_null(strstr(r.out, "tibber-secret-value"));
	json_decref(root);
	run_free(&r);
	config_free(&cfg);
}

/* --- health ------------------------------------------------------------------------- */

static void put_health(const char *json)
{
	struct store_options opt = {.path = store_path};
	struct store *s = NULL;
	struct rp_err err;

	rp_err_clear(&err);
	assert_int_equal(store_open(&s, &opt, &err), 0);
	if(json)
		assert_int_equal(store_meta_put(s, "health", json, strlen(json)), 0);
	store_close(s);
}

static int health(struct run *r, const char *extra)
{
	struct config cfg;
	int rc;

	load_config(&cfg, extra);
	run_begin(r);
	rc = cli_health(&cfg, r->o, r->e);
	run_end(r);
	config_free(&cfg);
	return rc;
}

static void health_json(char *buf, size_t n, const char *status, int64_t age_s)
{
	char when[RTIME_TEXT_SIZE];

	rtime_format(rtime_now() - age_s, when);
	snprintf(buf, n,
	         "{\"status\":\"%s\",\"time\":\"%s\",\"uptime_s\":10,\"version\":\"0.1.0\","
	         "\"issues\":[]}",
	         status, when);
}

static void test_health_exit_codes_follow_the_status(void **state)
{
	char json[512];
	struct run r;

	remove_store();
	health_json(json, sizeof(json), "healthy", 5);
	put_health(json);
	assert_int_equal(health(&r, NULL), 0);
	assert_non_null(strstr(r.out, "\"status\":\"healthy\""));
	assert_string_equal(r.err, "");
	run_free(&r);

	health_json(json, sizeof(json), "degraded", 5);
	put_health(json);
	assert_int_equal(health(&r, NULL), 1);
	assert_non_null(strstr(r.out, "\"status\":\"degraded\""));
	run_free(&r);

	health_json(json, sizeof(json), "sleepy", 5);
	put_health(json);
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "unknown health status"));
	run_free(&r);
}

static void test_health_cannot_tell_without_a_store(void **state)
{
	struct stat st;
	struct run r;

	remove_store();
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "no store at"));
	assert_string_equal(r.out, "");
	run_free(&r);
	/* ... and does not create one. */
	assert_int_not_equal(stat(store_path, &st), 0);
}

static void test_health_cannot_tell_without_a_record(void **state)
{
	struct run r;

	remove_store();
	put_health(NULL);
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "no health record"));
	run_free(&r);

	put_health("not json at all");
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "not health JSON"));
	run_free(&r);

	put_health("{\"time\":\"2026-11-21T12:00:00Z\"}");
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "not health JSON"));
	run_free(&r);

	put_health("{\"status\":\"healthy\"}");
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "no time"));
	run_free(&r);
}

static void test_health_of_a_stopped_daemon_is_stale(void **state)
{
	char json[512];
	struct run r;

	remove_store();
	/* Interval 30 s: a record 91 s old is more than 3 intervals. */
	health_json(json, sizeof(json), "healthy", 91);
	put_health(json);
	assert_int_equal(health(&r, NULL), 2);
	assert_non_null(strstr(r.err, "s old"));
	assert_non_null(strstr(r.err, "is the daemon running?"));
	run_free(&r);
	/* With a longer interval the same record is fresh. */
	assert_int_equal(health(&r, "RATEPOOL_HEALTH_INTERVAL_S=60"), 0);
	run_free(&r);
	/* Unix seconds are accepted for the time, too. */
	snprintf(json, sizeof(json), "{\"status\":\"degraded\",\"time\":%lld}", (long long)rtime_now());
	put_health(json);
	assert_int_equal(health(&r, NULL), 1);
	run_free(&r);
}

/* --- store-reset ------------------------------------------------------------------------ */

static void test_store_reset_moves_the_store_aside(void **state)
{
	struct config cfg;
	struct stat st;
	struct run r;
	char moved[256];
	const char *p;
	size_t n;

	remove_store();
	put_health(NULL);
	load_config(&cfg, NULL);
	run_begin(&r);
	assert_int_equal(cli_store_reset(&cfg, r.o, r.e), 0);
	run_end(&r);
	assert_int_not_equal(stat(store_path, &st), 0);
	p = strstr(r.out, " to ");
	assert_non_null(p);
	p += 4;
	n = strcspn(p, ";");
	assert_true(n < sizeof(moved));
	memcpy(moved, p, n);
	moved[n] = '\0';
	assert_non_null(strstr(moved, ".broken-"));
	assert_int_equal(stat(moved, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	run_free(&r);

	/* Nothing there: nothing to do, not a failure. */
	run_begin(&r);
	assert_int_equal(cli_store_reset(&cfg, r.o, r.e), 0);
	run_end(&r);
	assert_non_null(strstr(r.out, "nothing to move"));
	run_free(&r);
	config_free(&cfg);
}

/* --- fetch ------------------------------------------------------------------------------ */

static int fetch(struct run *r, const char *provider, const char *series, const char *from, const char *to,
                 const char *extra)
{
	struct cli_args a = {
	        .command = CLI_FETCH, .provider = provider, .series = series, .from = from, .to = to};
	struct config cfg;
	int rc;

	load_config(&cfg, extra);
	run_begin(r);
	rc = cli_fetch(&cfg, &a, r->o, r->e);
	run_end(r);
	config_free(&cfg);
	return rc;
}

static void test_fetch_refuses_bad_arguments(void **state)
{
	struct run r;

	assert_int_equal(fetch(&r, "nordpool", "SE3", NULL, NULL, NULL), 2);
	assert_non_null(strstr(r.err, "unknown provider \"nordpool\""));
	assert_non_null(strstr(r.err, "energycharts"));
	run_free(&r);
	assert_int_equal(fetch(&r, "energycharts", "DE/LU", NULL, NULL, NULL), 2);
	assert_non_null(strstr(r.err, "series id"));
	run_free(&r);
	assert_int_equal(fetch(&r, "energycharts", "DE-LU", "yesterday", NULL, NULL), 2);
	assert_non_null(strstr(r.err, "--from \"yesterday\" is not an RFC 3339 time"));
	run_free(&r);
	assert_int_equal(fetch(&r, "energycharts", "DE-LU", NULL, "2026-11-22T00:00:00", NULL), 2);
	assert_non_null(strstr(r.err, "--to"));
	run_free(&r);
	assert_int_equal(
	        fetch(&r, "energycharts", "DE-LU", "2026-11-22T00:00:00Z", "2026-11-21T00:00:00Z", NULL), 2);
	assert_non_null(strstr(r.err, "--from must be before --to"));
	run_free(&r);
	assert_int_equal(
	        fetch(&r, "energycharts", "DE-LU", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", NULL), 2);
	assert_non_null(strstr(r.err, "31 days"));
	assert_string_equal(r.out, "");
	run_free(&r);
}

static void test_fetch_prints_the_slots_as_json(void **state)
{
	char from[RTIME_TEXT_SIZE], to[RTIME_TEXT_SIZE];
	int64_t day = rtime_day_start(RTIME_CET, rtime_now());
	json_error_t jerr;
	json_t *root, *rates, *first;
	struct run r;
	size_t i;

	if(fake_start())
		fail_msg("the fake upstream did not start");
	remove_store();
	rtime_format(day, from);
	rtime_format(rtime_day_add(RTIME_CET, day, 1), to);
	assert_int_equal(fetch(&r, "energycharts", "DE-LU", from, to, NULL), 0);
	root = json_loads(r.out, 0, &jerr);
	if(!root)
		fail_msg("not JSON: %s\n%s", jerr.text, r.out);
	assert_string_equal(json_string_value(json_object_get(root, "provider")), "energycharts");
	assert_string_equal(json_string_value(json_object_get(root, "series")), "DE-LU");
	assert_non_null(json_string_value(json_object_get(root, "unit")));
	assert_true(json_integer_value(json_object_get(root, "resolution")) > 0);
	assert_non_null(json_string_value(json_object_get(root, "fetched_at")));
	assert_true(json_integer_value(json_object_get(root, "upstream_calls")) >= 1);
	rates = json_object_get(root, "rates");
	assert_true(json_array_size(rates) > 0);
	first = json_array_get(rates, 0);
	assert_string_equal(json_string_value(json_object_get(first, "start")), from);
	assert_true(json_is_number(json_object_get(first, "value")));
	/* In order and contiguous, ending at the end of the day. */
	for(i = 1; i < json_array_size(rates); i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(rates, i), "start")),
		                    json_string_value(json_object_get(json_array_get(rates, i - 1), "end")));
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(rates, json_array_size(rates) - 1), "end")),
	        to);
	json_decref(root);
	run_free(&r);
	/* A one-off fetch creates no store. */
	struct stat st;
	assert_int_not_equal(stat(store_path, &st), 0);
}

static void test_fetch_failure_exits_1_naming_the_error(void **state)
{
	struct run r;

	if(fake_start())
		fail_msg("the fake upstream did not start");
	/* The upstream's own refusal of an unknown zone. */
	assert_int_equal(fetch(&r, "energycharts", "XX-NOPE", NULL, NULL, NULL), 1);
	assert_string_equal(r.out, "");
	if(!strstr(r.err, "ratepool: fetch energycharts/XX-NOPE failed: ") || !strstr(r.err, "XX-NOPE\"") ||
	   !strstr(r.err, "(not_found)\n"))
		fail_msg("message: %s", r.err);
	run_free(&r);
	/* A server error, with retries off to keep the test short. */
	assert_int_equal(fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"status\",\"status\":503,"
	                            "\"times\":-1}"),
	                 0);
	assert_int_equal(fetch(&r, "energycharts", "DE-LU", NULL, NULL, "RATEPOOL_RETRY_MAX_ATTEMPTS=1"), 1);
	assert_string_equal(r.out, "");
	if(!strstr(r.err, "ratepool: fetch energycharts/DE-LU failed: ") ||
	   !strstr(r.err, "(upstream_error)\n"))
		fail_msg("message: %s", r.err);
	run_free(&r);
	assert_int_equal(fake_reset(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_command_runs_the_daemon),
	        cmocka_unit_test(test_commands_and_global_options),
	        cmocka_unit_test(test_fetch_arguments),
	        cmocka_unit_test(test_usage_errors_exit_2_with_a_message),
	        cmocka_unit_test(test_usage_names_every_command_and_the_settings_doc),
	        cmocka_unit_test(test_check_config_prints_the_effective_config),
	        cmocka_unit_test(test_health_exit_codes_follow_the_status),
	        cmocka_unit_test(test_health_cannot_tell_without_a_store),
	        cmocka_unit_test(test_health_cannot_tell_without_a_record),
	        cmocka_unit_test(test_health_of_a_stopped_daemon_is_stale),
	        cmocka_unit_test(test_store_reset_moves_the_store_aside),
	        cmocka_unit_test(test_fetch_refuses_bad_arguments),
	        cmocka_unit_test(test_fetch_prints_the_slots_as_json),
	        cmocka_unit_test(test_fetch_failure_exits_1_naming_the_error),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
