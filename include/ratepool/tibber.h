/*
 * tibber.h - the Tibber GraphQL client (provider "tibber").
 *
 * The series id is a Tibber home id. One POST to
 * ${RATEPOOL_TIBBER_URL}/v1-beta/gql with `Authorization: Bearer
 * <RATEPOOL_TIBBER_TOKEN>` asks for `priceInfo(resolution: QUARTER_HOURLY)`
 * today and tomorrow (home's local days); tomorrow is [] until it is
 * published (about 13:00 CET). Tibber tokens are personal access tokens:
 * there is no refresh, so a refused token is reported (RP_EAUTH), not
 * retried. docs/providers.md describes the rules.
 */
#ifndef RATEPOOL_TIBBER_H
#define RATEPOOL_TIBBER_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/slot.h"

#include <stddef.h>
#include <stdint.h>

/* Most entries believed in one of today/tomorrow: a 25-hour day of
 * quarter hours. */
#define TIBBER_MAX_ENTRIES 100

/* Largest |price| believed, in currency/kWh. NOK and SEK spot prices have
 * reached about 30 per kWh in crises; 1000 leaves room for any currency
 * Tibber serves while still refusing a unit mix-up by orders of
 * magnitude. */
#define TIBBER_MAX_ABS 1000.0

/* Parses a priceInfo answer for home `home_id` and appends the slots that
 * overlap [from, to) to out, with out->unit set to "<currency>/kWh".
 *  - value is `total` (energy + tax, VAT included); value_exc_vat is NAN
 *    (Tibber's `energy` excludes every tax and levy, not just VAT);
 *  - startsAt may carry milliseconds and any UTC offset;
 *  - a slot lasts the spacing of its list (today or tomorrow): 15 or 60
 *    minutes; a single entry lasts 15 minutes from 2025-10-01 (CET), an
 *    hour before; a missing entry leaves a gap, it is not filled;
 *  - an `errors` list wins over any data: UNAUTHENTICATED -> RP_EAUTH,
 *    NOT_FOUND (or a null home) -> RP_ENOTFOUND, rate limiting ->
 *    RP_ERATELIMIT, anything else -> RP_EUPSTREAM;
 *  - a home without a current subscription -> RP_ENOTFOUND.
 * Accepts `data.viewer.home` (what ratepool asks for) and a
 * `data.viewer.homes` list (the home with that id, or the only one).
 * Returns 0, one of the codes above, RP_EPARSE (not JSON, wrong shape,
 * missing or mistyped fields) or RP_EGARBAGE (bad times, unknown
 * spacing, duplicates or overlaps, more than TIBBER_MAX_ENTRIES entries,
 * currencies that differ or are not three capital letters, values that
 * are not finite or over TIBBER_MAX_ABS). On error out is left as it was. */
int tibber_parse_prices(const char *body, size_t len, const char *home_id, int64_t from, int64_t to,
                        struct slot_list *out, struct rp_err *err);

extern const struct provider provider_tibber;

#endif
