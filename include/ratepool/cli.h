/*
 * cli.h - the command line: parsing, usage, and the subcommands other
 * than the daemon (check-config, health, fetch, store-reset).
 *
 * main.c sequences them: cli_parse, config_load, log_open, then one
 * subcommand. Subcommands write their result to `out` and messages to
 * `errout` (stdout and stderr in the binary; memory streams in tests) and
 * return the process exit status.
 */
#ifndef RATEPOOL_CLI_H
#define RATEPOOL_CLI_H

#include <stdio.h>

struct config;

/* Exit statuses. `health` uses CLI_EXIT_USAGE's 2 for "cannot tell". */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

enum cli_command {
	CLI_RUN, /* the default */
	CLI_HEALTH,
	CLI_FETCH,
	CLI_CHECK_CONFIG,
	CLI_STORE_RESET,
	CLI_HELP,
	CLI_VERSION,
};

/* The parsed command line. Every string is borrowed from argv. */
struct cli_args {
	enum cli_command command;
	const char *config_path; /* --config FILE, or NULL */
	const char *log_level;   /* --log-level LEVEL (checked), or NULL */
	const char *provider;    /* fetch: PROVIDER */
	const char *series;      /* fetch: SERIES */
	const char *from;        /* fetch: --from T, or NULL */
	const char *to;          /* fetch: --to T, or NULL */
};

/* Parses argv. Global options (--config, --log-level, --help, --version)
 * may come before or after the command. Returns 0, or CLI_EXIT_USAGE
 * after writing a message and a hint to `errout` (unknown option or
 * command, missing or extra argument, bad log level). */
int cli_parse(int argc, char **argv, struct cli_args *out, FILE *errout);

/* `ratepool --help`: every command, the options, where the settings are
 * documented. */
void cli_usage(FILE *out);

/* `ratepool --version`: "ratepool 0.1.0". */
void cli_version(FILE *out);

/* `ratepool check-config`: the effective configuration as JSON, secrets
 * masked. Returns CLI_EXIT_OK, or CLI_EXIT_FAIL when it cannot be
 * written. (An invalid configuration never gets here: main reports the
 * config_load error and exits 1.) */
int cli_check_config(const struct config *cfg, FILE *out, FILE *errout);

/* `ratepool health`: prints the health JSON the daemon stored (meta key
 * "health" in cfg->store). Returns 0 when its status is "healthy", 1 when
 * "degraded", 2 when it cannot tell: no store, no health record, a record
 * that is not JSON or has no status or time, or a record older than
 * 3 x cfg->health_interval_s (the daemon is not running); `errout` says
 * which. Never creates a store where there was none. */
int cli_health(const struct config *cfg, FILE *out, FILE *errout);

/* `ratepool fetch PROVIDER SERIES [--from T] [--to T]`: one fetch through
 * provider_fetch() (the daemon's code path), printed as JSON
 *   {"provider","series","unit","resolution","fetched_at","upstream_calls",
 *    "rates":[{"start","end","value"[,"value_exc_vat"]}]}
 * T is RFC 3339; the default range is the start of today to the end of
 * tomorrow in the provider's zone. The store is used (for tokens and
 * account data) when it already exists, never created; nothing is
 * written to it but tokens. Returns 0; 1 when the fetch failed, with
 * "ratepool: fetch P/S failed: <message> (<code name>)" on errout; 2 for
 * an unknown provider, a bad series id or a bad time. */
int cli_fetch(const struct config *cfg, const struct cli_args *args, FILE *out, FILE *errout);

/* `ratepool store-reset`: moves cfg->store aside (store_move_aside) and
 * prints where it went. Returns 0 (also when there is no store), or 1. */
int cli_store_reset(const struct config *cfg, FILE *out, FILE *errout);

#endif
