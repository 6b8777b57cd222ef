/*
 * watttime.h - WattTime v3 marginal-emissions forecast client.
 *
 * Series id = WattTime region (e.g. CAISO_NORTH). The signal comes from
 * the config (watttime_signal, default co2_moer). One request:
 *   GET {watttime_url}/v3/forecast?region=R&signal_type=S&horizon_hours=H
 *   Authorization: Bearer <token>          (auth_perform, AUTH_WATTTIME)
 * The forecast has no start/end: it is the newest forecast from about now
 * for H hours (1..72, chosen to reach the asked `to`). Every point is a
 * 5-minute slot [point_time, point_time + data_point_period_seconds); the
 * unit is the upstream's meta.units ("lbs_co2_per_mwh", "$_per_mwh"), kept
 * as is (carbon keeps the upstream's unit). Values are revisable: the
 * provider is PERIODIC with revisable set, so the pool applies its TTL.
 *
 * Upstream errors become messages that say what to do (auth_perform
 * first refreshes the token and retries once on 401 or 403):
 *   403 JSON "Invalid scope"      RP_EFORBIDDEN  region not in your plan
 *   403 HTML page, login refused  RP_EAUTH       check username/password
 *   400 "Invalid region" / 404    RP_ENOTFOUND   unknown region
 *   other 400 / 422               RP_EUPSTREAM   bad signal or parameter
 */
#ifndef RATEPOOL_WATTTIME_H
#define RATEPOOL_WATTTIME_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/slot.h"

#include <stddef.h>
#include <stdint.h>

/* Largest believable |value|: MOER is at most a few thousand lbs/MWh. */
#define WATTTIME_MAX_ABS 10000.0

extern const struct provider provider_watttime;

/* Parses a /v3/forecast answer (`body`, `len` bytes, need not be
 * NUL-terminated) into `out`, keeping only the points whose slot starts in
 * [from, to). `region` and `signal` (either may be NULL: not checked) must
 * match meta.region / meta.signal_type when the answer states them.
 * out must be initialised; it is emptied first and its unit set from
 * meta.units. Each meta.warnings entry is logged.
 * Returns 0, RP_EFORBIDDEN (an HTML page), RP_EPARSE (not JSON, or not the
 * forecast's shape: missing or mistyped fields), RP_EGARBAGE (no points,
 * a time that does not parse, unordered or overlapping points, a value
 * that is not finite or above WATTTIME_MAX_ABS, a unit that is not a
 * plain word, region or signal mismatch) or RP_ETOOLARGE (more points
 * than SLOT_LIST_MAX). On error out is empty and err says why. */
int watttime_parse_forecast(const char *body, size_t len, const char *region, const char *signal,
                            int64_t from, int64_t to, struct slot_list *out, struct rp_err *err);

/* Turns a failed /v3/forecast (class `code` from http.h or auth_perform,
 * HTTP `status` of the last answer, its body, may be NULL) into the
 * user-facing message in err and returns the code to report (see the
 * table above). Other codes (transport, 5xx, 429) keep err as it is.
 * Exposed for tests. */
int watttime_explain_error(int code, long status, const char *body, size_t len, const char *region,
                           const char *signal, struct rp_err *err);

#endif
