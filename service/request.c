/* request.c - parse and check rate requests; build reply JSON by hand. */
#include "ratepool/request.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_providers[] = {"octopus", "tibber",       "watttime",
                                                "aemo",    "energycharts", NULL};

static const char *const refusal_names[REQUEST_REFUSAL_END] = {
        [REQUEST_OK] = "ok",
        [REQUEST_BAD_TOPIC] = "bad_topic",
        [REQUEST_UNKNOWN_PROVIDER] = "unknown_provider",
        [REQUEST_BAD_SERIES_ID] = "bad_series_id",
        [REQUEST_PAYLOAD_TOO_LARGE] = "payload_too_large",
        [REQUEST_BAD_JSON] = "bad_json",
        [REQUEST_NOT_AN_OBJECT] = "not_an_object",
        [REQUEST_BAD_TIME] = "bad_time",
        [REQUEST_BAD_RANGE] = "bad_range",
        [REQUEST_RANGE_TOO_LARGE] = "range_too_large",
        [REQUEST_RANGE_OUT_OF_BOUNDS] = "range_out_of_bounds",
        [REQUEST_BAD_REPLY_TO] = "bad_reply_to",
        [REQUEST_BAD_ID] = "bad_id",
};

const char *request_refusal_name(enum request_refusal r)
{
	if((int)r < 0 || r >= REQUEST_REFUSAL_END || !refusal_names[r])
		return "unknown";
	return refusal_names[r];
}

/* --- UTF-8 ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence starting at s (n bytes left), or 0
 * when the bytes there are not valid UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k, i;
	unsigned cp;

	if(c < 0x80)
		return 1;
	if(c >= 0xC2 && c <= 0xDF) {
		k = 2;
		cp = c & 0x1F;
	} else if(c >= 0xE0 && c <= 0xEF) {
		k = 3;
		cp = c & 0x0F;
	} else if(c >= 0xF0 && c <= 0xF4) {
		k = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if(n < k)
		return 0;
	for(i = 1; i < k; i++) {
		if((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	   (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k;
}

/* --- topics ------------------------------------------------------------------ */

static bool under(const char *topic, size_t len, const char *ns)
{
	size_t n;

	if(!ns || !*ns)
		return false;
	n = strlen(ns);
	if(len < n || memcmp(topic, ns, n) != 0)
		return false;
	return len == n || topic[n] == '/';
}

bool request_reply_topic_ok(const char *prefix, const char *discovery_prefix, const char *topic, size_t len,
                            size_t max_len)
{
	const unsigned char *s = (const unsigned char *)topic;
	size_t i = 0;

	if(!topic || len == 0 || len > max_len || len > 65535)
		return false;
	if(s[0] == '$')
		return false;
	while(i < len) {
		size_t k;
		if(s[i] < 0x20 || s[i] == 0x7F || s[i] == '+' || s[i] == '#')
			return false;
		k = utf8_seq(s + i, len - i);
		if(k == 0)
			return false;
		i += k;
	}
	if(under(topic, len, prefix) || under(topic, len, discovery_prefix))
		return false;
	return true;
}

static bool provider_known(const char *const *list, const char *p, size_t n)
{
	for(; *list; list++) {
		if(strlen(*list) == n && memcmp(*list, p, n) == 0)
			return true;
	}
	return false;
}

/* Checks `topic` against P/request/{provider}/{id} and fills out->ref.
 * Returns REQUEST_OK or the refusal, with err's message set. */
static enum request_refusal parse_topic(const char *prefix, const char *topic, const char *const *providers,
                                        struct request *out, struct rp_err *err)
{
	static const char mid[] = "/request/";
	size_t plen, tlen, provlen, idlen;
	const char *prov, *slash, *id;

	if(!topic || !prefix)
		goto bad;
	plen = strlen(prefix);
	tlen = strnlen(topic, REQUEST_TOPIC_MAX + 1);
	if(tlen > REQUEST_TOPIC_MAX)
		goto bad;
	if(tlen < plen + sizeof(mid) - 1 || memcmp(topic, prefix, plen) != 0 ||
	   memcmp(topic + plen, mid, sizeof(mid) - 1) != 0)
		goto bad;
	prov = topic + plen + sizeof(mid) - 1;
	slash = strchr(prov, '/');
	if(!slash)
		goto bad;
	id = slash + 1;
	if(strchr(id, '/'))
		goto bad;
	provlen = (size_t)(slash - prov);
	idlen = strlen(id);
	if(provlen == 0 || provlen > PROVIDER_ID_MAX || !provider_known(providers, prov, provlen)) {
		rp_err_set(err, RP_EINVAL, "unknown provider \"%.*s\"", (int)(provlen > 32 ? 32 : provlen),
		           prov);
		return REQUEST_UNKNOWN_PROVIDER;
	}
	if(!series_id_valid_n(id, idlen)) {
		rp_err_set(err, RP_EINVAL, "series id must match [A-Za-z0-9._-]{1,64}");
		return REQUEST_BAD_SERIES_ID;
	}
	memcpy(out->ref.provider, prov, provlen);
	out->ref.provider[provlen] = '\0';
	memcpy(out->ref.id, id, idlen + 1);
	out->ref_ok = true;
	return REQUEST_OK;
bad:
	rp_err_set(err, RP_EINVAL, "topic must be %.64s/request/{provider}/{series id}",
	           prefix ? prefix : "P");
	return REQUEST_BAD_TOPIC;
}

/* --- payload fields ---------------------------------------------------------- */

static bool blank(const unsigned char *p, size_t len)
{
	size_t i;

	for(i = 0; i < len; i++) {
		if(p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	}
	return true;
}

static enum request_refusal read_id(json_t *v, struct request *out, struct rp_err *err)
{
	int n;

	if(!v || json_is_null(v))
		return REQUEST_OK;
	if(json_is_string(v)) {
		size_t len = json_string_length(v);
		if(len > REQUEST_ID_MAX) {
			rp_err_set(err, RP_EINVAL, "id is longer than %d bytes", REQUEST_ID_MAX);
			return REQUEST_BAD_ID;
		}
		/* jansson refuses \u0000 unless asked, so the id holds no NUL */
		memcpy(out->id, json_string_value(v), len);
		out->id[len] = '\0';
		out->id_len = len;
		out->id_kind = REQUEST_ID_STRING;
		return REQUEST_OK;
	}
	if(json_is_integer(v)) {
		n = snprintf(out->id, sizeof(out->id), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if(json_is_real(v)) {
		double d = json_real_value(v);
		/* shortest of %.15g / %.17g that reads back as the same number */
		n = snprintf(out->id, sizeof(out->id), "%.15g", d);
		if(n > 0 && strtod(out->id, NULL) != d)
			n = snprintf(out->id, sizeof(out->id), "%.17g", d);
	} else {
		rp_err_set(err, RP_EINVAL, "id must be a string or a number");
		return REQUEST_BAD_ID;
	}
	if(n <= 0 || (size_t)n >= sizeof(out->id)) {
		out->id[0] = '\0';
		rp_err_set(err, RP_EINVAL, "id number cannot be echoed");
		return REQUEST_BAD_ID;
	}
	out->id_len = (size_t)n;
	out->id_kind = REQUEST_ID_NUMBER;
	return REQUEST_OK;
}

static enum request_refusal read_reply_to(json_t *v, const char *prefix, const char *disc,
                                          struct request *out, struct rp_err *err)
{
	const char *s;
	size_t len;

	if(!v || json_is_null(v))
		return REQUEST_OK;
	if(!json_is_string(v)) {
		rp_err_set(err, RP_EINVAL, "reply_to must be a string");
		return REQUEST_BAD_REPLY_TO;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if(!request_reply_topic_ok(prefix, disc, s, len, REQUEST_REPLY_TO_MAX)) {
		rp_err_set(err, RP_EINVAL,
		           "reply_to must be a topic of 1..%d bytes without wildcards or control "
		           "characters, not starting with '$' and outside %.64s/",
		           REQUEST_REPLY_TO_MAX, prefix);
		return REQUEST_BAD_REPLY_TO;
	}
	memcpy(out->reply_to, s, len);
	out->reply_to[len] = '\0';
	out->reply = REQUEST_REPLY_TO;
	return REQUEST_OK;
}

/* Reads "from" or "to". *given is set when the key holds a non-null value. */
static enum request_refusal read_time(json_t *root, const char *key, int64_t *t, bool *given,
                                      struct rp_err *err)
{
	json_t *v = root ? json_object_get(root, key) : NULL;

	*given = false;
	if(!v || json_is_null(v))
		return REQUEST_OK;
	if(!json_is_string(v) || json_string_length(v) > 64 || rtime_parse(json_string_value(v), t) != 0) {
		rp_err_set(err, RP_EINVAL,
		           "%s must be an RFC 3339 time with offset, e.g. 2026-11-21T16:00:00Z", key);
		return REQUEST_BAD_TIME;
	}
	*given = true;
	return REQUEST_OK;
}

/* --- request_parse -------------------------------------------------------------- */

int request_parse(const char *prefix, const char *topic, const void *payload, size_t len,
                  bool has_response_topic, int64_t now, const struct request_limits *lim, struct request *out,
                  struct rp_err *err)
{
	const char *const *providers = default_providers;
	int64_t max_range = REQUEST_MAX_RANGE_S, max_past = REQUEST_MAX_PAST_S,
	        max_future = REQUEST_MAX_FUTURE_S;
	int64_t span, from = 0, to = 0;
	size_t max_payload = REQUEST_PAYLOAD_MAX;
	const char *disc = NULL;
	enum request_refusal r, topic_r, body_r = REQUEST_OK, id_r = REQUEST_OK, reply_r = REQUEST_OK;
	struct rp_err topic_err, body_err, id_err, reply_err;
	bool from_given = false, to_given = false, oom = false;
	json_t *root = NULL;
	json_error_t jerr;

	memset(out, 0, sizeof(*out));
	rp_err_clear(err);
	rp_err_clear(&topic_err);
	rp_err_clear(&body_err);
	rp_err_clear(&id_err);
	rp_err_clear(&reply_err);
	if(lim) {
		if(lim->max_range_s > 0)
			max_range = lim->max_range_s;
		if(lim->max_payload > 0)
			max_payload = lim->max_payload;
		if(lim->max_past_s > 0)
			max_past = lim->max_past_s;
		if(lim->max_future_s > 0)
			max_future = lim->max_future_s;
		if(lim->providers)
			providers = lim->providers;
		disc = lim->discovery_prefix;
	}
	if(!prefix)
		prefix = "";

	/* The body first: even a request refused for its topic should reach
	 * its client, which needs id and reply_to. */
	if(len > max_payload) {
		body_r = REQUEST_PAYLOAD_TOO_LARGE;
		rp_err_set(&body_err, RP_EINVAL, "payload is %zu bytes, at most %zu allowed", len,
		           max_payload);
	} else if(len > 0 && payload && !blank(payload, len)) {
		root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		if(!root) {
			/* jansson reports most failed allocations with no text at all. */
			oom = json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0];
			body_r = REQUEST_BAD_JSON;
			rp_err_set(&body_err, RP_EINVAL,
			           "payload is not valid JSON: %.120s (line %d, column %d)", jerr.text,
			           jerr.line, jerr.column);
		} else if(!json_is_object(root)) {
			body_r = REQUEST_NOT_AN_OBJECT;
			rp_err_set(&body_err, RP_EINVAL, "payload must be a JSON object or empty");
		}
	} else if(len > 0 && !payload) {
		body_r = REQUEST_BAD_JSON;
		rp_err_set(&body_err, RP_EINVAL, "payload missing");
	}
	if(root && body_r == REQUEST_OK) {
		id_r = read_id(json_object_get(root, "id"), out, &id_err);
		if(!has_response_topic)
			reply_r = read_reply_to(json_object_get(root, "reply_to"), prefix, disc, out,
			                        &reply_err);
	}
	if(has_response_topic) {
		out->reply = REQUEST_REPLY_RESPONSE_TOPIC;
		out->reply_to[0] = '\0';
	}

	topic_r = parse_topic(prefix, topic, providers, out, &topic_err);

	/* Fixed precedence, so that one request always gets the same code. */
	if(topic_r != REQUEST_OK) {
		r = topic_r;
		if(err)
			*err = topic_err;
		goto out;
	}
	if(body_r != REQUEST_OK) {
		r = body_r;
		if(err)
			*err = body_err;
		goto out;
	}
	if(id_r != REQUEST_OK) {
		r = id_r;
		if(err)
			*err = id_err;
		goto out;
	}
	if(reply_r != REQUEST_OK) {
		r = reply_r;
		if(err)
			*err = reply_err;
		goto out;
	}

	r = read_time(root, "from", &from, &from_given, err);
	if(r == REQUEST_OK)
		r = read_time(root, "to", &to, &to_given, err);
	if(r != REQUEST_OK)
		goto out;
	span = REQUEST_DEFAULT_SPAN_S < max_range ? REQUEST_DEFAULT_SPAN_S : max_range;
	if(!from_given && !to_given) {
		from = now - (now % 3600 + 3600) % 3600 - 86400;
		to = from + span;
	} else if(!to_given) {
		to = from + span;
	} else if(!from_given) {
		from = to - span;
	}
	out->explicit_range = from_given || to_given;
	if(from >= to) {
		r = REQUEST_BAD_RANGE;
		rp_err_set(err, RP_EINVAL, "from must be before to");
		goto out;
	}
	if(to - from > max_range) {
		r = REQUEST_RANGE_TOO_LARGE;
		rp_err_set(err, RP_EINVAL, "range is %lld s, at most %lld s (%lld days) allowed",
		           (long long)(to - from), (long long)max_range, (long long)(max_range / 86400));
		goto out;
	}
	if(from < now - max_past || to > now + max_future) {
		r = REQUEST_RANGE_OUT_OF_BOUNDS;
		rp_err_set(err, RP_EINVAL, "range must lie between %lld days ago and %lld days ahead",
		           (long long)(max_past / 86400), (long long)(max_future / 86400));
		goto out;
	}
	out->from = from;
	out->to = to;
out:
	json_decref(root);
	out->refusal = r;
	if(r == REQUEST_OK)
		return 0;
	if(err)
		err->code = RP_EINVAL;
	if(oom && r == REQUEST_BAD_JSON)
		return RP_ENOMEM;
	return RP_EINVAL;
}

/* --- reply building ------------------------------------------------------------- */

/* A bounded string builder: one buffer, grown by doubling, sticky error. */
struct sb {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

/* Replies larger than this are refused: far above SLOT_LIST_MAX slots. */
#define REPLY_MAX_BYTES ((size_t)64 << 20)

static bool sb_reserve(struct sb *b, size_t more)
{
	size_t want, cap;
	char *np;

	if(b->oom)
		return false;
	if(more > REPLY_MAX_BYTES || b->len + more + 1 > REPLY_MAX_BYTES) {
		b->oom = true;
		return false;
	}
	want = b->len + more + 1;
	if(want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while(cap < want)
		cap *= 2;
	np = realloc(b->p, cap);
	if(!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = cap;
	return true;
}

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if(!sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define SB_LIT(b, lit) sb_put((b), (lit), sizeof(lit) - 1)

static void sb_char(struct sb *b, char c)
{
	if(!sb_reserve(b, 1))
		return;
	b->p[b->len++] = c;
}

/* Writes s (n bytes) as a JSON string: quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. */
static void sb_json_str(struct sb *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	/* worst case: every byte becomes \u00XX */
	if(n > REPLY_MAX_BYTES / 6 || !sb_reserve(b, n * 6 + 2)) {
		b->oom = true;
		return;
	}
	b->p[b->len++] = '"';
	while(i < n) {
		unsigned c = u[i];
		char *o;
		if(c >= 0x20 && c != '"' && c != '\\' && c < 0x7F) {
			run = i + 1;
			while(run < n && u[run] >= 0x20 && u[run] != '"' && u[run] != '\\' && u[run] < 0x7F)
				run++;
			memcpy(b->p + b->len, s + i, run - i);
			b->len += run - i;
			i = run;
			continue;
		}
		o = b->p + b->len;
		if(c == '"' || c == '\\') {
			o[0] = '\\';
			o[1] = (char)c;
			b->len += 2;
			i++;
		} else if(c < 0x20 || c == 0x7F) {
			switch(c) {
			case '\n':
				memcpy(o, "\\n", 2);
				b->len += 2;
				break;
			case '\r':
				memcpy(o, "\\r", 2);
				b->len += 2;
				break;
			case '\t':
				memcpy(o, "\\t", 2);
				b->len += 2;
				break;
			default:
				memcpy(o, "\\u00", 4);
				o[4] = hex[c >> 4];
				o[5] = hex[c & 15];
				b->len += 6;
				break;
			}
			i++;
		} else {
			size_t k = utf8_seq(u + i, n - i);
			if(k == 0) {
				memcpy(o, "\\ufffd", 6);
				b->len += 6;
				i++;
			} else {
				memcpy(o, s + i, k);
				b->len += k;
				i += k;
			}
		}
	}
	b->p[b->len++] = '"';
}

static void sb_json_cstr(struct sb *b, const char *s, size_t max)
{
	if(!s)
		SB_LIT(b, "null");
	else
		sb_json_str(b, s, strnlen(s, max));
}

/* rtime_format, with the date text of the last day kept: the times of one
 * reply share a few days, and formatting dominates the reply's cost. */
struct time_cache {
	int64_t day;
	bool valid;
	char text[RTIME_TEXT_SIZE];
};

static void sb_time(struct sb *b, struct time_cache *tc, int64_t t)
{
	int64_t day = t / 86400 - (t % 86400 < 0);
	int64_t sod = t - day * 86400;
	char *o;

	if(!tc->valid || tc->day != day) {
		rtime_format(t, tc->text);
		tc->day = day;
		tc->valid = true;
	}
	if(!sb_reserve(b, RTIME_TEXT_SIZE + 2))
		return;
	o = b->p + b->len;
	o[0] = '"';
	memcpy(o + 1, tc->text, RTIME_TEXT_SIZE - 1);
	o[RTIME_TEXT_SIZE] = '"';
	b->len += RTIME_TEXT_SIZE + 1;
	if(memcmp(tc->text, "0000-", 5) == 0)
		return; /* rtime_format's text for a year outside 0..9999 */
	/* "YYYY-MM-DDTHH:MM:SSZ": patch HH, MM, SS (offsets 11, 14, 17) */
	o[1 + 11] = (char)('0' + sod / 36000);
	o[1 + 12] = (char)('0' + sod / 3600 % 10);
	o[1 + 14] = (char)('0' + sod % 3600 / 600);
	o[1 + 15] = (char)('0' + sod % 600 / 60);
	o[1 + 17] = (char)('0' + sod % 60 / 10);
	o[1 + 18] = (char)('0' + sod % 10);
}

/* Fixed point with up to 9 decimals for the magnitudes prices and carbon
 * intensities have; %.15g outside them; null for non-finite values. */
static void sb_value(struct sb *b, double v)
{
	char tmp[48];
	char *p = tmp + sizeof(tmp);
	double a = fabs(v);
	uint64_t scaled, ip, fp;
	int n, digits = 9;

	if(!isfinite(v)) {
		SB_LIT(b, "null");
		return;
	}
	if(v == 0) {
		sb_char(b, '0');
		return;
	}
	if(a < 1e-4 || a >= 1e6) {
		n = snprintf(tmp, sizeof(tmp), "%.15g", v);
		if(n > 0 && (size_t)n < sizeof(tmp))
			sb_put(b, tmp, (size_t)n);
		return;
	}
	scaled = (uint64_t)llround(a * 1e9);
	ip = scaled / 1000000000u;
	fp = scaled % 1000000000u;
	if(fp) {
		while(fp % 10 == 0) {
			fp /= 10;
			digits--;
		}
		while(digits-- > 0) {
			*--p = (char)('0' + fp % 10);
			fp /= 10;
		}
		*--p = '.';
	}
	do {
		*--p = (char)('0' + ip % 10);
		ip /= 10;
	} while(ip);
	if(v < 0)
		*--p = '-';
	sb_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static bool status_known(const char *status)
{
	return status && (!strcmp(status, REQUEST_STATUS_OK) || !strcmp(status, REQUEST_STATUS_STALE) ||
	                  !strcmp(status, REQUEST_STATUS_PARTIAL) || !strcmp(status, REQUEST_STATUS_ERROR));
}

int request_reply_json(const struct request *req, const char *status, const struct slot_list *slots,
                       const char *series, const char *unit, int64_t fetched_at,
                       const struct store_range *missing, size_t n_missing, const struct rp_err *error,
                       char **out, size_t *len)
{
	struct sb b = {0};
	size_t nslots = slots ? slots->n : 0, i, est;
	const char *code;
	struct time_cache tc = {0};

	*out = NULL;
	if(len)
		*len = 0;
	if(!status_known(status) || (n_missing > 0 && !missing) || (nslots > 0 && !slots->v))
		return RP_EINVAL;
	if(!series && req && req->ref_ok)
		series = req->ref.id;
	if(!unit && slots)
		unit = slots->unit;

	est = 256 + nslots * 100 + n_missing * 64 + (req ? req->id_len * 6 : 0) +
	      (error ? sizeof(error->msg) * 6 : 0);
	if(!sb_reserve(&b, est))
		goto fail;

	SB_LIT(&b, "{\"id\":");
	if(req && req->id_kind == REQUEST_ID_STRING)
		sb_json_str(&b, req->id, req->id_len);
	else if(req && req->id_kind == REQUEST_ID_NUMBER)
		sb_put(&b, req->id, req->id_len);
	else
		SB_LIT(&b, "null");
	SB_LIT(&b, ",\"status\":");
	sb_json_cstr(&b, status, 16);
	SB_LIT(&b, ",\"series\":");
	sb_json_cstr(&b, series, SERIES_ID_MAX + 64);
	SB_LIT(&b, ",\"unit\":");
	if(unit && *unit)
		sb_json_cstr(&b, unit, SLOT_UNIT_SIZE);
	else
		SB_LIT(&b, "null");
	SB_LIT(&b, ",\"fetched_at\":");
	if(fetched_at > 0)
		sb_time(&b, &tc, fetched_at);
	else
		SB_LIT(&b, "null");
	if(req && req->refusal == REQUEST_OK && req->from < req->to) {
		SB_LIT(&b, ",\"from\":");
		sb_time(&b, &tc, req->from);
		SB_LIT(&b, ",\"to\":");
		sb_time(&b, &tc, req->to);
	}
	SB_LIT(&b, ",\"rates\":[");
	for(i = 0; i < nslots; i++) {
		const struct slot *s = &slots->v[i];
		if(i)
			sb_char(&b, ',');
		SB_LIT(&b, "{\"start\":");
		sb_time(&b, &tc, s->start);
		SB_LIT(&b, ",\"end\":");
		sb_time(&b, &tc, s->end);
		SB_LIT(&b, ",\"value\":");
		sb_value(&b, s->value);
		sb_char(&b, '}');
	}
	SB_LIT(&b, "],\"missing\":[");
	for(i = 0; i < n_missing; i++) {
		if(i)
			sb_char(&b, ',');
		SB_LIT(&b, "{\"from\":");
		sb_time(&b, &tc, missing[i].from);
		SB_LIT(&b, ",\"to\":");
		sb_time(&b, &tc, missing[i].to);
		sb_char(&b, '}');
	}
	sb_char(&b, ']');
	if(error) {
		if(req && req->refusal != REQUEST_OK)
			code = request_refusal_name(req->refusal);
		else
			code = rp_code_name(error->code);
		SB_LIT(&b, ",\"error\":{\"code\":");
		sb_json_cstr(&b, code, 64);
		SB_LIT(&b, ",\"message\":");
		sb_json_str(&b, error->msg, strnlen(error->msg, sizeof(error->msg)));
		sb_char(&b, '}');
	}
	sb_char(&b, '}');
	if(b.oom || !sb_reserve(&b, 0))
		goto fail;
	b.p[b.len] = '\0';
	*out = b.p;
	if(len)
		*len = b.len;
	return 0;
fail:
	free(b.p);
	return RP_ENOMEM;
}
