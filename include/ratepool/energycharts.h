/*
 * energycharts.h - Energy-Charts (Fraunhofer ISE) day-ahead prices.
 *
 * Series id = bidding zone (DE-LU, AT, FR, NL, ...). One request:
 *   GET {energycharts_url}/price?bzn=Z&start=<from>&end=<to>
 * with start and end as unix seconds (a format the API takes besides
 * dates; it avoids guessing the zone's local midnight).
 *
 * The answer has parallel arrays unix_seconds (slot starts, ascending)
 * and price (EUR/MWh, may hold null for a missing slot), which become
 * EUR/kWh (/1000). A slot ends at the next timestamp, so a day that
 * switches from hourly to 15-minute slots (DE-LU since 2025-10-01) is
 * exact; when the next point is more than an hour away (a gap) or there is
 * none (the last point), the slot length is the step of its neighbours.
 * A null price is skipped: that slot is missing, never zero.
 *
 * Errors: 404 is the API's "no content available" (tomorrow not yet
 * published, ~12:45-13:00 CET) and gives 0 slots without an error, so the
 * scheduler keeps polling; 400 naming the bzn is RP_ENOTFOUND (unknown
 * bidding zone).
 */
#ifndef RATEPOOL_ENERGYCHARTS_H
#define RATEPOOL_ENERGYCHARTS_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/slot.h"

#include <stddef.h>
#include <stdint.h>

/* Largest believable |price| in EUR/kWh (the day-ahead market's own
 * price limits are a few EUR/kWh). */
#define ENERGYCHARTS_MAX_ABS 100.0

extern const struct provider provider_energycharts;

/* Parses a /price answer (`body`, `len` bytes, need not be
 * NUL-terminated) into `out`, keeping slots that start in [from, to).
 * out must be initialised; it is emptied first and its unit set to
 * "EUR/kWh". `unit` may be "EUR / MWh" (any spacing or case), "No Unit"
 * (what the API said in 2024; the price was EUR/MWh then too), or absent;
 * anything else is refused as a wrong unit.
 * Returns 0, RP_EFORBIDDEN (an HTML page), RP_EPARSE (not JSON, missing
 * or mistyped arrays or elements), RP_EGARBAGE (arrays of different
 * lengths, no points, unordered or duplicated times, a time outside
 * 2000..2100 or not on a minute, a non-finite or absurd price, a wrong
 * unit) or RP_ETOOLARGE (more than SLOT_LIST_MAX points). On error out is
 * empty and err says why. */
int energycharts_parse(const char *body, size_t len, int64_t from, int64_t to, struct slot_list *out,
                       struct rp_err *err);

#endif
