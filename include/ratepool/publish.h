/*
 * publish.h - MQTT topics and payloads that ratepool publishes.
 *
 * Pure text building: no MQTT, no store. The daemon looks data up, calls
 * these to build the topic and payload, and hands both to the mqtt
 * module. docs/topics.md is the user-facing contract of what is built.
 *
 * Payloads are written into a caller-owned struct publish_buf: a bounded,
 * growable byte buffer that is reused across messages (after it has grown
 * once, building a message does not allocate). JSON is written directly,
 * without a jansson tree, because the price document is built on every
 * data change and the current-price document at every slot boundary.
 *
 * JSON rules (all builders here):
 *  - strings are escaped per RFC 8259 (", \, control characters), and
 *    invalid UTF-8 is replaced by U+FFFD so the output is always valid
 *    JSON whatever an upstream sent; U+2028/U+2029 are escaped too;
 *  - numbers are printed with up to 15 significant digits ("%.15g",
 *    locale-independent): exact for every decimal the upstreams send
 *    (0.245175, 17.5, -0.0123) and free of binary noise such as
 *    0.24517499999999998; -0 prints as 0. Tiny or huge magnitudes use
 *    JSON's exponent form (1e-07). NaN and infinities are never printed:
 *    the builder refuses them (RP_EINVAL) and the document builders
 *    leave such slots out;
 *  - times are RFC 3339 UTC strings ("2026-11-21T16:00:00Z").
 */
#ifndef RATEPOOL_PUBLISH_H
#define RATEPOOL_PUBLISH_H

#include "ratepool/series.h"
#include "ratepool/slot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default cap on one payload: a week of 5-minute slots fits easily. */
#define PUBLISH_DOC_MAX (256 * 1024)
/* Longest topic prefix accepted ("ratepool", "home/energy/ratepool"). */
#define PUBLISH_PREFIX_MAX 128
/* Room for the longest topic built here (prefix + provider + id + levels). */
#define PUBLISH_TOPIC_SIZE (PUBLISH_PREFIX_MAX + PROVIDER_ID_MAX + SERIES_ID_MAX + 32)

/* A bounded output buffer. Zero-initialised or publish_buf_init()ed
 * before use; publish_buf_free() releases it. Fields are readable by the
 * caller; write only through the functions below. */
struct publish_buf {
	char *p;    /* owned; NUL-terminated text once anything was written, else NULL */
	size_t len; /* bytes of text, without the NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* most bytes of text allowed; 0: PUBLISH_DOC_MAX */
	int err;    /* first error since the last reset (sticky); 0 when fine */
};

/* Sets up an empty buffer with a size cap (0: PUBLISH_DOC_MAX). Does not
 * allocate. */
void publish_buf_init(struct publish_buf *b, size_t max);
/* Frees the memory; the buffer is empty and reusable after. */
void publish_buf_free(struct publish_buf *b);
/* Empties the buffer and clears err, keeping its memory. */
void publish_buf_reset(struct publish_buf *b);

/* Appenders. Each returns b->err afterwards: once an append fails
 * (RP_ENOMEM, RP_ETOOLARGE past b->max, RP_EINVAL for a non-finite
 * number) later appends do nothing and return the same code, so a
 * builder can check once at the end. On error the text is incomplete. */
int publish_buf_append(struct publish_buf *b, const char *s, size_t n);
int publish_buf_puts(struct publish_buf *b, const char *s);
/* A JSON string with quotes; s NULL writes null. */
int publish_buf_json_string(struct publish_buf *b, const char *s);
/* Same for n bytes (need not be NUL-terminated; embedded NULs escaped). */
int publish_buf_json_string_n(struct publish_buf *b, const char *s, size_t n);
/* A JSON number by the rules above; RP_EINVAL for NaN/inf. */
int publish_buf_json_number(struct publish_buf *b, double v);
int publish_buf_json_int(struct publish_buf *b, int64_t v);
/* An RFC 3339 time as a JSON string. */
int publish_buf_json_time(struct publish_buf *b, int64_t t);
/* Same, but null when t <= 0 ("never", "none"). */
int publish_buf_json_time_or_null(struct publish_buf *b, int64_t t);

/* Formats v as publish_buf_json_number would into out (NUL-terminated).
 * Returns the length, or RP_EINVAL for NaN/inf (out then ""). */
int publish_format_number(double v, char out[32]);

/* --- topics -------------------------------------------------------------- */

/* True when prefix can head a topic: 1..PUBLISH_PREFIX_MAX bytes, no
 * wildcard (+ #), no control character, no empty level ("a//b"), not
 * starting with '$' (broker topics) or '/' and not ending with '/'. */
bool publish_prefix_valid(const char *prefix);

/* Topic builders write a NUL-terminated topic into buf (size n).
 * Return 0, RP_EINVAL (bad prefix, or provider/id not matching
 * [A-Za-z0-9._-]{1,64}), or RP_ETOOLARGE when n is too small (buf then
 * holds ""). PUBLISH_TOPIC_SIZE is always large enough. */

/* P/prices/{provider}/{id} */
int publish_topic_prices(char *buf, size_t n, const char *prefix, const struct series_ref *ref);
/* P/prices/{provider}/{id}/current */
int publish_topic_current(char *buf, size_t n, const char *prefix, const struct series_ref *ref);
/* P/status */
int publish_topic_status(char *buf, size_t n, const char *prefix);
/* P/health */
int publish_topic_health(char *buf, size_t n, const char *prefix);
/* P/request/# : the subscription for requests (every depth, so that a
 * malformed topic still gets its bad_topic error reply). */
int publish_topic_request_filter(char *buf, size_t n, const char *prefix);

/* --- documents ------------------------------------------------------------ */

struct publish_price_doc {
	const struct series_ref *ref;  /* borrowed */
	const char *unit;              /* borrowed; NULL: slots->unit */
	int resolution;                /* seconds; <= 0: the first slot's length */
	int64_t fetched_at;            /* 0: null */
	bool stale;                    /* last refresh failed, data may be behind */
	int64_t complete_until;        /* end of the last slot known; 0: null */
	const struct slot_list *slots; /* borrowed; sorted, not overlapping */
};

/* Builds the retained price document (docs/topics.md) into out, which is
 * reset first:
 *   {"series":…,"provider":…,"unit":…,"resolution":1800,
 *    "fetched_at":…,"stale":false,"complete_until":…,
 *    "rates":[{"start":…,"end":…,"value":…[,"value_exc_vat":…]},…]}
 * Slots with a non-finite value are left out (never printed, never
 * replaced by 0); value_exc_vat is written only when finite. Returns 0,
 * RP_EINVAL (bad ref, unsorted or empty-length slots), RP_ETOOLARGE (over
 * out->max), RP_ENOMEM. */
int publish_price_doc(struct publish_buf *out, const struct publish_price_doc *doc);

/* Index of the slot holding now (start <= now < end), or -1. Binary
 * search; slots sorted and not overlapping. */
long publish_slot_at(const struct slot_list *slots, int64_t now);

/* The next instant after now at which the current slot changes: the end
 * of the slot holding now, or the start of the next slot when now falls
 * in a gap. 0 when no slot starts or ends after now. For the daemon's
 * timer that republishes P/prices/…/current. */
int64_t publish_next_boundary(const struct slot_list *slots, int64_t now);

/* Builds {"value":…,"start":…,"end":…,"unit":…} for the slot holding now
 * into out (reset first). unit NULL: slots->unit. Returns 0, RP_ENOENT
 * when no slot with a finite value holds now (publish nothing rather than
 * a made-up value), RP_ETOOLARGE, RP_ENOMEM. */
int publish_current(struct publish_buf *out, const struct slot_list *slots, const char *unit, int64_t now);

#endif
