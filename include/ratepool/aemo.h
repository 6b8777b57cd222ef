/*
 * aemo.h - AEMO NEM 5-minute dispatch prices (Australia).
 *
 * Series id = NEM region: NSW1, QLD1, VIC1, SA1 or TAS1. One request:
 *   POST {aemo_url}/aemo/apps/api/report/5MIN
 *   Content-Type: application/json       body {"timeScale":["30MIN"]}
 * (the body is required: without it AEMO answers 500). The answer holds,
 * for every region, about 24 hours of 5-minute "ACTUAL" dispatch prices
 * followed by ~16 hours of 30-minute "FORECAST" predispatch rows.
 *
 * Only ACTUAL rows of the asked region are kept: they are settled
 * dispatch prices, so a slot never changes once published. Predispatch
 * (FORECAST) rows are skipped: they are a revisable forecast at a coarser
 * resolution and would be overwritten by the actual price later.
 *
 * Time: SETTLEMENTDATE ("2025-11-14T11:35:00") is NEM time (AEST, UTC+10
 * all year, no DST) without an offset and marks the END of the interval
 * (AEMO convention), so that row is the slot [01:30Z, 01:35Z).
 * Price: RRP in AUD/MWh, divided by 1000 into AUD/kWh. Negative prices
 * are normal (market floor -1000 AUD/MWh, cap about 17,500 and rising).
 * The history only reaches back about 24 hours; older ranges give no
 * slots.
 */
#ifndef RATEPOOL_AEMO_H
#define RATEPOOL_AEMO_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/slot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest believable |price| in AUD/kWh (the cap is ~17.5, the floor -1). */
#define AEMO_MAX_ABS 100.0

extern const struct provider provider_aemo;

/* True for the five NEM regions (exact, upper case). */
bool aemo_region_known(const char *region);

/* Parses a 5MIN report (`body`, `len` bytes, need not be NUL-terminated)
 * into `out`, keeping the ACTUAL rows of `region` whose slot starts in
 * [from, to). out must be initialised; it is emptied first and its unit
 * set to "AUD/kWh". Every row must be an object with string REGIONID and
 * PERIODTYPE; kept rows also need a SETTLEMENTDATE on a 5-minute boundary
 * and a finite number RRP.
 * Returns 0, RP_EFORBIDDEN (an HTML page), RP_EPARSE (not JSON, no "5MIN"
 * array, a row of the wrong shape), RP_ENOTFOUND (no row at all for the
 * region), RP_EGARBAGE (empty report, a bad time, unordered or duplicated
 * intervals, a price that is not finite or beyond AEMO_MAX_ABS) or
 * RP_ETOOLARGE. On error out is empty and err says why. */
int aemo_parse_5min(const char *body, size_t len, const char *region, int64_t from, int64_t to,
                    struct slot_list *out, struct rp_err *err);

#endif
