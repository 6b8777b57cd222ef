/* cli.c - command line parsing, usage, and the one-shot subcommands. */
#include "ratepool/cli.h"
#include "ratepool/auth.h"
#include "ratepool/config.h"
#include "ratepool/error.h"
#include "ratepool/log.h"
#include "ratepool/provider.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"
#include "ratepool/store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RATEPOOL_VERSION
#define RATEPOOL_VERSION "0.0.0"
#endif

/* Longest range `fetch` asks for: what one slot list may hold at 5 min. */
#define FETCH_MAX_RANGE_S (31 * 86400)

static const struct {
	const char *name;
	enum cli_command command;
} commands[] = {
        {"run", CLI_RUN},
        {"health", CLI_HEALTH},
        {"fetch", CLI_FETCH},
        {"check-config", CLI_CHECK_CONFIG},
        {"store-reset", CLI_STORE_RESET},
        {"help", CLI_HELP},
        {"version", CLI_VERSION},
};

void cli_usage(FILE *out)
{
	fputs("Usage: ratepool [--config FILE] [--log-level LEVEL] [COMMAND]\n"
	      "\n"
	      "ratepool fetches electricity prices from the upstream APIs once, keeps them\n"
	      "in an LMDB store and serves them over MQTT.\n"
	      "\n"
	      "Commands:\n"
	      "  run            Run the daemon (the default when no command is given).\n"
	      "  health         Print the health the running daemon stored. Exit 0 healthy,\n"
	      "                 1 degraded, 2 cannot tell (no store, never started, or the\n"
	      "                 record is older than 3 x RATEPOOL_HEALTH_INTERVAL_S).\n"
	      "  fetch PROVIDER SERIES [--from T] [--to T]\n"
	      "                 Fetch once through the daemon's code path and print the\n"
	      "                 slots as JSON. T is RFC 3339 (2026-11-21T00:00:00Z); the\n"
	      "                 default is today and tomorrow in the provider's time zone.\n"
	      "                 PROVIDER is octopus, tibber, watttime, aemo or energycharts.\n"
	      "                 Exit 1 when the fetch fails.\n"
	      "  check-config   Print the effective configuration as JSON (secrets shown\n"
	      "                 as \"***\"). Exit 0 valid, 1 invalid with the reason.\n"
	      "  store-reset    Move the store aside (to <store>.broken-<time>) so that a\n"
	      "                 fresh one is created at the next start. Stop the daemon first.\n"
	      "  help           This text.\n"
	      "\n"
	      "Options:\n"
	      "  --config FILE      JSON file of settings; the environment overrides it.\n"
	      "  --log-level LEVEL  error, warn, info or debug (overrides RATEPOOL_LOG_LEVEL).\n"
	      "  -h, --help         This text.\n"
	      "  -V, --version      Print the version.\n"
	      "\n"
	      "Settings: every setting is an environment variable RATEPOOL_<NAME> (or a key\n"
	      "<name> in the --config file), e.g. RATEPOOL_MQTT_URL=tcp://127.0.0.1:1883,\n"
	      "RATEPOOL_SERIES=octopus/E-1R-AGILE-24-10-01-C,energycharts/DE-LU. Secrets may\n"
	      "be given as RATEPOOL_<NAME>_FILE. All of them are listed in\n"
	      "docs/configuration.md; `ratepool check-config` shows the values in effect.\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error (health: cannot tell).\n",
	      out);
}

void cli_version(FILE *out)
{
	fprintf(out, "ratepool %s\n", RATEPOOL_VERSION);
}

static int usage_error(FILE *errout, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(FILE *errout, const char *fmt, ...)
{
	va_list ap;

	fputs("ratepool: ", errout);
	va_start(ap, fmt);
	vfprintf(errout, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ratepool --help'.\n", errout);
	return CLI_EXIT_USAGE;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past what it
 * used. Returns 1 when matched (value set), 0 when not this option, -1
 * when the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if(strncmp(arg, name, n))
		return 0;
	if(arg[n] == '=') {
		*value = arg + n + 1;
		return 1;
	}
	if(arg[n])
		return 0;
	if(*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

int cli_parse(int argc, char **argv, struct cli_args *out, FILE *errout)
{
	static const char *const fetch_opts[] = {"--from", "--to"};
	enum log_level level;
	bool have_command = false, help = false, version = false, options_done = false;
	int i, positional = 0;
	size_t k;

	memset(out, 0, sizeof(*out));
	out->command = CLI_RUN;
	for(i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = NULL;
		int m;

		if(!options_done && arg[0] == '-' && arg[1]) {
			if(!strcmp(arg, "--")) {
				options_done = true;
				continue;
			}
			if(!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
				help = true;
				continue;
			}
			if(!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
				version = true;
				continue;
			}
			m = option_value(argc, argv, &i, "--config", &out->config_path);
			if(m == 0)
				m = option_value(argc, argv, &i, "--log-level", &out->log_level);
			for(k = 0; m == 0 && out->command == CLI_FETCH &&
			           k < sizeof(fetch_opts) / sizeof(fetch_opts[0]);
			    k++) {
				m = option_value(argc, argv, &i, fetch_opts[k], &value);
				if(m == 1 && k == 0)
					out->from = value;
				else if(m == 1)
					out->to = value;
			}
			if(m < 0)
				return usage_error(errout, "option %s needs a value", arg);
			if(m == 0)
				return usage_error(errout, "unknown option %s", arg);
			continue;
		}
		if(!have_command) {
			for(k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
				if(!strcmp(arg, commands[k].name))
					break;
			if(k == sizeof(commands) / sizeof(commands[0]))
				return usage_error(errout, "unknown command \"%s\"", arg);
			out->command = commands[k].command;
			have_command = true;
			continue;
		}
		if(out->command == CLI_FETCH && positional < 2) {
			if(positional++ == 0)
				out->provider = arg;
			else
				out->series = arg;
			continue;
		}
		return usage_error(errout, "unexpected argument \"%s\"", arg);
	}
	if(help) {
		out->command = CLI_HELP;
		return 0;
	}
	if(version) {
		out->command = CLI_VERSION;
		return 0;
	}
	if(out->config_path && !out->config_path[0])
		return usage_error(errout, "--config needs a file name");
	if(out->log_level && log_level_parse(out->log_level, &level))
		return usage_error(errout, "--log-level \"%s\" is not one of error, warn, info, debug",
		                   out->log_level);
	if(out->command == CLI_FETCH && !out->series)
		return usage_error(errout,
		                   "fetch needs a PROVIDER and a SERIES, e.g. fetch energycharts DE-LU");
	return 0;
}

int cli_check_config(const struct config *cfg, FILE *out, FILE *errout)
{
	if(config_dump(cfg, out) || fflush(out)) {
		fprintf(errout, "ratepool: cannot write the configuration\n");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* --- health --------------------------------------------------------------------- */

/* The record's time: "time" (health.h) or "updated_at", RFC 3339 or unix
 * seconds. Returns 0 or RP_EINVAL. */
static int health_time(json_t *root, int64_t *t)
{
	static const char *const keys[] = {"time", "updated_at"};
	size_t i;

	for(i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(root, keys[i]);
		if(json_is_string(v))
			return rtime_parse(json_string_value(v), t);
		if(json_is_integer(v)) {
			*t = (int64_t)json_integer_value(v);
			return 0;
		}
	}
	return RP_EINVAL;
}

int cli_health(const struct config *cfg, FILE *out, FILE *errout)
{
	struct store_options opt = {.path = cfg->store, .max_bytes = cfg->store_max_bytes};
	struct store *s = NULL;
	struct rp_err err;
	struct stat st;
	json_error_t jerr;
	json_t *root = NULL;
	const char *status;
	char *val = NULL;
	char when[RTIME_TEXT_SIZE];
	size_t len = 0;
	int64_t t = 0, age;
	int rc = CLI_EXIT_USAGE;

	rp_err_clear(&err);
	/* store_open would create a store: a health check must not. */
	if(stat(cfg->store, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(errout, "ratepool: no store at %s: the daemon has not run with this RATEPOOL_STORE\n",
		        cfg->store);
		goto out;
	}
	if(store_open(&s, &opt, &err)) {
		fprintf(errout, "ratepool: cannot open the store at %s: %s\n", cfg->store,
		        err.msg[0] ? err.msg : rp_strerror(err.code));
		goto out;
	}
	switch(store_meta_get(s, "health", &val, &len)) {
	case 0:
		break;
	case RP_ENOENT:
		fprintf(errout, "ratepool: no health record in %s: the daemon has not started yet\n",
		        cfg->store);
		goto out;
	default:
		fprintf(errout, "ratepool: cannot read the health record in %s\n", cfg->store);
		goto out;
	}
	root = json_loadb(val, len, 0, &jerr);
	status = json_string_value(json_object_get(root, "status"));
	if(!json_is_object(root) || !status) {
		fprintf(errout, "ratepool: the health record in %s is not health JSON\n", cfg->store);
		goto out;
	}
	fwrite(val, 1, strnlen(val, len), out);
	fputc('\n', out);
	if(health_time(root, &t)) {
		fprintf(errout, "ratepool: the health record has no time: cannot tell how old it is\n");
		goto out;
	}
	age = rtime_now() - t;
	if(age > 3LL * cfg->health_interval_s) {
		rtime_format(t, when);
		fprintf(errout,
		        "ratepool: the health record is %lld s old (written %s; the daemon writes it every "
		        "%d s): "
		        "is the daemon running?\n",
		        (long long)age, when, cfg->health_interval_s);
		goto out;
	}
	if(!strcmp(status, "healthy"))
		rc = CLI_EXIT_OK;
	else if(!strcmp(status, "degraded"))
		rc = CLI_EXIT_FAIL;
	else
		fprintf(errout, "ratepool: unknown health status \"%.40s\"\n", status);
out:
	json_decref(root);
	free(val);
	store_close(s);
	return rc;
}

/* --- fetch ------------------------------------------------------------------------ */

static int parse_time_arg(const char *name, const char *text, int64_t *t, FILE *errout)
{
	if(!rtime_parse(text, t))
		return 0;
	fprintf(errout,
	        "ratepool: %s \"%.64s\" is not an RFC 3339 time such as 2026-11-21T00:00:00Z or "
	        "2026-11-21T00:00:00+01:00\n",
	        name, text);
	return CLI_EXIT_USAGE;
}

static json_t *time_json(int64_t t)
{
	char buf[RTIME_TEXT_SIZE];
	rtime_format(t, buf);
	return json_string(buf);
}

/* The answer as the JSON documented in cli.h. NULL when out of memory. */
static json_t *fetch_json(const struct provider *p, const char *series, const struct provider_result *res)
{
	const struct slot_list *l = &res->slots;
	json_t *root = json_object();
	json_t *rates = json_array();
	size_t i;
	int bad = !root || !rates;

	for(i = 0; !bad && i < l->n; i++) {
		json_t *r = json_object();
		bad |= !r || json_object_set_new(r, "start", time_json(l->v[i].start)) ||
		       json_object_set_new(r, "end", time_json(l->v[i].end)) ||
		       json_object_set_new(r, "value", json_real(l->v[i].value));
		if(!bad && !isnan(l->v[i].value_exc_vat))
			bad |= json_object_set_new(r, "value_exc_vat", json_real(l->v[i].value_exc_vat));
		bad |= json_array_append_new(rates, r);
	}
	if(!bad)
		bad = json_object_set_new(root, "provider", json_string(p->id)) ||
		      json_object_set_new(root, "series", json_string(series)) ||
		      json_object_set_new(root, "unit", json_string(l->unit)) ||
		      json_object_set_new(root, "resolution",
		                          json_integer(l->n ? l->v[l->n - 1].end - l->v[l->n - 1].start
		                                            : p->resolution)) ||
		      json_object_set_new(root, "fetched_at", time_json(res->fetched_at)) ||
		      json_object_set_new(root, "upstream_calls", json_integer(res->upstream_calls)) ||
		      json_object_set_new(root, "rates", rates);
	else
		json_decref(rates);
	if(bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int cli_fetch(const struct config *cfg, const struct cli_args *args, FILE *out, FILE *errout)
{
	const struct provider *p = provider_find(args->provider);
	const struct provider *const *all;
	struct store_options opt = {.path = cfg->store, .max_bytes = cfg->store_max_bytes};
	struct http_retry_policy policy;
	struct provider_result res;
	struct provider_ctx ctx;
	struct store *store = NULL;
	struct auth *auth = NULL;
	struct rp_err err;
	struct stat st;
	json_t *doc = NULL;
	char clean[sizeof(err.msg)];
	int64_t now = rtime_now(), from, to;
	int rc;

	provider_result_init(&res);
	rp_err_clear(&err);
	if(!p) {
		fprintf(errout, "ratepool: unknown provider \"%.40s\" (known:", args->provider);
		for(all = provider_all(); *all; all++)
			fprintf(errout, " %s", (*all)->id);
		fputs(")\n", errout);
		return CLI_EXIT_USAGE;
	}
	if(!series_id_valid(args->series)) {
		fprintf(errout, "ratepool: series id \"%.80s\" must be 1-64 of A-Z a-z 0-9 . _ -\n",
		        args->series);
		return CLI_EXIT_USAGE;
	}
	from = rtime_day_start(p->zone, now);
	to = rtime_day_add(p->zone, now, 2);
	if((args->from && (rc = parse_time_arg("--from", args->from, &from, errout))) ||
	   (args->to && (rc = parse_time_arg("--to", args->to, &to, errout))))
		return rc;
	if(from >= to) {
		fprintf(errout, "ratepool: --from must be before --to\n");
		return CLI_EXIT_USAGE;
	}
	if(to - from > FETCH_MAX_RANGE_S) {
		fprintf(errout, "ratepool: the range from --from to --to is longer than 31 days\n");
		return CLI_EXIT_USAGE;
	}

	/* An existing store lends its tokens and account data; a one-off
	 * fetch never creates one. */
	if(!stat(cfg->store, &st) && S_ISDIR(st.st_mode) && store_open(&store, &opt, &err)) {
		fprintf(errout, "ratepool: warning: fetching without the store at %s: %s\n", cfg->store,
		        err.msg[0] ? err.msg : rp_strerror(err.code));
		store = NULL;
		rp_err_clear(&err);
	}
	if(p->needs_auth || config_account_find(cfg, args->series)) {
		rc = auth_new(&auth, store, cfg);
		if(rc) {
			fprintf(errout, "ratepool: fetch %s/%s failed: %s (%s)\n", p->id, args->series,
			        rp_strerror(rc), rp_code_name(rc));
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	}
	provider_retry_policy(cfg, &policy);
	ctx.cfg = cfg;
	ctx.auth = auth;
	ctx.store = store;
	ctx.retry = &policy;
	rc = provider_fetch(p, &ctx, args->series, from, to, &res, &err);
	if(rc) {
		log_scrub(err.msg[0] ? err.msg : rp_strerror(rc), clean, sizeof(clean));
		fprintf(errout, "ratepool: fetch %s/%s failed: %s (%s)\n", p->id, args->series, clean,
		        rp_code_name(rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	doc = fetch_json(p, args->series, &res);
	if(!doc || json_dumpf(doc, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) ||
	   fputc('\n', out) == EOF || fflush(out)) {
		fprintf(errout, "ratepool: cannot write the answer\n");
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if(!res.slots.n)
		fprintf(errout, "ratepool: %s/%s has no slots in that range (yet)\n", p->id, args->series);
	rc = CLI_EXIT_OK;
out:
	json_decref(doc);
	provider_result_free(&res);
	auth_free(auth);
	store_close(store);
	return rc;
}

/* --- store-reset ---------------------------------------------------------------------- */

int cli_store_reset(const struct config *cfg, FILE *out, FILE *errout)
{
	char moved[4200];
	struct stat st;

	if(stat(cfg->store, &st) && errno == ENOENT) {
		fprintf(out, "ratepool: no store at %s: nothing to move\n", cfg->store);
		return CLI_EXIT_OK;
	}
	if(store_move_aside(cfg->store, moved, sizeof(moved))) {
		fprintf(errout, "ratepool: cannot move the store at %s aside (see the log line above)\n",
		        cfg->store);
		return CLI_EXIT_FAIL;
	}
	fprintf(out, "ratepool: moved the store %s to %s; a fresh one is created at the next start\n",
	        cfg->store, moved);
	return CLI_EXIT_OK;
}
