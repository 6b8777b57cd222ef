/* test_config.c - defaults, the JSON file, the environment, _FILE secrets,
 * refusals that name the setting, and the dump. Config files are under
 * tests/data/config/. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/config.h"
#include "ratepool/error.h"
#include "ratepool/log.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An environment holding only the given entries. */
#define ENV(...) ((char *const[]){__VA_ARGS__, NULL})
static char *const no_env[] = {NULL};

static char tmpdir[64];

/* Path of a file of the source tree: relative to the working directory
 * (make runs tests from the root), else relative to the test binary
 * (build/<x>/tests/test_config). */
static const char *source_path(const char *rel)
{
	static char path[PATH_MAX + 64];
	char exe[PATH_MAX];
	ssize_t n;

	if(!access(rel, R_OK))
		return rel;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if(n > 0) {
		exe[n] = '\0';
		if(strrchr(exe, '/'))
			*strrchr(exe, '/') = '\0';
		snprintf(path, sizeof(path), "%s/../../../%s", exe, rel);
		if(!access(path, R_OK))
			return path;
	}
	fail_msg("cannot find %s", rel);
	return rel;
}

static const char *data(const char *name)
{
	static char rel[128];
	snprintf(rel, sizeof(rel), "tests/data/config/%s", name);
	return source_path(rel);
}

/* Writes content to a file in the temp dir and returns its path (a static
 * buffer per slot so a test can hold two). */
static const char *temp_file(int slot, const char *name, const char *content, size_t len)
{
	static char paths[4][128];
	FILE *f;

	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", tmpdir, name);
	f = fopen(paths[slot], "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	return paths[slot];
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Loads and expects success. */
static void load_ok(struct config *cfg, const char *path, char *const *envp)
{
	struct rp_err err;

	rp_err_clear(&err);
	if(config_load(cfg, path, envp, &err))
		fail_msg("config_load failed: %s", err.msg);
}

/* Loads, expects RP_EINVAL and every one of the words in the message. */
static void load_fails(const char *path, char *const *envp, const char *word1, const char *word2)
{
	struct config cfg;
	struct rp_err err;
	int rc;

	rp_err_clear(&err);
	rc = config_load(&cfg, path, envp, &err);
	config_free(&cfg);
	if(rc != RP_EINVAL)
		fail_msg("expected RP_EINVAL for %s / %s, got %d", envp[0] ? envp[0] : "(no env)",
		         path ? path : "", rc);
	assert_int_equal(err.code, RP_EINVAL);
	if((word1 && !strstr(err.msg, word1)) || (word2 && !strstr(err.msg, word2)))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err.msg, word1 ? word1 : "",
		         word2 ? word2 : "");
}

/* config_dump into a string (malloc'd). */
static char *dump(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(config_dump(cfg, f), 0);
	fclose(f);
	return buf;
}

/* --- defaults ------------------------------------------------------------------ */

static void test_defaults_without_file_or_environment(void **state)
{
	struct config cfg;
	char prefix[64];

	load_ok(&cfg, NULL, no_env);
	assert_string_equal(cfg.mqtt_url, "tcp://127.0.0.1:1883");
	assert_null(cfg.mqtt_username);
	assert_null(cfg.mqtt_password);
	assert_null(cfg.mqtt_ca_file);
	snprintf(prefix, sizeof(prefix), "ratepool-");
	assert_memory_equal(cfg.mqtt_client_id, prefix, strlen(prefix));
	snprintf(prefix, sizeof(prefix), "-%ld", (long)getpid());
	assert_string_equal(cfg.mqtt_client_id + strlen(cfg.mqtt_client_id) - strlen(prefix), prefix);
	assert_string_equal(cfg.topic_prefix, "ratepool");
	assert_string_equal(cfg.discovery_prefix, "homeassistant");
	assert_string_equal(cfg.store, "./var/ratepool");
	assert_int_equal(cfg.store_max_bytes, 256ULL * 1024 * 1024);
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_null(cfg.log_file);
	assert_int_equal(cfg.series_count, 0);
	assert_string_equal(cfg.octopus_url, "https://api.octopus.energy");
	assert_string_equal(cfg.tibber_url, "https://api.tibber.com");
	assert_string_equal(cfg.watttime_url, "https://api.watttime.org");
	assert_string_equal(cfg.aemo_url, "https://visualisations.aemo.com.au");
	assert_string_equal(cfg.energycharts_url, "https://api.energy-charts.info");
	assert_null(cfg.octopus_api_key);
	assert_null(cfg.tibber_token);
	assert_null(cfg.watttime_username);
	assert_null(cfg.watttime_password);
	assert_string_equal(cfg.watttime_signal, "co2_moer");
	assert_int_equal(cfg.account_count, 0);
	assert_int_equal(cfg.http_connect_timeout_ms, 5000);
	assert_int_equal(cfg.http_timeout_ms, 20000);
	assert_int_equal(cfg.http_max_body_bytes, 8 * 1024 * 1024);
	assert_int_equal(cfg.retry_max_attempts, 4);
	assert_int_equal(cfg.retry_base_ms, 500);
	assert_int_equal(cfg.retry_cap_ms, 30000);
	assert_int_equal(cfg.token_refresh_margin_s, 300);
	assert_int_equal(cfg.request_max_range_s, 7 * 86400);
	assert_int_equal(cfg.request_wait_ms, 10000);
	assert_int_equal(cfg.series_idle_s, 7 * 86400);
	assert_int_equal(cfg.new_series_per_minute, 30);
	assert_int_equal(cfg.forecast_ttl_s, 1800);
	assert_int_equal(cfg.stale_grace_s, 300);
	assert_int_equal(cfg.negative_cache_s, 600);
	assert_int_equal(cfg.failure_threshold, 3);
	assert_int_equal(cfg.health_interval_s, 30);
	assert_int_equal(cfg.shutdown_grace_ms, 5000);
	config_free(&cfg);
	assert_null(cfg.mqtt_url);
	config_free(&cfg); /* twice is harmless */
}

static void test_empty_file_gives_the_defaults(void **state)
{
	struct config a, b;
	char *da, *db;

	load_ok(&a, NULL, no_env);
	load_ok(&b, data("empty.json"), no_env);
	free(a.mqtt_client_id);
	a.mqtt_client_id = NULL;
	free(b.mqtt_client_id);
	b.mqtt_client_id = NULL;
	da = dump(&a);
	db = dump(&b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	config_free(&a);
	config_free(&b);
}

/* Every setting the dump shows is documented with its JSON key and its
 * environment variable, so docs/configuration.md cannot fall behind. */
static void test_every_setting_is_documented(void **state)
{
	struct config cfg;
	json_error_t jerr;
	json_t *root, *docs_value;
	const char *key;
	char *text, *docs;
	char name[96];
	FILE *f;
	long n;
	size_t i;
	int count = 0;

	load_ok(&cfg, NULL, no_env);
	text = dump(&cfg);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	f = fopen(source_path("docs/configuration.md"), "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	docs = malloc((size_t)n + 1);
	assert_non_null(docs);
	assert_int_equal(fread(docs, 1, (size_t)n, f), (size_t)n);
	docs[n] = '\0';
	fclose(f);
	json_object_foreach(root, key, docs_value)
	{
		snprintf(name, sizeof(name), "`%s`", key);
		if(!strstr(docs, name))
			fail_msg("docs/configuration.md lacks the JSON key %s", name);
		snprintf(name, sizeof(name), "RATEPOOL_");
		for(i = 0; key[i]; i++)
			name[9 + i] = (char)(key[i] >= 'a' && key[i] <= 'z' ? key[i] - 32 : key[i]);
		name[9 + i] = '\0';
		if(!strstr(docs, name))
			fail_msg("docs/configuration.md lacks %s", name);
		count++;
	}
	assert_int_equal(count, 40);
	free(docs);
	free(text);
	json_decref(root);
	config_free(&cfg);
}

/* --- the file and the environment --------------------------------------------- */

static void test_file_sets_every_setting(void **state)
{
	struct config cfg;

	load_ok(&cfg, data("full.json"), no_env);
	assert_string_equal(cfg.mqtt_url, "ssl://broker.example.net:8883");
	assert_string_equal(cfg.mqtt_username, "ratepool");
	assert_string_equal(cfg.mqtt_password, "mqtt-pass-from-json");
	assert_string_equal(cfg.mqtt_ca_file, "/dev/null");
	assert_string_equal(cfg.mqtt_client_id, "ratepool-test");
	assert_string_equal(cfg.topic_prefix, "home/prices");
	assert_string_equal(cfg.discovery_prefix, ""); /* discovery off */
	assert_string_equal(cfg.store, "/var/lib/ratepool");
	assert_int_equal(cfg.store_max_bytes, 1024ULL * 1024 * 1024);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(cfg.log_file, "/var/log/ratepool.log");
	assert_int_equal(cfg.series_count, 3);
	assert_string_equal(cfg.series[0].provider, "octopus");
	assert_string_equal(cfg.series[0].id, "E-1R-AGILE-24-10-01-C");
	assert_string_equal(cfg.series[2].provider, "aemo");
	assert_string_equal(cfg.series[2].id, "NSW1");
	assert_string_equal(cfg.octopus_url, "http://127.0.0.1:8080"); /* trailing '/' dropped */
	assert_string_equal(cfg.energycharts_url, "http://127.0.0.1:8080");
	assert_string_equal(cfg.octopus_api_key, "sk_test_from_json");
	assert_int_equal(cfg.account_count, 2);
	assert_string_equal(cfg.accounts[1].alias, "office");
	assert_string_equal(cfg.accounts[1].number, "A-FAKE0001");
	assert_string_equal(cfg.tibber_token, "tibber-token-from-json");
	assert_string_equal(cfg.watttime_username, "ratepool");
	assert_string_equal(cfg.watttime_password, "watttime-pass-from-json");
	assert_string_equal(cfg.watttime_signal, "co2_aoer");
	assert_int_equal(cfg.http_connect_timeout_ms, 2000);
	assert_int_equal(cfg.http_timeout_ms, 10000);
	assert_int_equal(cfg.http_max_body_bytes, 1048576);
	assert_int_equal(cfg.retry_max_attempts, 2);
	assert_int_equal(cfg.retry_base_ms, 100);
	assert_int_equal(cfg.retry_cap_ms, 1000);
	assert_int_equal(cfg.token_refresh_margin_s, 60);
	assert_int_equal(cfg.request_max_range_s, 86400);
	assert_int_equal(cfg.request_wait_ms, 2000);
	assert_int_equal(cfg.series_idle_s, 3600);
	assert_int_equal(cfg.new_series_per_minute, 5);
	assert_int_equal(cfg.forecast_ttl_s, 600);
	assert_int_equal(cfg.stale_grace_s, 60);
	assert_int_equal(cfg.negative_cache_s, 120);
	assert_int_equal(cfg.failure_threshold, 5);
	assert_int_equal(cfg.health_interval_s, 10);
	assert_int_equal(cfg.shutdown_grace_ms, 1000);
	config_free(&cfg);
}

static void test_environment_beats_file(void **state)
{
	struct config cfg;

	load_ok(&cfg, data("full.json"),
	        ENV("RATEPOOL_MQTT_URL=tcp://10.0.0.5:1883", "RATEPOOL_TOPIC_PREFIX=rp",
	            "RATEPOOL_HTTP_TIMEOUT_MS=30000",
	            "RATEPOOL_SERIES=tibber/96a14971-525a-4420-aae9-e5aedaa129ff", "RATEPOOL_LOG_LEVEL=warn",
	            "RATEPOOL_OCTOPUS_ACCOUNTS=", "RATEPOOL_DISCOVERY_PREFIX=homeassistant",
	            "RATEPOOL_MQTT_CLIENT_ID=from-env"));
	assert_string_equal(cfg.mqtt_url, "tcp://10.0.0.5:1883");
	assert_string_equal(cfg.topic_prefix, "rp");
	assert_int_equal(cfg.http_timeout_ms, 30000);
	assert_int_equal(cfg.series_count, 1); /* the file's list is replaced, not extended */
	assert_string_equal(cfg.series[0].provider, "tibber");
	assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
	assert_int_equal(cfg.account_count, 0);
	assert_string_equal(cfg.discovery_prefix, "homeassistant");
	assert_string_equal(cfg.mqtt_client_id, "from-env");
	/* What the environment does not name keeps the file's value. */
	assert_string_equal(cfg.store, "/var/lib/ratepool");
	assert_int_equal(cfg.retry_max_attempts, 2);
	config_free(&cfg);
}

static void test_minimal_file_and_string_lists(void **state)
{
	struct config cfg;

	load_ok(&cfg, data("minimal.json"), no_env);
	assert_string_equal(cfg.mqtt_url, "tcp://mosquitto:1883");
	assert_int_equal(cfg.series_count, 2);
	assert_string_equal(cfg.series[1].provider, "energycharts");
	assert_string_equal(cfg.series[1].id, "DE-LU");
	assert_int_equal(cfg.account_count, 1);
	assert_string_equal(config_account_find(&cfg, "home")->number, "A-1234ABCD");
	assert_string_equal(cfg.topic_prefix, "ratepool");
	config_free(&cfg);
}

static void test_environment_alone(void **state)
{
	struct config cfg;

	/* Other variables, and RATEPOOL_TEST_CLOCK (read by rtime), are left alone. */
	load_ok(&cfg, NULL,
	        ENV("PATH=/usr/bin", "HOME=/root", "ratepool_mqtt_url=ignored",
	            "RATEPOOL_TEST_CLOCK=2026-11-21T12:00:00Z,60", "RATEPOOL_BIN=build/ratepool",
	            "RATEPOOL_BENCH_RUNS=3", "RATEPOOL_STORE=/data/store", "RATEPOOL_STORE_MAX_BYTES=64MiB",
	            "RATEPOOL_WATTTIME_SIGNAL=health_damage", "RATEPOOL_LOG_FILE=/tmp/x.log",
	            "RATEPOOL_MQTT_URL=wss://broker:443/mqtt"));
	assert_string_equal(cfg.store, "/data/store");
	assert_int_equal(cfg.store_max_bytes, 64ULL * 1024 * 1024);
	assert_string_equal(cfg.watttime_signal, "health_damage");
	assert_string_equal(cfg.log_file, "/tmp/x.log");
	assert_string_equal(cfg.mqtt_url, "wss://broker:443/mqtt");
	config_free(&cfg);
}

static void test_process_environment_is_used_when_envp_is_null(void **state)
{
	struct config cfg;

	setenv("RATEPOOL_TOPIC_PREFIX", "from-environ", 1);
	load_ok(&cfg, NULL, NULL);
	unsetenv("RATEPOOL_TOPIC_PREFIX");
	assert_string_equal(cfg.topic_prefix, "from-environ");
	config_free(&cfg);
}

static void test_empty_values(void **state)
{
	struct config cfg;

	/* Empty optional values unset what the file set; an empty discovery
	 * prefix turns discovery off; an empty series list is allowed. */
	load_ok(&cfg, data("full.json"),
	        ENV("RATEPOOL_MQTT_USERNAME=", "RATEPOOL_MQTT_PASSWORD=", "RATEPOOL_LOG_FILE=",
	            "RATEPOOL_SERIES=", "RATEPOOL_DISCOVERY_PREFIX="));
	assert_null(cfg.mqtt_username);
	assert_null(cfg.mqtt_password);
	assert_null(cfg.log_file);
	assert_int_equal(cfg.series_count, 0);
	assert_string_equal(cfg.discovery_prefix, "");
	config_free(&cfg);

	load_ok(&cfg, data("null_optional.json"), no_env);
	assert_null(cfg.mqtt_username);
	config_free(&cfg);

	/* Required settings cannot be emptied. */
	load_fails(NULL, ENV("RATEPOOL_STORE="), "RATEPOOL_STORE", "must not be empty");
	load_fails(NULL, ENV("RATEPOOL_MQTT_URL="), "RATEPOOL_MQTT_URL", "must not be empty");
	load_fails(NULL, ENV("RATEPOOL_TOPIC_PREFIX="), "RATEPOOL_TOPIC_PREFIX", "must not be empty");
	load_fails(NULL, ENV("RATEPOOL_HTTP_TIMEOUT_MS="), "RATEPOOL_HTTP_TIMEOUT_MS", "must not be empty");
	load_fails(NULL, ENV("RATEPOOL_LOG_LEVEL="), "RATEPOOL_LOG_LEVEL", "must not be empty");
	load_fails(data("null_required.json"), no_env, "store", "null");
}

/* --- refusals ------------------------------------------------------------------ */

static void test_unknown_json_key_is_refused(void **state)
{
	load_fails(data("unknown_key.json"), no_env, "unknown key \"topic_prefx\"", "unknown_key.json");
	load_fails(data("file_for_non_secret.json"), no_env, "unknown key \"topic_prefix_file\"", NULL);
}

static void test_unknown_environment_variable_is_refused(void **state)
{
	load_fails(NULL, ENV("RATEPOOL_MQTT_URI=tcp://x:1883"), "RATEPOOL_MQTT_URI", "unknown setting");
	load_fails(NULL, ENV("RATEPOOL_=x"), "RATEPOOL_", "unknown setting");
	load_fails(NULL, ENV("RATEPOOL_SERIES_X=1"), "RATEPOOL_SERIES_X", "unknown setting");
	/* _FILE only for secrets. */
	load_fails(NULL, ENV("RATEPOOL_STORE_FILE=/tmp/x"), "RATEPOOL_STORE_FILE", "only secrets");
	/* A variable without '=' (possible with a hand-made envp) is still named. */
	load_fails(NULL, ENV("RATEPOOL_NOPE"), "RATEPOOL_NOPE", "unknown setting");
}

static void test_file_errors_name_the_file(void **state)
{
	load_fails(data("not_an_object.json"), no_env, "not_an_object.json", "must be a JSON object");
	load_fails(data("syntax_error.json"), no_env, "syntax_error.json:3:", NULL);
	load_fails(data("duplicate_key.json"), no_env, "duplicate_key.json", "duplicate");
	load_fails("/nonexistent/ratepool.json", no_env, "/nonexistent/ratepool.json", NULL);
}

static void test_json_types_are_checked(void **state)
{
	load_fails(data("int_as_string.json"), no_env, "http_timeout_ms", "must be a number");
	load_fails(data("string_as_number.json"), no_env, "topic_prefix", "must be a string");
	load_fails(data("real_for_int.json"), no_env, "retry_max_attempts", "must be an integer");
	load_fails(data("series_not_strings.json"), no_env, "series", "must be strings");
	load_fails(data("bad_series_provider.json"), no_env, "unknown provider \"nordpool\"", NULL);
	load_fails(data("bad_url.json"), no_env, "mqtt_url", "must start with tcp://");
	load_fails(data("out_of_range.json"), no_env, "health_interval_s", "between 1 and 3600");
}

struct bad_case {
	const char *env;
	const char *want;
};

static void test_each_bad_value_names_the_setting(void **state)
{
	static const struct bad_case cases[] = {
	        {"RATEPOOL_MQTT_URL=http://127.0.0.1:1883",
	         "RATEPOOL_MQTT_URL: must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss://"},
	        {"RATEPOOL_MQTT_URL=127.0.0.1:1883", "RATEPOOL_MQTT_URL: must start with"},
	        {"RATEPOOL_MQTT_URL=tcp://", "RATEPOOL_MQTT_URL: has no host"},
	        {"RATEPOOL_MQTT_URL=tcp://:1883", "RATEPOOL_MQTT_URL: has no host"},
	        {"RATEPOOL_MQTT_URL=tcp://host:0", "RATEPOOL_MQTT_URL: port must be between 1 and 65535"},
	        {"RATEPOOL_MQTT_URL=tcp://host:65536", "RATEPOOL_MQTT_URL: port must be between"},
	        {"RATEPOOL_MQTT_URL=tcp://host:18x3", "RATEPOOL_MQTT_URL: has a bad port"},
	        {"RATEPOOL_MQTT_URL=tcp://host:", "RATEPOOL_MQTT_URL: has a bad port"},
	        {"RATEPOOL_MQTT_URL=tcp://user:pw@host:1883", "RATEPOOL_MQTT_URL: must not hold credentials"},
	        {"RATEPOOL_MQTT_URL=tcp://[::1", "RATEPOOL_MQTT_URL: has a bad IPv6 host"},
	        {"RATEPOOL_MQTT_URL=tcp://host name:1883", "RATEPOOL_MQTT_URL: is not a valid URL"},
	        {"RATEPOOL_MQTT_CA_FILE=/nonexistent/ca.pem",
	         "RATEPOOL_MQTT_CA_FILE: cannot read /nonexistent/ca.pem"},
	        {"RATEPOOL_MQTT_CLIENT_ID=has space", "RATEPOOL_MQTT_CLIENT_ID: must be printable ASCII"},
	        {"RATEPOOL_TOPIC_PREFIX=a/+/b", "RATEPOOL_TOPIC_PREFIX: must not contain the MQTT wildcards"},
	        {"RATEPOOL_TOPIC_PREFIX=a#", "RATEPOOL_TOPIC_PREFIX: must not contain the MQTT wildcards"},
	        {"RATEPOOL_TOPIC_PREFIX=/ratepool", "RATEPOOL_TOPIC_PREFIX: must not start or end with /"},
	        {"RATEPOOL_TOPIC_PREFIX=ratepool/", "RATEPOOL_TOPIC_PREFIX: must not start or end with /"},
	        {"RATEPOOL_TOPIC_PREFIX=a//b",
	         "RATEPOOL_TOPIC_PREFIX: must not start or end with / or hold an empty level"},
	        {"RATEPOOL_TOPIC_PREFIX=$SYS", "RATEPOOL_TOPIC_PREFIX: must not start with $"},
	        {"RATEPOOL_TOPIC_PREFIX=a b", "RATEPOOL_TOPIC_PREFIX: must not contain spaces"},
	        {"RATEPOOL_TOPIC_PREFIX=a\tb", "RATEPOOL_TOPIC_PREFIX: must not contain control characters"},
	        {"RATEPOOL_DISCOVERY_PREFIX=home+assistant",
	         "RATEPOOL_DISCOVERY_PREFIX: must not contain the MQTT"},
	        {"RATEPOOL_STORE_MAX_BYTES=lots", "RATEPOOL_STORE_MAX_BYTES: \"lots\" is not a size"},
	        {"RATEPOOL_STORE_MAX_BYTES=64XB", "RATEPOOL_STORE_MAX_BYTES: \"64XB\" is not a size"},
	        {"RATEPOOL_STORE_MAX_BYTES=-1", "RATEPOOL_STORE_MAX_BYTES: \"-1\" is not a size"},
	        {"RATEPOOL_STORE_MAX_BYTES=1000", "RATEPOOL_STORE_MAX_BYTES: must be between 1MiB and 1TiB"},
	        {"RATEPOOL_STORE_MAX_BYTES=2TiB", "RATEPOOL_STORE_MAX_BYTES: must be between 1MiB and 1TiB"},
	        {"RATEPOOL_STORE_MAX_BYTES=99999999999999999999999", "RATEPOOL_STORE_MAX_BYTES: \"9999"},
	        {"RATEPOOL_STORE_MAX_BYTES=18446744073709551615TiB", "RATEPOOL_STORE_MAX_BYTES:"},
	        {"RATEPOOL_LOG_LEVEL=verbose",
	         "RATEPOOL_LOG_LEVEL: \"verbose\" is not one of error, warn, info, debug"},
	        {"RATEPOOL_OCTOPUS_URL=api.octopus.energy",
	         "RATEPOOL_OCTOPUS_URL: must start with http:// or https://"},
	        {"RATEPOOL_OCTOPUS_URL=ftp://x", "RATEPOOL_OCTOPUS_URL: must start with http:// or https://"},
	        {"RATEPOOL_TIBBER_URL=https://", "RATEPOOL_TIBBER_URL: has no host"},
	        {"RATEPOOL_WATTTIME_URL=https://x/?a=b", "RATEPOOL_WATTTIME_URL: must be a base URL"},
	        {"RATEPOOL_AEMO_URL=https://x:99999", "RATEPOOL_AEMO_URL: port must be between"},
	        {"RATEPOOL_ENERGYCHARTS_URL=https://x y", "RATEPOOL_ENERGYCHARTS_URL: must be a base URL"},
	        {"RATEPOOL_WATTTIME_SIGNAL=CO2 MOER",
	         "RATEPOOL_WATTTIME_SIGNAL: must be a WattTime signal type"},
	        {"RATEPOOL_HTTP_TIMEOUT_MS=20s", "RATEPOOL_HTTP_TIMEOUT_MS: \"20s\" is not an integer"},
	        {"RATEPOOL_HTTP_TIMEOUT_MS= 200", "RATEPOOL_HTTP_TIMEOUT_MS: \" 200\" is not an integer"},
	        {"RATEPOOL_HTTP_TIMEOUT_MS=99999999999999999999", "RATEPOOL_HTTP_TIMEOUT_MS: \"9999"},
	        {"RATEPOOL_HTTP_TIMEOUT_MS=99", "RATEPOOL_HTTP_TIMEOUT_MS: must be between 100 and 600000"},
	        {"RATEPOOL_HTTP_MAX_BODY_BYTES=1GiB",
	         "RATEPOOL_HTTP_MAX_BODY_BYTES: must be between 64KiB and 256MiB"},
	        {"RATEPOOL_RETRY_MAX_ATTEMPTS=0", "RATEPOOL_RETRY_MAX_ATTEMPTS: must be between 1 and 10"},
	        {"RATEPOOL_RETRY_MAX_ATTEMPTS=-3", "RATEPOOL_RETRY_MAX_ATTEMPTS: must be between 1 and 10"},
	        {"RATEPOOL_HEALTH_INTERVAL_S=0", "RATEPOOL_HEALTH_INTERVAL_S: must be between 1 and 3600"},
	        {"RATEPOOL_SERIES=octopus", "RATEPOOL_SERIES: \"octopus\" is not provider/id"},
	        {"RATEPOOL_SERIES=octopus/a/b", "RATEPOOL_SERIES: \"octopus/a/b\" is not provider/id"},
	        {"RATEPOOL_SERIES=octopus/+", "RATEPOOL_SERIES: \"octopus/+\" is not provider/id"},
	        {"RATEPOOL_SERIES=octopus/#", "RATEPOOL_SERIES: \"octopus/#\" is not provider/id"},
	        {"RATEPOOL_SERIES=nordpool/SE3", "RATEPOOL_SERIES: unknown provider \"nordpool\""},
	        {"RATEPOOL_SERIES=aemo/NSW1,,aemo/VIC1", "RATEPOOL_SERIES: has an empty entry"},
	        {"RATEPOOL_SERIES=aemo/NSW1,", "RATEPOOL_SERIES: has an empty entry"},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=home",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: \"home\" is not alias:A-1234ABCD"},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=home:1234ABCD",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: \"1234ABCD\" is not an Octopus"},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=home:A-12",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: \"A-12\" is not an Octopus"},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=home:a-1234abcd",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: \"a-1234abcd\" is not"},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=my home:A-1234ABCD",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: alias \"my home\""},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=a/b:A-1234ABCD", "RATEPOOL_OCTOPUS_ACCOUNTS: alias \"a/b\""},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=:A-1234ABCD", "RATEPOOL_OCTOPUS_ACCOUNTS: alias \"\""},
	        {"RATEPOOL_OCTOPUS_ACCOUNTS=h:A-1234ABCD,h:A-5678ABCD",
	         "RATEPOOL_OCTOPUS_ACCOUNTS: alias \"h\" is given twice"},
	        {"RATEPOOL_TIBBER_TOKEN=abc\ndef",
	         "RATEPOOL_TIBBER_TOKEN: must not contain control characters"},
	};
	size_t i;

	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *env[] = {(char *)cases[i].env, NULL};
		load_fails(NULL, env, cases[i].want, NULL);
	}
}

static void test_numeric_ranges_are_inclusive(void **state)
{
	struct config cfg;

	load_ok(&cfg, NULL,
	        ENV("RATEPOOL_RETRY_MAX_ATTEMPTS=1", "RATEPOOL_HEALTH_INTERVAL_S=3600",
	            "RATEPOOL_STALE_GRACE_S=0", "RATEPOOL_NEW_SERIES_PER_MINUTE=0",
	            "RATEPOOL_STORE_MAX_BYTES=1MiB", "RATEPOOL_SHUTDOWN_GRACE_MS=60000",
	            "RATEPOOL_REQUEST_MAX_RANGE_S=2678400", "RATEPOOL_HTTP_MAX_BODY_BYTES=64KiB"));
	assert_int_equal(cfg.retry_max_attempts, 1);
	assert_int_equal(cfg.health_interval_s, 3600);
	assert_int_equal(cfg.stale_grace_s, 0);
	assert_int_equal(cfg.new_series_per_minute, 0);
	assert_int_equal(cfg.store_max_bytes, 1024 * 1024);
	assert_int_equal(cfg.shutdown_grace_ms, 60000);
	assert_int_equal(cfg.request_max_range_s, 31 * 86400);
	assert_int_equal(cfg.http_max_body_bytes, 65536);
	config_free(&cfg);
	load_fails(NULL, ENV("RATEPOOL_RETRY_MAX_ATTEMPTS=11"), "RATEPOOL_RETRY_MAX_ATTEMPTS",
	           "between 1 and 10");
	load_fails(NULL, ENV("RATEPOOL_REQUEST_MAX_RANGE_S=2678401"), "RATEPOOL_REQUEST_MAX_RANGE_S",
	           "between");
	load_fails(NULL, ENV("RATEPOOL_TOKEN_REFRESH_MARGIN_S=1501"), "RATEPOOL_TOKEN_REFRESH_MARGIN_S",
	           "between");
}

static void test_sizes_take_binary_suffixes(void **state)
{
	static const struct {
		const char *text;
		unsigned long long bytes;
	} sizes[] = {
	        {"1048576", 1048576ULL}, {"64MiB", 64ULL << 20},   {"64mib", 64ULL << 20},
	        {"64m", 64ULL << 20},    {"64M", 64ULL << 20},     {"1GiB", 1ULL << 30},
	        {"1g", 1ULL << 30},      {"2048KiB", 2ULL << 20},  {"512 MiB", 512ULL << 20},
	        {"1TiB", 1ULL << 40},    {"3145728B", 3ULL << 20},
	};
	char env0[64];
	char *env[] = {env0, NULL};
	struct config cfg;
	size_t i;

	for(i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(env0, sizeof(env0), "RATEPOOL_STORE_MAX_BYTES=%s", sizes[i].text);
		load_ok(&cfg, NULL, env);
		if(cfg.store_max_bytes != sizes[i].bytes)
			fail_msg("%s gave %llu", sizes[i].text, (unsigned long long)cfg.store_max_bytes);
		config_free(&cfg);
	}
}

static void test_settings_that_go_together(void **state)
{
	load_fails(NULL, ENV("RATEPOOL_HTTP_CONNECT_TIMEOUT_MS=30000", "RATEPOOL_HTTP_TIMEOUT_MS=20000"),
	           "RATEPOOL_HTTP_CONNECT_TIMEOUT_MS", "RATEPOOL_HTTP_TIMEOUT_MS");
	load_fails(NULL, ENV("RATEPOOL_RETRY_BASE_MS=5000", "RATEPOOL_RETRY_CAP_MS=1000"),
	           "RATEPOOL_RETRY_BASE_MS", "RATEPOOL_RETRY_CAP_MS");
	load_fails(NULL, ENV("RATEPOOL_WATTTIME_USERNAME=me"), "RATEPOOL_WATTTIME_PASSWORD",
	           "both or neither");
	load_fails(NULL, ENV("RATEPOOL_WATTTIME_PASSWORD=secret-pw"), "RATEPOOL_WATTTIME_USERNAME",
	           "both or neither");
	load_fails(NULL, ENV("RATEPOOL_MQTT_PASSWORD=secret-pw"), "RATEPOOL_MQTT_PASSWORD",
	           "RATEPOOL_MQTT_USERNAME");
}

/* --- series and accounts --------------------------------------------------------- */

static void test_series_list_parse(void **state)
{
	struct config cfg;

	load_ok(&cfg, NULL,
	        ENV("RATEPOOL_SERIES= octopus/E-1R-AGILE-24-10-01-C ,energycharts/DE-LU,\taemo/NSW1, "
	            "watttime/CAISO_NORTH,tibber/96a14971-525a-4420-aae9-e5aedaa129ff,aemo/NSW1 "));
	assert_int_equal(cfg.series_count, 5); /* aemo/NSW1 twice counts once */
	assert_string_equal(cfg.series[0].provider, "octopus");
	assert_string_equal(cfg.series[0].id, "E-1R-AGILE-24-10-01-C");
	assert_string_equal(cfg.series[1].id, "DE-LU");
	assert_string_equal(cfg.series[2].provider, "aemo");
	assert_string_equal(cfg.series[2].id, "NSW1");
	assert_string_equal(cfg.series[3].provider, "watttime");
	assert_string_equal(cfg.series[4].provider, "tibber");
	config_free(&cfg);
}

static void test_series_list_is_bounded(void **state)
{
	size_t cap = (CONFIG_MAX_SERIES + 1) * 20 + 32;
	char *env0 = malloc(cap);
	char *env[] = {env0, NULL};
	struct config cfg;
	size_t len;
	int i;

	assert_non_null(env0);
	len = (size_t)snprintf(env0, cap, "RATEPOOL_SERIES=");
	for(i = 0; i < CONFIG_MAX_SERIES; i++)
		len += (size_t)snprintf(env0 + len, cap - len, "%saemo/R%d", i ? "," : "", i);
	load_ok(&cfg, NULL, env);
	assert_int_equal(cfg.series_count, CONFIG_MAX_SERIES);
	config_free(&cfg);
	snprintf(env0 + len, cap - len, ",aemo/one-more");
	load_fails(NULL, env, "RATEPOOL_SERIES", "more than 256 series");
	free(env0);
}

static void test_accounts_parse_and_find(void **state)
{
	struct config cfg;
	const struct config_account *a;

	load_ok(&cfg, NULL,
	        ENV("RATEPOOL_OCTOPUS_ACCOUNTS=home:A-1234ABCD, holiday.flat:A-AAAA1111,office:A-FAKE0001"));
	assert_int_equal(cfg.account_count, 3);
	a = config_account_find(&cfg, "holiday.flat");
	assert_non_null(a);
	assert_string_equal(a->number, "A-AAAA1111");
	assert_string_equal(config_account_find(&cfg, "home")->number, "A-1234ABCD");
	assert_null(config_account_find(&cfg, "Home"));
	assert_null(config_account_find(&cfg, "nowhere"));
	assert_null(config_account_find(&cfg, NULL));
	config_free(&cfg);
}

static void test_accounts_list_is_bounded(void **state)
{
	char env0[1024];
	char *env[] = {env0, NULL};
	size_t len = (size_t)snprintf(env0, sizeof(env0), "RATEPOOL_OCTOPUS_ACCOUNTS=");
	struct config cfg;
	int i;

	for(i = 0; i < CONFIG_MAX_ACCOUNTS; i++)
		len += (size_t)snprintf(env0 + len, sizeof(env0) - len, "%sa%d:A-%08d", i ? "," : "", i, i);
	load_ok(&cfg, NULL, env);
	assert_int_equal(cfg.account_count, CONFIG_MAX_ACCOUNTS);
	config_free(&cfg);
	snprintf(env0 + len, sizeof(env0) - len, ",extra:A-99999999");
	load_fails(NULL, env, "RATEPOOL_OCTOPUS_ACCOUNTS", "more than 16 accounts");
}

/* --- secrets ---------------------------------------------------------------------- */

static void test_secrets_from_files(void **state)
{
	struct config cfg;
	char e1[256], e2[256], e3[256], e4[256];
	char scrubbed[128];

	snprintf(e1, sizeof(e1), "RATEPOOL_OCTOPUS_API_KEY_FILE=%s",
	         temp_file(0, "octopus", "sk_live_from_file\n", 18));
	snprintf(e2, sizeof(e2), "RATEPOOL_TIBBER_TOKEN_FILE=%s",
	         temp_file(1, "tibber", "tibber-from-file\r\n", 18));
	snprintf(e3, sizeof(e3), "RATEPOOL_WATTTIME_PASSWORD_FILE=%s",
	         temp_file(2, "wt", "wt pass with space", 18));
	snprintf(e4, sizeof(e4), "RATEPOOL_MQTT_PASSWORD_FILE=%s",
	         temp_file(3, "mqtt", "mqtt-from-file\n\n", 16));
	load_ok(&cfg, NULL,
	        ENV(e1, e2, e3, e4, "RATEPOOL_WATTTIME_USERNAME=ratepool",
	            "RATEPOOL_MQTT_USERNAME=ratepool"));
	assert_string_equal(cfg.octopus_api_key, "sk_live_from_file");
	assert_string_equal(cfg.tibber_token, "tibber-from-file");
	assert_string_equal(cfg.watttime_password, "wt pass with space");
	assert_string_equal(cfg.mqtt_password, "mqtt-from-file");
	/* Every secret read is scrubbed from log lines. */
	log_scrub("k=sk_live_from_file t=tibber-from-file w=wt pass with space m=mqtt-from-file", scrubbed,
	          sizeof(scrubbed));
	assert_string_equal(scrubbed, "k=*** t=*** w=*** m=***");
	config_free(&cfg);
}

static void test_secrets_given_inline_are_scrubbed_too(void **state)
{
	struct config cfg;
	char scrubbed[128];

	load_ok(&cfg, data("full.json"), no_env);
	log_scrub("mqtt-pass-from-json sk_test_from_json tibber-token-from-json watttime-pass-from-json",
	          scrubbed, sizeof(scrubbed));
	assert_string_equal(scrubbed, "*** *** *** ***");
	config_free(&cfg);
}

static void test_secret_file_from_json_and_env_beating_it(void **state)
{
	struct config cfg;
	char json[512];
	const char *cfgpath;

	snprintf(json, sizeof(json), "{\"tibber_token_file\": \"%s\"}",
	         temp_file(0, "tibber_json", "tibber-json-file\n", 17));
	cfgpath = temp_file(1, "secret_file.json", json, strlen(json));
	load_ok(&cfg, cfgpath, no_env);
	assert_string_equal(cfg.tibber_token, "tibber-json-file");
	config_free(&cfg);
	/* The environment's plain value wins over the file's _file. */
	load_ok(&cfg, cfgpath, ENV("RATEPOOL_TIBBER_TOKEN=tibber-env-value"));
	assert_string_equal(cfg.tibber_token, "tibber-env-value");
	config_free(&cfg);
}

static void test_secret_file_problems_are_refused(void **state)
{
	char env0[256];
	char *env[] = {env0, NULL};
	char *big = malloc(64 * 1024 + 1);
	const char *path;

	assert_non_null(big);
	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s/missing", tmpdir);
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE: cannot read", "No such file");

	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s", tmpdir);
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE:", "is not a file");

	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s", temp_file(0, "empty", "", 0));
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE:", "is empty");

	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s", temp_file(0, "newline", "\n", 1));
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE:", "is empty");

	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s", temp_file(0, "nul", "abc\0def", 7));
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE:", "NUL");

	memset(big, 'x', 64 * 1024 + 1);
	path = temp_file(0, "big", big, 64 * 1024 + 1);
	snprintf(env0, sizeof(env0), "RATEPOOL_TIBBER_TOKEN_FILE=%s", path);
	load_fails(NULL, env, "RATEPOOL_TIBBER_TOKEN_FILE:", "larger than 64 KiB");
	free(big);

	load_fails(NULL, ENV("RATEPOOL_TIBBER_TOKEN_FILE="), "RATEPOOL_TIBBER_TOKEN_FILE",
	           "must not be empty");
	load_fails(NULL, ENV("RATEPOOL_TIBBER_TOKEN=x1234", "RATEPOOL_TIBBER_TOKEN_FILE=/dev/null"),
	           "RATEPOOL_TIBBER_TOKEN and RATEPOOL_TIBBER_TOKEN_FILE are both set", NULL);
	load_fails(data("secret_and_file.json"), no_env, "tibber_token and tibber_token_file are both set",
	           NULL);
}

static void test_secret_file_over_the_value_cap_is_refused_without_echo(void **state)
{
	char env0[256];
	char *env[] = {env0, NULL};
	char *big = malloc(5000);
	struct config cfg;
	struct rp_err err;

	assert_non_null(big);
	memset(big, 'S', 5000);
	snprintf(env0, sizeof(env0), "RATEPOOL_OCTOPUS_API_KEY_FILE=%s", temp_file(0, "long", big, 5000));
	free(big);
	rp_err_clear(&err);
	assert_int_equal(config_load(&cfg, NULL, env, &err), RP_EINVAL);
	assert_non_null(strstr(err.msg, "RATEPOOL_OCTOPUS_API_KEY_FILE: is longer than"));
	assert_null(strstr(err.msg, "SSSS"));
	config_free(&cfg);
}

static void test_dump_masks_secrets(void **state)
{
	struct config cfg;
	json_error_t jerr;
	json_t *root;
	char *text;

	load_ok(&cfg, data("full.json"), no_env);
	text = dump(&cfg);
	assert_null(strstr(text, "from-json"));
	assert_null(strstr(text, "sk_test"));
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "mqtt_password")), "***");
	assert_string_equal(json_string_value(json_object_get(root, "octopus_api_key")), "***");
	assert_string_equal(json_string_value(json_object_get(root, "tibber_token")), "***");
	assert_string_equal(json_string_value(json_object_get(root, "watttime_password")), "***");
	/* Not secrets: shown. */
	assert_string_equal(json_string_value(json_object_get(root, "mqtt_username")), "ratepool");
	assert_string_equal(json_string_value(json_object_get(root, "log_level")), "debug");
	assert_int_equal(json_integer_value(json_object_get(root, "store_max_bytes")), 1LL << 30);
	assert_int_equal(json_array_size(json_object_get(root, "series")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(root, "series"), 0)),
	                    "octopus/E-1R-AGILE-24-10-01-C");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(root, "octopus_accounts"), "home")),
	        "A-1234ABCD");
	json_decref(root);
	free(text);
	config_free(&cfg);

	/* Unset secrets are null, not "***". */
	load_ok(&cfg, NULL, no_env);
	text = dump(&cfg);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_null(json_object_get(root, "tibber_token")));
	assert_true(json_is_null(json_object_get(root, "mqtt_ca_file")));
	json_decref(root);
	free(text);
	config_free(&cfg);
}

/* What check-config prints is itself a valid config file giving the same
 * configuration (secrets aside). */
static void test_dump_loads_back_to_the_same_config(void **state)
{
	struct config a, b;
	char *first, *second;
	const char *path;

	load_ok(&a, data("minimal.json"), ENV("RATEPOOL_STORE_MAX_BYTES=3MiB", "RATEPOOL_LOG_LEVEL=error"));
	first = dump(&a);
	path = temp_file(0, "dumped.json", first, strlen(first));
	load_ok(&b, path, no_env);
	second = dump(&b);
	assert_string_equal(first, second);
	free(first);
	free(second);
	config_free(&a);
	config_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults_without_file_or_environment),
	        cmocka_unit_test(test_empty_file_gives_the_defaults),
	        cmocka_unit_test(test_every_setting_is_documented),
	        cmocka_unit_test(test_file_sets_every_setting),
	        cmocka_unit_test(test_environment_beats_file),
	        cmocka_unit_test(test_minimal_file_and_string_lists),
	        cmocka_unit_test(test_environment_alone),
	        cmocka_unit_test(test_process_environment_is_used_when_envp_is_null),
	        cmocka_unit_test(test_empty_values),
	        cmocka_unit_test(test_unknown_json_key_is_refused),
	        cmocka_unit_test(test_unknown_environment_variable_is_refused),
	        cmocka_unit_test(test_file_errors_name_the_file),
	        cmocka_unit_test(test_json_types_are_checked),
	        cmocka_unit_test(test_each_bad_value_names_the_setting),
	        cmocka_unit_test(test_numeric_ranges_are_inclusive),
	        cmocka_unit_test(test_sizes_take_binary_suffixes),
	        cmocka_unit_test(test_settings_that_go_together),
	        cmocka_unit_test(test_series_list_parse),
	        cmocka_unit_test(test_series_list_is_bounded),
	        cmocka_unit_test(test_accounts_parse_and_find),
	        cmocka_unit_test(test_accounts_list_is_bounded),
	        cmocka_unit_test(test_secrets_from_files),
	        cmocka_unit_test(test_secrets_given_inline_are_scrubbed_too),
	        cmocka_unit_test(test_secret_file_from_json_and_env_beating_it),
	        cmocka_unit_test(test_secret_file_problems_are_refused),
	        cmocka_unit_test(test_secret_file_over_the_value_cap_is_refused_without_echo),
	        cmocka_unit_test(test_dump_masks_secrets),
	        cmocka_unit_test(test_dump_loads_back_to_the_same_config),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
