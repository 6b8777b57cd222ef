/*
 * config.h - every setting, from the environment or a JSON file.
 *
 * Precedence: built-in default < JSON file (--config FILE) < environment.
 * Each setting has one environment variable RATEPOOL_<NAME> and one JSON
 * key <name> (lower case, without the prefix: RATEPOOL_MQTT_URL is
 * "mqtt_url"). A secret may instead be given as RATEPOOL_<NAME>_FILE (or
 * "<name>_file"): a path whose contents (trailing newline stripped) are
 * the value, as Docker secrets provide. Unknown JSON keys, unknown
 * RATEPOOL_* variables and bad values are refused with a message naming
 * the setting. Every secret read is registered with log_add_secret().
 * docs/configuration.md lists them all.
 */
#ifndef RATEPOOL_CONFIG_H
#define RATEPOOL_CONFIG_H

#include "ratepool/error.h"
#include "ratepool/log.h"
#include "ratepool/series.h"

#include <stdint.h>

#define CONFIG_MAX_SERIES   256
#define CONFIG_MAX_ACCOUNTS 16

/* An Octopus account named by an alias that requests may use as a series
 * id: P/request/octopus/<alias>. */
struct config_account {
	char alias[SERIES_ID_MAX + 1];
	char number[32]; /* "A-1234ABCD" */
};

struct config {
	/* MQTT */
	char *mqtt_url;         /* tcp://127.0.0.1:1883 */
	char *mqtt_username;    /* NULL: none */
	char *mqtt_password;    /* secret */
	char *mqtt_ca_file;     /* NULL: system CAs for ssl:// */
	char *mqtt_client_id;   /* default ratepool-<hostname>-<pid> */
	char *topic_prefix;     /* ratepool */
	char *discovery_prefix; /* homeassistant; "" disables discovery */

	/* Store */
	char *store;              /* ./var/ratepool */
	uint64_t store_max_bytes; /* GC bound, default 256 MiB */

	/* Logging */
	enum log_level log_level; /* info */
	char *log_file;           /* NULL: stderr */

	/* Series tracked from the start */
	struct series_ref series[CONFIG_MAX_SERIES];
	int series_count;

	/* Upstreams */
	char *octopus_url;      /* https://api.octopus.energy */
	char *tibber_url;       /* https://api.tibber.com */
	char *watttime_url;     /* https://api.watttime.org */
	char *aemo_url;         /* https://visualisations.aemo.com.au */
	char *energycharts_url; /* https://api.energy-charts.info */
	char *octopus_api_key;  /* secret */
	char *tibber_token;     /* secret */
	char *watttime_username;
	char *watttime_password;                             /* secret */
	char *watttime_signal;                               /* co2_moer */
	struct config_account accounts[CONFIG_MAX_ACCOUNTS]; /* RATEPOOL_OCTOPUS_ACCOUNTS=alias:A-123,... */
	int account_count;

	/* HTTP and retries */
	int http_connect_timeout_ms; /* 5000 */
	int http_timeout_ms;         /* 20000 */
	int http_max_body_bytes;     /* 8 MiB */
	int retry_max_attempts;      /* 4 */
	int retry_base_ms;           /* 500 */
	int retry_cap_ms;            /* 30000 */
	int token_refresh_margin_s;  /* 300 */

	/* Service behaviour (issue 4) */
	int request_max_range_s;   /* 7 days */
	int request_wait_ms;       /* 10000: single-flight bounded wait */
	int series_idle_s;         /* 7 days without a request: stop refreshing */
	int new_series_per_minute; /* 30 */
	int forecast_ttl_s;        /* 1800 */
	int stale_grace_s;         /* 300 */
	int negative_cache_s;      /* 600: unknown series remembered */
	int failure_threshold;     /* 3 consecutive failures: degraded */
	int health_interval_s;     /* 30 */
	int shutdown_grace_ms;     /* 5000 */
};

/* Fills cfg with defaults, then the file (when path is not NULL), then the
 * environment `envp` (NULL: the process environment). On error, cfg holds
 * what was read so far and err names the setting. cfg must be freed with
 * config_free() whatever the result. Returns 0, RP_EINVAL or RP_ENOMEM. */
int config_load(struct config *cfg, const char *path, char *const *envp, struct rp_err *err);

/* Frees every string in cfg. */
void config_free(struct config *cfg);

/* Writes the effective configuration as JSON to `out` (a FILE *), secrets
 * shown as "***" when set. Used by `ratepool check-config`. */
int config_dump(const struct config *cfg, void *out);

/* The account with that alias, or NULL. Borrowed from cfg. */
const struct config_account *config_account_find(const struct config *cfg, const char *alias);

#endif
