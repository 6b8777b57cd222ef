/*
 * series.h - naming a price series: provider id plus series id.
 *
 * Series ids come from MQTT topics and requests and are hostile until
 * checked: only [A-Za-z0-9._-]{1,64} is accepted (DESIGN.md), so an id
 * can never inject a topic level or a wildcard.
 */
#ifndef RATEPOOL_SERIES_H
#define RATEPOOL_SERIES_H

#include <stdbool.h>
#include <stddef.h>

#define SERIES_ID_MAX   64
#define PROVIDER_ID_MAX 15

struct series_ref {
	char provider[PROVIDER_ID_MAX + 1];
	char id[SERIES_ID_MAX + 1];
};

/* True when id matches [A-Za-z0-9._-]{1,64}. NULL is not valid. */
bool series_id_valid(const char *id);

/* True when len bytes at id match the rule (id need not be terminated). */
bool series_id_valid_n(const char *id, size_t len);

/* Parses "provider/id" (as in RATEPOOL_SERIES). The provider is checked
 * against the same charset (not against the list of known providers).
 * Returns 0 or RP_EINVAL. */
int series_ref_parse(const char *text, struct series_ref *out);

/* Sets out from provider and id, checking both. Returns 0 or RP_EINVAL. */
int series_ref_set(struct series_ref *out, const char *provider, const char *id);

#endif
