/* publish.c - topics and JSON payloads, built into bounded buffers. */
#include "ratepool/publish.h"
#include "ratepool/error.h"
#include "ratepool/rtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void publish_buf_init(struct publish_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void publish_buf_free(struct publish_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

void publish_buf_reset(struct publish_buf *b)
{
	b->len = 0;
	b->err = 0;
	if(b->p)
		b->p[0] = '\0';
}

static size_t buf_max(const struct publish_buf *b)
{
	return b->max ? b->max : PUBLISH_DOC_MAX;
}

/* Makes room for `extra` more bytes plus the NUL. Doubling growth, never
 * past max + 1. */
static int reserve(struct publish_buf *b, size_t extra)
{
	size_t max = buf_max(b);
	size_t need, ncap;
	char *np;

	if(b->err)
		return b->err;
	if(extra > max || b->len > max - extra) {
		b->err = RP_ETOOLARGE;
		return b->err;
	}
	need = b->len + extra + 1;
	if(need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 1024;
	while(ncap < need)
		ncap = ncap > (max + 1) / 2 ? max + 1 : ncap * 2;
	if(ncap > max + 1)
		ncap = max + 1;
	np = realloc(b->p, ncap);
	if(!np) {
		b->err = RP_ENOMEM;
		return b->err;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

int publish_buf_append(struct publish_buf *b, const char *s, size_t n)
{
	if(reserve(b, n))
		return b->err;
	if(n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int publish_buf_puts(struct publish_buf *b, const char *s)
{
	return publish_buf_append(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left) and its code
 * point, or 0 when invalid (overlong, surrogate, past U+10FFFF, cut). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len, i;
	unsigned v, min;

	if(c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if(c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if(c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else
		return 0;
	if(n < len)
		return 0;
	for(i = 1; i < len; i++) {
		if((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if(v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int publish_buf_json_string_n(struct publish_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	if(!s)
		return publish_buf_append(b, "null", 4);
	if(publish_buf_append(b, "\"", 1))
		return b->err;
	while(i < n) {
		unsigned c = u[i];
		char esc[8];
		size_t elen = 0, seq = 1;
		unsigned cp = 0;

		if(c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		if(c >= 0x80) {
			seq = utf8_seq(u + i, n - i, &cp);
			if(seq && cp != 0x2028 && cp != 0x2029) {
				i += seq;
				run += seq;
				continue;
			}
		}
		/* Flush the run of bytes that need no escaping, then escape. */
		if(publish_buf_append(b, (const char *)u + i - run, run))
			return b->err;
		run = 0;
		if(c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if(c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
			elen = 2;
		} else {
			/* Control, DEL, U+2028/9, or an invalid byte (U+FFFD). */
			unsigned v = c < 0x80 ? c : (seq ? cp : 0xfffd);
			memcpy(esc, "\\u", 2);
			esc[2] = hex[(v >> 12) & 0xf];
			esc[3] = hex[(v >> 8) & 0xf];
			esc[4] = hex[(v >> 4) & 0xf];
			esc[5] = hex[v & 0xf];
			elen = 6;
			if(c >= 0x80 && !seq)
				seq = 1;
		}
		if(publish_buf_append(b, esc, elen))
			return b->err;
		i += seq;
	}
	if(publish_buf_append(b, (const char *)u + i - run, run))
		return b->err;
	return publish_buf_append(b, "\"", 1);
}

int publish_buf_json_string(struct publish_buf *b, const char *s)
{
	return publish_buf_json_string_n(b, s, s ? strlen(s) : 0);
}

int publish_format_number(double v, char out[32])
{
	int n;
	int i;

	out[0] = '\0';
	if(!isfinite(v))
		return RP_EINVAL;
	if(v == 0) /* also -0 */
		v = 0;
	n = snprintf(out, 32, "%.15g", v);
	if(n < 0 || n >= 32) {
		out[0] = '\0';
		return RP_EINVAL;
	}
	/* A process that set LC_NUMERIC would get a decimal comma. */
	for(i = 0; i < n; i++)
		if(out[i] == ',')
			out[i] = '.';
	return n;
}

int publish_buf_json_number(struct publish_buf *b, double v)
{
	char text[32];
	int n;

	if(b->err)
		return b->err;
	n = publish_format_number(v, text);
	if(n < 0) {
		b->err = RP_EINVAL;
		return b->err;
	}
	return publish_buf_append(b, text, (size_t)n);
}

int publish_buf_json_int(struct publish_buf *b, int64_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%lld", (long long)v);

	return publish_buf_append(b, text, (size_t)n);
}

int publish_buf_json_time(struct publish_buf *b, int64_t t)
{
	char text[RTIME_TEXT_SIZE + 2];

	text[0] = '"';
	rtime_format(t, text + 1);
	text[RTIME_TEXT_SIZE] = '"';
	return publish_buf_append(b, text, RTIME_TEXT_SIZE + 1);
}

int publish_buf_json_time_or_null(struct publish_buf *b, int64_t t)
{
	if(t <= 0)
		return publish_buf_append(b, "null", 4);
	return publish_buf_json_time(b, t);
}

/* --- topics -------------------------------------------------------------- */

bool publish_prefix_valid(const char *prefix)
{
	size_t n, i;

	if(!prefix)
		return false;
	n = strnlen(prefix, PUBLISH_PREFIX_MAX + 1);
	if(n == 0 || n > PUBLISH_PREFIX_MAX)
		return false;
	if(prefix[0] == '$' || prefix[0] == '/' || prefix[n - 1] == '/')
		return false;
	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)prefix[i];
		if(c == '+' || c == '#' || c < 0x20 || c == 0x7f)
			return false;
		if(c == '/' && prefix[i + 1] == '/') /* empty level */
			return false;
	}
	return true;
}

/* Joins parts with '/' into buf. The caller has checked each part. */
static int join(char *buf, size_t n, const char *const *parts, size_t count)
{
	size_t len = 0, i;

	if(!buf || !n)
		return RP_ETOOLARGE;
	for(i = 0; i < count; i++) {
		size_t pl = strlen(parts[i]);
		if(len + (i ? 1 : 0) + pl + 1 > n) {
			buf[0] = '\0';
			return RP_ETOOLARGE;
		}
		if(i)
			buf[len++] = '/';
		memcpy(buf + len, parts[i], pl);
		len += pl;
	}
	buf[len] = '\0';
	return 0;
}

static int series_topic(char *buf, size_t n, const char *prefix, const struct series_ref *ref, bool current)
{
	const char *parts[5];

	if(buf && n)
		buf[0] = '\0';
	if(!publish_prefix_valid(prefix) || !ref || !series_id_valid(ref->provider) ||
	   !series_id_valid(ref->id))
		return RP_EINVAL;
	parts[0] = prefix;
	parts[1] = "prices";
	parts[2] = ref->provider;
	parts[3] = ref->id;
	parts[4] = "current";
	return join(buf, n, parts, current ? 5 : 4);
}

int publish_topic_prices(char *buf, size_t n, const char *prefix, const struct series_ref *ref)
{
	return series_topic(buf, n, prefix, ref, false);
}

int publish_topic_current(char *buf, size_t n, const char *prefix, const struct series_ref *ref)
{
	return series_topic(buf, n, prefix, ref, true);
}

static int simple_topic(char *buf, size_t n, const char *prefix, const char *a, const char *b)
{
	const char *parts[3] = {prefix, a, b};

	if(buf && n)
		buf[0] = '\0';
	if(!publish_prefix_valid(prefix))
		return RP_EINVAL;
	return join(buf, n, parts, b ? 3 : 2);
}

int publish_topic_status(char *buf, size_t n, const char *prefix)
{
	return simple_topic(buf, n, prefix, "status", NULL);
}

int publish_topic_health(char *buf, size_t n, const char *prefix)
{
	return simple_topic(buf, n, prefix, "health", NULL);
}

int publish_topic_request_filter(char *buf, size_t n, const char *prefix)
{
	/* '#', not '+/+': a request with too many or too few levels must
	 * still reach request_parse and get its bad_topic error reply. */
	const char *parts[3] = {prefix, "request", "#"};

	if(buf && n)
		buf[0] = '\0';
	if(!publish_prefix_valid(prefix))
		return RP_EINVAL;
	return join(buf, n, parts, 3);
}

/* --- documents ------------------------------------------------------------ */

static bool value_ok(double v)
{
	return isfinite(v);
}

int publish_price_doc(struct publish_buf *out, const struct publish_price_doc *doc)
{
	const struct slot_list *sl = doc->slots;
	const char *unit;
	int64_t res = doc->resolution;
	int64_t prev_end = INT64_MIN;
	bool first = true;
	size_t i;

	publish_buf_reset(out);
	if(!doc->ref || !series_id_valid(doc->ref->provider) || !series_id_valid(doc->ref->id))
		return RP_EINVAL;
	unit = doc->unit ? doc->unit : (sl ? sl->unit : NULL);
	if(res <= 0 && sl && sl->n)
		res = sl->v[0].end - sl->v[0].start;

	publish_buf_puts(out, "{\"series\":");
	publish_buf_json_string(out, doc->ref->id);
	publish_buf_puts(out, ",\"provider\":");
	publish_buf_json_string(out, doc->ref->provider);
	publish_buf_puts(out, ",\"unit\":");
	publish_buf_json_string(out, unit && *unit ? unit : NULL);
	publish_buf_puts(out, ",\"resolution\":");
	if(res > 0)
		publish_buf_json_int(out, res);
	else
		publish_buf_puts(out, "null");
	publish_buf_puts(out, ",\"fetched_at\":");
	publish_buf_json_time_or_null(out, doc->fetched_at);
	publish_buf_puts(out, doc->stale ? ",\"stale\":true" : ",\"stale\":false");
	publish_buf_puts(out, ",\"complete_until\":");
	publish_buf_json_time_or_null(out, doc->complete_until);
	publish_buf_puts(out, ",\"rates\":[");
	for(i = 0; sl && i < sl->n; i++) {
		const struct slot *s = &sl->v[i];

		/* Refuse what the store never holds rather than publish a
		 * document that lies about order. */
		if(s->start >= s->end || s->start < prev_end) {
			publish_buf_reset(out);
			return RP_EINVAL;
		}
		prev_end = s->end;
		if(!value_ok(s->value))
			continue;
		publish_buf_puts(out, first ? "{\"start\":" : ",{\"start\":");
		first = false;
		publish_buf_json_time(out, s->start);
		publish_buf_puts(out, ",\"end\":");
		publish_buf_json_time(out, s->end);
		publish_buf_puts(out, ",\"value\":");
		publish_buf_json_number(out, s->value);
		if(value_ok(s->value_exc_vat)) {
			publish_buf_puts(out, ",\"value_exc_vat\":");
			publish_buf_json_number(out, s->value_exc_vat);
		}
		if(publish_buf_puts(out, "}"))
			break;
	}
	return publish_buf_puts(out, "]}");
}

long publish_slot_at(const struct slot_list *slots, int64_t now)
{
	size_t lo = 0, hi;

	if(!slots || !slots->n)
		return -1;
	/* First slot with start > now; the one before may hold now. */
	hi = slots->n;
	while(lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if(slots->v[mid].start <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	if(lo == 0)
		return -1;
	return now < slots->v[lo - 1].end ? (long)(lo - 1) : -1;
}

int64_t publish_next_boundary(const struct slot_list *slots, int64_t now)
{
	size_t lo = 0, hi;

	if(!slots || !slots->n)
		return 0;
	/* First slot ending after now (ends are ordered: no overlaps). */
	hi = slots->n;
	while(lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if(slots->v[mid].end <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	if(lo == slots->n)
		return 0;
	return slots->v[lo].start > now ? slots->v[lo].start : slots->v[lo].end;
}

int publish_current(struct publish_buf *out, const struct slot_list *slots, const char *unit, int64_t now)
{
	long i = publish_slot_at(slots, now);
	const struct slot *s;

	publish_buf_reset(out);
	if(i < 0 || !value_ok(slots->v[i].value))
		return RP_ENOENT;
	s = &slots->v[i];
	if(!unit)
		unit = slots->unit;
	publish_buf_puts(out, "{\"value\":");
	publish_buf_json_number(out, s->value);
	publish_buf_puts(out, ",\"start\":");
	publish_buf_json_time(out, s->start);
	publish_buf_puts(out, ",\"end\":");
	publish_buf_json_time(out, s->end);
	publish_buf_puts(out, ",\"unit\":");
	publish_buf_json_string(out, unit && *unit ? unit : NULL);
	return publish_buf_puts(out, "}");
}
