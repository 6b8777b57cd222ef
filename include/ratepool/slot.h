/*
 * slot.h - the project's one representation of prices: a list of slots
 * [start, end) with a value, as every provider client produces them and as
 * the store keeps them.
 */
#ifndef RATEPOOL_SLOT_H
#define RATEPOOL_SLOT_H

#include "ratepool/error.h"

#include <stddef.h>
#include <stdint.h>

/* Most slots one upstream answer may carry: 31 days of 5-minute slots.
 * A larger answer is refused as absurd. */
#define SLOT_LIST_MAX 8928

#define SLOT_UNIT_SIZE 24

struct slot {
	int64_t start;        /* UTC seconds, inclusive */
	int64_t end;          /* UTC seconds, exclusive */
	double value;         /* in the list's unit, e.g. GBP/kWh inc. VAT */
	double value_exc_vat; /* NAN when the upstream gives none */
};

/* A growable array of slots plus their unit. Owns `v`. */
struct slot_list {
	struct slot *v;
	size_t n;
	size_t cap;
	char unit[SLOT_UNIT_SIZE]; /* "GBP/kWh", "EUR/kWh", "lbs_co2_per_mwh" */
};

void slot_list_init(struct slot_list *list);
/* Frees v and leaves the list empty and reusable. */
void slot_list_free(struct slot_list *list);
/* Empties the list, keeping its memory. */
void slot_list_clear(struct slot_list *list);

/* Appends one slot. Returns 0, RP_ENOMEM, or RP_ETOOLARGE past
 * SLOT_LIST_MAX. */
int slot_list_push(struct slot_list *list, int64_t start, int64_t end, double value, double value_exc_vat);

/* Sorts by start (stable for equal starts). */
void slot_list_sort(struct slot_list *list);

/* Checks a provider's answer before anything is stored: every value finite
 * and |value| <= max_abs, start < end, slot length a multiple of 60 s and
 * at most a day, slots ordered and not overlapping, unit set. Returns 0 or
 * RP_EGARBAGE with err saying which slot is wrong. */
int slot_list_validate(const struct slot_list *list, double max_abs, struct rp_err *err);

/* End of the contiguous run of slots starting at the first one (the first
 * gap ends it); 0 for an empty list. */
int64_t slot_list_contiguous_end(const struct slot_list *list);

#endif
