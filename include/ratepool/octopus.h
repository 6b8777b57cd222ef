/*
 * octopus.h - the Octopus Energy REST client (provider "octopus").
 *
 * Series ids are either a tariff code ("E-1R-AGILE-24-10-01-C"), whose
 * public `standard-unit-rates` are fetched without credentials, or an
 * account alias from the config (RATEPOOL_OCTOPUS_ACCOUNTS=alias:A-...),
 * which is resolved through `/v1/accounts/{number}/` (API key as basic
 * auth user) into the tariffs that applied when, and answered with the
 * rates of those tariffs. docs/providers.md describes the rules (payment
 * method duplicates, open-ended rates, long rows, DST days).
 *
 * The parsers are exported so that tests can feed them fixture files.
 * Rates are pence in the upstream and GBP here (divided by 100).
 */
#ifndef RATEPOOL_OCTOPUS_H
#define RATEPOOL_OCTOPUS_H

#include "ratepool/error.h"
#include "ratepool/provider.h"
#include "ratepool/slot.h"

#include <stddef.h>
#include <stdint.h>

#define OCTOPUS_TARIFF_MAX     64        /* longest tariff code kept, with NUL */
#define OCTOPUS_MAX_PAGES      50        /* `next` links followed per fetch */
#define OCTOPUS_PAGE_SIZE      1500      /* the API's largest page */
#define OCTOPUS_MAX_AGREEMENTS 64        /* import agreements kept per account */
#define OCTOPUS_ACCOUNT_TTL_S  21600     /* account record reused while younger (6 h) */
#define OCTOPUS_OPEN_END       INT64_MAX /* valid_to of an open-ended row or agreement */

/* One row of a standard-unit-rates page, in pence as the upstream has it. */
enum octopus_payment { OCTOPUS_PAY_NONE, OCTOPUS_PAY_DD, OCTOPUS_PAY_OTHER };

struct octopus_row {
	int64_t from;
	int64_t to; /* OCTOPUS_OPEN_END for valid_to: null */
	double inc_vat;
	double exc_vat;
	enum octopus_payment payment;
};

/* Rows gathered over all pages of one fetch. Owns v. */
struct octopus_rows {
	struct octopus_row *v;
	size_t n;
	size_t cap;
};

void octopus_rows_init(struct octopus_rows *rows);
void octopus_rows_free(struct octopus_rows *rows);

/* Product code of a tariff code (doc section 4: "E-1R-AGILE-24-10-01-C" ->
 * "AGILE-24-10-01"), and whether it is electricity ('E') or gas ('G').
 * Returns 0 or RP_EINVAL when the code does not follow
 * ^[EG]-(1R|2R)-(.+)-[A-P]$ (I and O are not regions). out has size n;
 * kind may be NULL. */
int octopus_product_code(const char *tariff, char *out, size_t n, char *kind);

/* Parses one standard-unit-rates page (the DRF envelope) and appends its
 * rows to `rows`. `next` (size next_n) gets the `next` link, or "" when it
 * is null. Returns 0, RP_EPARSE (not JSON, wrong shape, missing or
 * mistyped field) or RP_EGARBAGE (more rows than SLOT_LIST_MAX in all,
 * valid_to before valid_from, unparsable times), with err saying which
 * row. On error rows may hold part of the page; the caller drops them. */
int octopus_parse_page(const char *body, size_t len, struct octopus_rows *rows, char *next, size_t next_n,
                       struct rp_err *err);

/* Turns the rows of all pages into slots of [from, to) in GBP/kWh:
 *  - exact duplicates (a row seen on two pages when new rates were
 *    published during the paging) are dropped;
 *  - a row of another payment method overlapping a DIRECT_DEBIT row is
 *    dropped (DIRECT_DEBIT is preferred, see docs/providers.md);
 *  - an open-ended row ends at `to` (rounded up to a whole minute);
 *  - a row of at most one day is one slot, kept whole when it overlaps
 *    [from, to); a longer row is split at Europe/London midnights into
 *    pieces of at most 24 h (a 25-hour day is cut at 12 h), and the pieces
 *    overlapping [from, to) are kept;
 *  - rows that still overlap after this are refused (RP_EGARBAGE).
 * Sets out->unit to "GBP/kWh". Returns 0, RP_EGARBAGE or RP_ENOMEM/
 * RP_ETOOLARGE. rows is sorted in place. */
int octopus_rows_to_slots(struct octopus_rows *rows, int64_t from, int64_t to, struct slot_list *out,
                          struct rp_err *err);

/* One page and the conversion above in one call, for single-page bodies
 * (tests, fixtures). */
int octopus_parse_rates(const char *body, size_t len, int64_t from, int64_t to, struct slot_list *out,
                        struct rp_err *err);

/* An electricity import agreement of an account. */
struct octopus_agreement {
	char tariff_code[OCTOPUS_TARIFF_MAX];
	int64_t from;
	int64_t to; /* OCTOPUS_OPEN_END when valid_to is null */
};

/* Parses a `/v1/accounts/{number}/` body: the agreements of every
 * electricity meter point that is not an export point (`is_export` true,
 * or, when the field is absent, a tariff code naming OUTGOING or EXPORT),
 * over all properties, oldest first. Zero-length agreements are skipped.
 * Gas meter points are ignored. Returns 0, RP_EPARSE (wrong shape),
 * RP_EGARBAGE (valid_to before valid_from, a malformed tariff code, more
 * than `max` agreements). */
int octopus_parse_account(const char *body, size_t len, struct octopus_agreement *out, size_t max, size_t *n,
                          struct rp_err *err);

/* Which tariff applies in which part of a range. */
struct octopus_tariff_span {
	char tariff_code[OCTOPUS_TARIFF_MAX];
	int64_t from; /* within the requested [from, to) */
	int64_t to;
};

/* The tariffs of the account named `alias` (config accounts) over
 * [from, to), in order: one span per agreement overlapping the range,
 * clipped to it; parts of the range without an agreement have no span.
 * The account record is read from the store ("account/<alias>") when it
 * is younger than OCTOPUS_ACCOUNT_TTL_S, else fetched with the API key
 * (basic auth, key as user) and stored with its fetched_at; only the
 * agreements are stored, not the address. Import meter points only: an
 * export tariff is what Octopus pays, not what the user pays.
 * Returns 0, RP_ENOTFOUND (no such alias, or account unknown upstream),
 * RP_EINVAL (no API key configured), RP_EAUTH (key refused), RP_ETOOLARGE
 * (more than `max` spans), RP_EGARBAGE (two import meter points on
 * different tariffs at the same time), or an http class. *n gets the span
 * count; ctx->store may be NULL (no caching). */
int octopus_account_tariffs(const struct provider_ctx *ctx, const char *alias, int64_t from, int64_t to,
                            struct octopus_tariff_span *spans, size_t max, size_t *n, struct rp_err *err);

/* The same from the store only, never the network: RP_ENOENT when the
 * account record is missing or older than OCTOPUS_ACCOUNT_TTL_S (then
 * octopus_account_tariffs, off the event loop, refreshes it). For the
 * daemon's event loop, which must not wait on an upstream. */
int octopus_account_tariffs_cached(const struct provider_ctx *ctx, const char *alias, int64_t from,
                                   int64_t to, struct octopus_tariff_span *spans, size_t max, size_t *n,
                                   struct rp_err *err);

extern const struct provider provider_octopus;

#endif
