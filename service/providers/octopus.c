/*
 * octopus.c - Octopus Energy REST v1: standard-unit-rates of a tariff
 * (public, paginated, newest first) and the tariffs of an account (API
 * key). See include/ratepool/octopus.h and docs/providers.md.
 */
#include "ratepool/octopus.h"
#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"
#include "ratepool/store.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_URL        "https://api.octopus.energy"
#define URL_MAX            2048
#define DETAIL_MAX         96
#define RATES_PREFIX       "/v1/products/"
#define ACCOUNT_KEY_PREFIX "account/"
#define GBP_MAX_ABS        100.0

/* Used when the ctx carries no policy (tests, one-off calls). */
static const struct http_retry_policy default_policy = {4, 500, 30000, 60};

void octopus_rows_init(struct octopus_rows *rows)
{
	memset(rows, 0, sizeof(*rows));
}

void octopus_rows_free(struct octopus_rows *rows)
{
	free(rows->v);
	octopus_rows_init(rows);
}

static int rows_push(struct octopus_rows *rows, const struct octopus_row *r)
{
	if(rows->n >= SLOT_LIST_MAX)
		return RP_ETOOLARGE;
	if(rows->n == rows->cap) {
		size_t cap = rows->cap ? rows->cap * 2 : 128;
		struct octopus_row *v;
		if(cap > SLOT_LIST_MAX)
			cap = SLOT_LIST_MAX;
		v = realloc(rows->v, cap * sizeof(*v));
		if(!v)
			return RP_ENOMEM;
		rows->v = v;
		rows->cap = cap;
	}
	rows->v[rows->n++] = *r;
	return 0;
}

static int is_region(char c)
{
	return c >= 'A' && c <= 'P' && c != 'I' && c != 'O';
}

int octopus_product_code(const char *tariff, char *out, size_t n, char *kind)
{
	size_t len;
	size_t plen;

	if(!tariff)
		return RP_EINVAL;
	len = strnlen(tariff, OCTOPUS_TARIFF_MAX);
	/* "E-1R-" + at least one character + "-" + region */
	if(len >= OCTOPUS_TARIFF_MAX || len < 8 || !series_id_valid(tariff))
		return RP_EINVAL;
	if((tariff[0] != 'E' && tariff[0] != 'G') || tariff[1] != '-' ||
	   (tariff[2] != '1' && tariff[2] != '2') || tariff[3] != 'R' || tariff[4] != '-')
		return RP_EINVAL;
	if(tariff[len - 2] != '-' || !is_region(tariff[len - 1]))
		return RP_EINVAL;
	plen = len - 5 - 2;
	if(plen == 0 || plen >= n)
		return RP_EINVAL;
	memcpy(out, tariff + 5, plen);
	out[plen] = '\0';
	if(kind)
		*kind = tariff[0];
	return 0;
}

/* --- JSON helpers ----------------------------------------------------- */

static json_t *load_json(const char *body, size_t len, const char *what, struct rp_err *err)
{
	json_error_t jerr;
	json_t *root;

	if(!body || !len) {
		rp_err_set(err, RP_EPARSE, "%s: empty body", what);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!root) {
		rp_err_set(err, RP_EPARSE, "%s: not JSON (line %d: %.80s)", what, jerr.line, jerr.text);
		return NULL;
	}
	if(!json_is_object(root)) {
		json_decref(root);
		rp_err_set(err, RP_EPARSE, "%s: the answer is not a JSON object", what);
		return NULL;
	}
	return root;
}

/* Copies a message from an upstream into out, printable ASCII only. */
static void copy_text(const char *in, char *out, size_t n)
{
	size_t i, j = 0;

	for(i = 0; in && in[i] && j + 1 < n; i++) {
		unsigned char c = (unsigned char)in[i];
		out[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[j] = '\0';
}

/* The DRF "detail" of an error body, or "" . */
static void error_detail(const struct http_response *resp, char *out, size_t n)
{
	json_t *root = NULL;
	json_t *detail;

	out[0] = '\0';
	if(!resp->body || !resp->len || http_body_is_html(resp))
		return;
	root = json_loadb(resp->body, resp->len, 0, NULL);
	if(!root)
		return;
	detail = json_object_get(root, "detail");
	if(json_is_string(detail))
		copy_text(json_string_value(detail), out, n);
	json_decref(root);
}

static int get_time(json_t *obj, const char *key, int allow_null, int64_t *out, const char *what, size_t i,
                    struct rp_err *err)
{
	json_t *v = json_object_get(obj, key);

	if(allow_null && json_is_null(v)) {
		*out = OCTOPUS_OPEN_END;
		return 0;
	}
	if(!json_is_string(v))
		return rp_err_set(err, RP_EPARSE, "%s %zu: %s is %s", what, i, key,
		                  v ? "not a string" : "missing");
	if(rtime_parse(json_string_value(v), out))
		return rp_err_set(err, RP_EGARBAGE, "%s %zu: %s is not a date-time", what, i, key);
	return 0;
}

static int get_number(json_t *obj, const char *key, double *out, size_t i, struct rp_err *err)
{
	json_t *v = json_object_get(obj, key);

	if(!json_is_number(v))
		return rp_err_set(err, RP_EPARSE, "rate %zu: %s is %s", i, key,
		                  !v                  ? "missing"
		                  : json_is_string(v) ? "a string, not a number"
		                                      : "not a number");
	*out = json_number_value(v);
	if(!isfinite(*out))
		return rp_err_set(err, RP_EGARBAGE, "rate %zu: %s is not finite", i, key);
	return 0;
}

/* --- rates ---------------------------------------------------------- */

int octopus_parse_page(const char *body, size_t len, struct octopus_rows *rows, char *next, size_t next_n,
                       struct rp_err *err)
{
	json_t *root = NULL;
	json_t *results, *jnext, *row;
	size_t i;
	int rc = 0;

	if(next_n)
		next[0] = '\0';
	root = load_json(body, len, "octopus rates", err);
	if(!root)
		return RP_EPARSE;
	results = json_object_get(root, "results");
	if(!json_is_array(results)) {
		rc = rp_err_set(err, RP_EPARSE, "octopus rates: no results list in the answer");
		goto out;
	}
	jnext = json_object_get(root, "next");
	if(json_is_string(jnext)) {
		const char *s = json_string_value(jnext);
		if(strlen(s) >= next_n || strlen(s) >= URL_MAX) {
			rc = rp_err_set(err, RP_EGARBAGE, "octopus rates: next link too long");
			goto out;
		}
		memcpy(next, s, strlen(s) + 1);
	} else if(!json_is_null(jnext)) {
		rc = rp_err_set(err, RP_EPARSE, "octopus rates: next is %s",
		                jnext ? "not a link" : "missing");
		goto out;
	}
	if(rows->n + json_array_size(results) > SLOT_LIST_MAX) {
		rc = rp_err_set(err, RP_EGARBAGE, "octopus rates: more than %d rows", SLOT_LIST_MAX);
		goto out;
	}
	json_array_foreach(results, i, row)
	{
		struct octopus_row r;
		json_t *pm;

		if(!json_is_object(row)) {
			rc = rp_err_set(err, RP_EPARSE, "rate %zu is not an object", i);
			goto out;
		}
		rc = get_time(row, "valid_from", 0, &r.from, "rate", i, err);
		if(!rc)
			rc = get_time(row, "valid_to", 1, &r.to, "rate", i, err);
		if(!rc)
			rc = get_number(row, "value_inc_vat", &r.inc_vat, i, err);
		if(!rc)
			rc = get_number(row, "value_exc_vat", &r.exc_vat, i, err);
		if(rc)
			goto out;
		pm = json_object_get(row, "payment_method");
		if(!pm || json_is_null(pm))
			r.payment = OCTOPUS_PAY_NONE;
		else if(json_is_string(pm))
			r.payment = !strcmp(json_string_value(pm), "DIRECT_DEBIT") ? OCTOPUS_PAY_DD
			                                                           : OCTOPUS_PAY_OTHER;
		else {
			rc = rp_err_set(err, RP_EPARSE, "rate %zu: payment_method is not a string", i);
			goto out;
		}
		if(r.to < r.from) {
			rc = rp_err_set(err, RP_EGARBAGE, "rate %zu ends before it starts", i);
			goto out;
		}
		rc = rows_push(rows, &r);
		if(rc) {
			rp_err_set(err, rc, "octopus rates: cannot keep row %zu", i);
			goto out;
		}
	}
out:
	json_decref(root);
	return rc;
}

static int row_cmp(const void *a, const void *b)
{
	const struct octopus_row *x = a, *y = b;

	if(x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if(x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return (int)x->payment - (int)y->payment;
}

static int row_same(const struct octopus_row *x, const struct octopus_row *y)
{
	return x->from == y->from && x->to == y->to && x->payment == y->payment && x->inc_vat == y->inc_vat &&
	       x->exc_vat == y->exc_vat;
}

/* True when a DIRECT_DEBIT row overlaps r. dd holds the indices of the DD
 * rows in from order; when they do not overlap each other (otherwise the
 * overlap check refuses the answer anyway) the last one starting before
 * r ends is the only candidate that matters. */
static int dd_covers(const struct octopus_rows *rows, const size_t *dd, size_t ndd,
                     const struct octopus_row *r)
{
	size_t lo = 0, hi = ndd;

	while(lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if(rows->v[dd[mid]].from < r->to)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && rows->v[dd[lo - 1]].to > r->from;
}

static int64_t ceil_minute(int64_t t)
{
	int64_t r = t % 60;
	if(r < 0)
		r += 60;
	if(r && t > INT64_MAX - 60)
		return t - r;
	return r ? t + (60 - r) : t;
}

static int push_slot(struct slot_list *out, int64_t start, int64_t end, const struct octopus_row *r,
                     struct rp_err *err)
{
	int rc = slot_list_push(out, start, end, r->inc_vat / 100.0, r->exc_vat / 100.0);

	if(rc)
		return rp_err_set(err, rc, "octopus rates: more than %d slots", SLOT_LIST_MAX);
	return 0;
}

/* Splits a row longer than a day into London local-day pieces of at most
 * 24 h (a 25-hour day is cut at 12 h) and keeps those overlapping
 * [from, to). */
static int push_pieces(struct slot_list *out, const struct octopus_row *r, int64_t end, int64_t from,
                       int64_t to, struct rp_err *err)
{
	int64_t p = r->from;
	int64_t first = rtime_day_start(RTIME_LONDON, from);
	int rc;

	if(first > p)
		p = first;
	while(p < end && p < to) {
		int64_t q = rtime_day_add(RTIME_LONDON, p, 1);
		if(q > end)
			q = end;
		if(q - p > 86400)
			q = p + 43200;
		if(q > from) {
			rc = push_slot(out, p, q, r, err);
			if(rc)
				return rc;
		}
		p = q;
	}
	return 0;
}

/* Where an open-ended rate (valid_to: null) stops being stored: the
 * requested end, but never past the end of tomorrow (UK), the furthest
 * Octopus publishes. Slots held count as published and are not fetched
 * again, so a rate stretched into next week would hide a change that
 * Octopus announces in the meantime. */
static int64_t open_end(int64_t to)
{
	int64_t horizon = rtime_day_add(RTIME_LONDON, rtime_now(), 2);

	return ceil_minute(to < horizon ? to : horizon);
}

int octopus_rows_to_slots(struct octopus_rows *rows, int64_t from, int64_t to, struct slot_list *out,
                          struct rp_err *err)
{
	size_t *dd = NULL;
	size_t ndd = 0, i, k, first = out->n;
	int64_t last_end = INT64_MIN;
	int rc = 0;

	snprintf(out->unit, sizeof(out->unit), "GBP/kWh");
	if(!rows->n)
		return 0;
	qsort(rows->v, rows->n, sizeof(rows->v[0]), row_cmp);
	/* A row met twice (a page boundary that moved while paging) is one. */
	for(i = 1, k = 1; i < rows->n; i++)
		if(!row_same(&rows->v[i], &rows->v[k - 1]))
			rows->v[k++] = rows->v[i];
	rows->n = k;

	dd = malloc(rows->n * sizeof(*dd));
	if(!dd)
		return rp_err_set(err, RP_ENOMEM, "octopus rates: out of memory");
	for(i = 0; i < rows->n; i++)
		if(rows->v[i].payment == OCTOPUS_PAY_DD)
			dd[ndd++] = i;

	for(i = 0; i < rows->n; i++) {
		const struct octopus_row *r = &rows->v[i];
		int64_t end = r->to == OCTOPUS_OPEN_END ? open_end(to) : r->to;
		double gbp = r->inc_vat / 100.0, gbp_exc = r->exc_vat / 100.0;

		if(r->payment == OCTOPUS_PAY_OTHER && ndd && dd_covers(rows, dd, ndd, r))
			continue;
		if(fabs(gbp) > GBP_MAX_ABS || fabs(gbp_exc) > GBP_MAX_ABS) {
			char t[RTIME_TEXT_SIZE];
			rtime_format(r->from, t);
			rc = rp_err_set(err, RP_EGARBAGE, "octopus rates: absurd rate %g p/kWh at %s",
			                r->inc_vat, t);
			goto out;
		}
		if(r->to == r->from)
			continue; /* zero-length: never applied */
		/* overlaps anywhere in the answer, not only in the range, mean
		 * it cannot be trusted */
		if(r->from < last_end) {
			char t[RTIME_TEXT_SIZE];
			rtime_format(r->from, t);
			rc = rp_err_set(err, RP_EGARBAGE, "octopus rates: rates overlap at %s", t);
			goto out;
		}
		last_end = r->to;
		if(end <= r->from || end <= from || r->from >= to)
			continue;
		if(end - r->from <= 86400)
			rc = push_slot(out, r->from, end, r, err);
		else
			rc = push_pieces(out, r, end, from, to, err);
		if(rc)
			goto out;
	}
	for(i = first + 1; i < out->n; i++)
		if(out->v[i].start < out->v[i - 1].end) {
			char t[RTIME_TEXT_SIZE];
			rtime_format(out->v[i].start, t);
			rc = rp_err_set(err, RP_EGARBAGE, "octopus rates: rates overlap at %s", t);
			goto out;
		}
out:
	free(dd);
	if(rc)
		out->n = first;
	return rc;
}

int octopus_parse_rates(const char *body, size_t len, int64_t from, int64_t to, struct slot_list *out,
                        struct rp_err *err)
{
	struct octopus_rows rows;
	char next[URL_MAX];
	int rc;

	octopus_rows_init(&rows);
	rc = octopus_parse_page(body, len, &rows, next, sizeof(next), err);
	if(!rc)
		rc = octopus_rows_to_slots(&rows, from, to, out, err);
	octopus_rows_free(&rows);
	return rc;
}

/* --- HTTP -------------------------------------------------------------- */

static const char *base_url(const struct config *cfg)
{
	return cfg && cfg->octopus_url && *cfg->octopus_url ? cfg->octopus_url : DEFAULT_URL;
}

static void request_defaults(const struct provider_ctx *ctx, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	if(ctx->cfg) {
		req->connect_timeout_ms = ctx->cfg->http_connect_timeout_ms;
		req->timeout_ms = ctx->cfg->http_timeout_ms;
		req->max_body = ctx->cfg->http_max_body_bytes > 0 ? (size_t)ctx->cfg->http_max_body_bytes : 0;
	}
}

/* One GET with the retry policy; counts attempts; an HTML body where JSON
 * was expected (a CDN's page) becomes RP_EFORBIDDEN. */
static int octopus_get(const struct provider_ctx *ctx, const struct http_request *req,
                       struct http_response *resp, int *calls, struct rp_err *err)
{
	const struct http_retry_policy *pol = ctx->retry ? ctx->retry : &default_policy;
	int attempts = 0;
	int rc;

	memset(resp, 0, sizeof(*resp));
	rc = http_perform_retry(req, pol, resp, &attempts, err);
	*calls += attempts;
	if((rc == 0 || rc == RP_EFORBIDDEN) && http_body_is_html(resp))
		return rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
	return rc;
}

/* Splits base into origin ("https://host:port") and path prefix. */
static int base_parts(const char *base, size_t *origin_len)
{
	const char *p = strstr(base, "://");

	if(!p)
		return RP_EINVAL;
	p = strchr(p + 3, '/');
	*origin_len = p ? (size_t)(p - base) : strlen(base);
	return 0;
}

/* The URL of the page a `next` link names. Only its path and query are
 * taken and put under our configured origin: an upstream may not send
 * us to another host or scheme, and must stay under the rates path. */
static int next_url(const char *base, const char *next, char *out, size_t n, struct rp_err *err)
{
	size_t olen, blen = strlen(base);
	const char *path = next;
	const char *s;

	if(base_parts(base, &olen))
		return rp_err_set(err, RP_EINVAL, "RATEPOOL_OCTOPUS_URL is not a URL");
	while(blen > olen && base[blen - 1] == '/')
		blen--;
	if(!strncmp(next, "http://", 7) || !strncmp(next, "https://", 8)) {
		path = strchr(strstr(next, "://") + 3, '/');
		if(!path)
			return rp_err_set(err, RP_EGARBAGE, "octopus rates: next link has no path");
	}
	/* the path must be the base's path prefix plus the rates path */
	if(strncmp(path, base + olen, blen - olen) ||
	   strncmp(path + (blen - olen), RATES_PREFIX, strlen(RATES_PREFIX)))
		return rp_err_set(err, RP_EGARBAGE, "octopus rates: next link leaves the rates path");
	for(s = path; *s; s++)
		if((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return rp_err_set(err, RP_EGARBAGE, "octopus rates: next link has bad characters");
	if(olen + strlen(path) >= n)
		return rp_err_set(err, RP_EGARBAGE, "octopus rates: next link too long");
	memcpy(out, base, olen);
	memcpy(out + olen, path, strlen(path) + 1);
	return 0;
}

/* Fetches the rates of one tariff over [from, to) and appends them to out,
 * clipped to [clip_from, clip_to) (an account's agreement; pass
 * INT64_MIN/INT64_MAX for none). */
static int fetch_tariff(const struct provider_ctx *ctx, const char *tariff, int64_t from, int64_t to,
                        int64_t clip_from, int64_t clip_to, struct slot_list *out, int *calls,
                        struct rp_err *err)
{
	const char *base = base_url(ctx->cfg);
	char product[OCTOPUS_TARIFF_MAX];
	char kind;
	char tf[RTIME_TEXT_SIZE], tt[RTIME_TEXT_SIZE];
	char ef[3 * RTIME_TEXT_SIZE], et[3 * RTIME_TEXT_SIZE];
	char *url = NULL, *next = NULL;
	struct octopus_rows rows;
	struct slot_list tmp;
	struct http_request req;
	struct http_response resp;
	size_t blen = strlen(base), i;
	int pages = 0;
	int rc;

	octopus_rows_init(&rows);
	slot_list_init(&tmp);
	memset(&resp, 0, sizeof(resp));
	if(octopus_product_code(tariff, product, sizeof(product), &kind))
		return rp_err_set(err, RP_EINVAL,
		                  "'%s' is neither an Octopus tariff code (like E-1R-AGILE-24-10-01-C) "
		                  "nor a configured account alias",
		                  tariff);
	url = malloc(URL_MAX);
	next = malloc(URL_MAX);
	if(!url || !next) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		goto out;
	}
	while(blen && base[blen - 1] == '/')
		blen--;
	rtime_format(from, tf);
	rtime_format(to, tt);
	if(http_escape(tf, ef, sizeof(ef)) || http_escape(tt, et, sizeof(et)) ||
	   snprintf(url, URL_MAX,
	            "%.*s/v1/products/%s/%s-tariffs/%s/standard-unit-rates/"
	            "?period_from=%s&period_to=%s&page_size=%d",
	            (int)blen, base, product, kind == 'G' ? "gas" : "electricity", tariff, ef, et,
	            OCTOPUS_PAGE_SIZE) >= URL_MAX) {
		rc = rp_err_set(err, RP_EINVAL, "RATEPOOL_OCTOPUS_URL is too long");
		goto out;
	}
	for(;;) {
		char detail[DETAIL_MAX];

		if(++pages > OCTOPUS_MAX_PAGES) {
			rc = rp_err_set(err, RP_EGARBAGE, "octopus rates for %s: more than %d pages", tariff,
			                OCTOPUS_MAX_PAGES);
			goto out;
		}
		request_defaults(ctx, &req);
		req.url = url;
		rc = octopus_get(ctx, &req, &resp, calls, err);
		if(rc == RP_ENOTFOUND) {
			error_detail(&resp, detail, sizeof(detail));
			if(pages == 1)
				rc = rp_err_set(err, RP_ENOTFOUND,
				                "Octopus does not know tariff %s (product %s)%s%s", tariff,
				                product, detail[0] ? ": " : "", detail);
			else
				rc = rp_err_set(err, RP_ENOTFOUND, "Octopus lost page %d of tariff %s%s%s",
				                pages, tariff, detail[0] ? ": " : "", detail);
		} else if(rc == RP_EUPSTREAM) {
			error_detail(&resp, detail, sizeof(detail));
			if(detail[0])
				rc = rp_err_set(err, rc, "Octopus refused the rates request for %s: %s",
				                tariff, detail);
		}
		if(rc)
			goto out;
		rc = octopus_parse_page(resp.body, resp.len, &rows, next, URL_MAX, err);
		http_response_free(&resp);
		if(rc)
			goto out;
		if(!next[0])
			break;
		{
			char *nu = malloc(URL_MAX);
			if(!nu) {
				rc = rp_err_set(err, RP_ENOMEM, "out of memory");
				goto out;
			}
			rc = next_url(base, next, nu, URL_MAX, err);
			if(!rc && !strcmp(nu, url))
				rc = rp_err_set(
				        err, RP_EGARBAGE,
				        "octopus rates for %s: next link points back to the same page",
				        tariff);
			if(rc) {
				free(nu);
				goto out;
			}
			free(url);
			url = nu;
		}
	}
	rc = octopus_rows_to_slots(&rows, from, to, &tmp, err);
	if(rc)
		goto out;
	for(i = 0; i < tmp.n; i++) {
		int64_t s = tmp.v[i].start > clip_from ? tmp.v[i].start : clip_from;
		int64_t e = tmp.v[i].end < clip_to ? tmp.v[i].end : clip_to;
		if(e <= s)
			continue;
		rc = slot_list_push(out, s, e, tmp.v[i].value, tmp.v[i].value_exc_vat);
		if(rc) {
			rp_err_set(err, rc, "octopus rates: more than %d slots", SLOT_LIST_MAX);
			goto out;
		}
	}
	snprintf(out->unit, sizeof(out->unit), "%s", tmp.unit);
out:
	http_response_free(&resp);
	octopus_rows_free(&rows);
	slot_list_free(&tmp);
	free(url);
	free(next);
	return rc;
}

/* --- accounts ---------------------------------------------------------- */

static int is_export_point(json_t *point, json_t *agreements)
{
	json_t *ex = json_object_get(point, "is_export");
	json_t *a;
	size_t i;

	if(json_is_boolean(ex))
		return json_is_true(ex);
	json_array_foreach(agreements, i, a)
	{
		const char *code = json_string_value(json_object_get(a, "tariff_code"));
		if(code && (strstr(code, "OUTGOING") || strstr(code, "EXPORT")))
			return 1;
	}
	return 0;
}

static int agreement_cmp(const void *a, const void *b)
{
	const struct octopus_agreement *x = a, *y = b;

	if(x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

int octopus_parse_account(const char *body, size_t len, struct octopus_agreement *out, size_t max, size_t *n,
                          struct rp_err *err)
{
	json_t *root;
	json_t *props, *prop, *points, *point, *agreements, *a;
	size_t i, j, k;
	int rc = 0;

	*n = 0;
	root = load_json(body, len, "octopus account", err);
	if(!root)
		return RP_EPARSE;
	props = json_object_get(root, "properties");
	if(!json_is_array(props)) {
		rc = rp_err_set(err, RP_EPARSE, "octopus account: no properties list in the answer");
		goto out;
	}
	json_array_foreach(props, i, prop)
	{
		if(!json_is_object(prop)) {
			rc = rp_err_set(err, RP_EPARSE, "octopus account: property %zu is not an object", i);
			goto out;
		}
		points = json_object_get(prop, "electricity_meter_points");
		if(!points || json_is_null(points))
			continue;
		if(!json_is_array(points)) {
			rc = rp_err_set(err, RP_EPARSE,
			                "octopus account: electricity_meter_points is not a list");
			goto out;
		}
		json_array_foreach(points, j, point)
		{
			if(!json_is_object(point)) {
				rc = rp_err_set(err, RP_EPARSE,
				                "octopus account: meter point %zu is not an object", j);
				goto out;
			}
			agreements = json_object_get(point, "agreements");
			if(!json_is_array(agreements)) {
				rc = rp_err_set(err, RP_EPARSE,
				                "octopus account: meter point %zu has no agreements list", j);
				goto out;
			}
			if(is_export_point(point, agreements))
				continue;
			json_array_foreach(agreements, k, a)
			{
				struct octopus_agreement ag;
				json_t *code;
				char product[OCTOPUS_TARIFF_MAX];

				if(!json_is_object(a)) {
					rc = rp_err_set(err, RP_EPARSE,
					                "octopus account: agreement %zu is not an object", k);
					goto out;
				}
				code = json_object_get(a, "tariff_code");
				if(!json_is_string(code)) {
					rc = rp_err_set(err, RP_EPARSE,
					                "octopus account: agreement %zu has no tariff_code",
					                k);
					goto out;
				}
				if(octopus_product_code(json_string_value(code), product, sizeof(product),
				                        NULL)) {
					rc = rp_err_set(
					        err, RP_EGARBAGE,
					        "octopus account: agreement %zu has a malformed tariff code",
					        k);
					goto out;
				}
				snprintf(ag.tariff_code, sizeof(ag.tariff_code), "%s",
				         json_string_value(code));
				rc = get_time(a, "valid_from", 0, &ag.from, "agreement", k, err);
				if(!rc)
					rc = get_time(a, "valid_to", 1, &ag.to, "agreement", k, err);
				if(rc)
					goto out;
				if(ag.to < ag.from) {
					rc = rp_err_set(
					        err, RP_EGARBAGE,
					        "octopus account: agreement %zu ends before it starts", k);
					goto out;
				}
				if(ag.to == ag.from)
					continue; /* zero-length: never applied */
				if(*n >= max) {
					rc = rp_err_set(err, RP_EGARBAGE,
					                "octopus account: more than %zu agreements", max);
					goto out;
				}
				out[(*n)++] = ag;
			}
		}
	}
	qsort(out, *n, sizeof(*out), agreement_cmp);
out:
	if(rc)
		*n = 0;
	json_decref(root);
	return rc;
}

/* Agreements as kept in the store: {"number", "fetched_at", "agreements":
 * [{"tariff_code", "from", "to" (null: open)}]}. */
static char *record_dump(const char *number, int64_t fetched_at, const struct octopus_agreement *ag, size_t n)
{
	json_t *root = NULL, *list = NULL;
	char *s = NULL;
	size_t i;

	list = json_array();
	if(!list)
		return NULL;
	for(i = 0; i < n; i++) {
		json_t *to = ag[i].to == OCTOPUS_OPEN_END ? json_null() : json_integer((json_int_t)ag[i].to);
		json_t *o = json_pack("{s:s,s:I,s:o}", "tariff_code", ag[i].tariff_code, "from",
		                      (json_int_t)ag[i].from, "to", to);
		if(!o || json_array_append_new(list, o))
			goto out;
	}
	root = json_pack("{s:s,s:I,s:O}", "number", number, "fetched_at", (json_int_t)fetched_at,
	                 "agreements", list);
	if(root)
		s = json_dumps(root, JSON_COMPACT);
out:
	json_decref(list);
	json_decref(root);
	return s;
}

/* Reads a stored record; returns 0 when it is usable for `number`. */
static int record_load(const char *text, size_t len, const char *number, int64_t *fetched_at,
                       struct octopus_agreement *ag, size_t max, size_t *n)
{
	json_t *root = json_loadb(text, len, 0, NULL);
	json_t *list, *o;
	size_t i;
	int rc = RP_EPARSE;

	*n = 0;
	if(!root)
		return RP_EPARSE;
	list = json_object_get(root, "agreements");
	if(!json_is_string(json_object_get(root, "number")) ||
	   strcmp(json_string_value(json_object_get(root, "number")), number) ||
	   !json_is_integer(json_object_get(root, "fetched_at")) || !json_is_array(list) ||
	   json_array_size(list) > max)
		goto out;
	*fetched_at = json_integer_value(json_object_get(root, "fetched_at"));
	json_array_foreach(list, i, o)
	{
		json_t *code = json_object_get(o, "tariff_code");
		json_t *from = json_object_get(o, "from");
		json_t *to = json_object_get(o, "to");
		if(!json_is_string(code) || strlen(json_string_value(code)) >= OCTOPUS_TARIFF_MAX ||
		   !json_is_integer(from) || !(json_is_integer(to) || json_is_null(to)))
			goto out;
		snprintf(ag[i].tariff_code, sizeof(ag[i].tariff_code), "%s", json_string_value(code));
		ag[i].from = json_integer_value(from);
		ag[i].to = json_is_null(to) ? OCTOPUS_OPEN_END : json_integer_value(to);
		if(ag[i].to <= ag[i].from)
			goto out;
	}
	*n = json_array_size(list);
	rc = 0;
out:
	if(rc)
		*n = 0;
	json_decref(root);
	return rc;
}

static int account_number_ok(const char *number)
{
	size_t i, len = strnlen(number, 32);

	if(len == 0 || len >= 32)
		return 0;
	for(i = 0; i < len; i++) {
		char c = number[i];
		if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/* The import agreements of the account behind `alias`, from the store
 * while younger than OCTOPUS_ACCOUNT_TTL_S, else from the upstream (or,
 * without `network`, RP_ENOENT). */
static int account_agreements(const struct provider_ctx *ctx, const char *alias, struct octopus_agreement *ag,
                              size_t max, size_t *n, int *calls, bool network, struct rp_err *err)
{
	const struct config_account *acc = ctx->cfg ? config_account_find(ctx->cfg, alias) : NULL;
	char key[sizeof(ACCOUNT_KEY_PREFIX) + SERIES_ID_MAX + 1];
	char url[URL_MAX];
	char *stored = NULL, *record = NULL;
	size_t stored_len = 0;
	int64_t fetched_at = 0, now = rtime_now();
	struct http_request req;
	struct http_response resp;
	const char *base = base_url(ctx->cfg);
	size_t blen = strlen(base);
	int have_stale = 0;
	int rc;

	*n = 0;
	memset(&resp, 0, sizeof(resp));
	if(!acc)
		return rp_err_set(err, RP_ENOTFOUND, "no Octopus account alias '%s' is configured", alias);
	if(!account_number_ok(acc->number))
		return rp_err_set(err, RP_EINVAL, "account number of '%s' is malformed", alias);
	snprintf(key, sizeof(key), ACCOUNT_KEY_PREFIX "%s", alias);
	if(ctx->store && !store_meta_get(ctx->store, key, &stored, &stored_len)) {
		if(!record_load(stored, stored_len, acc->number, &fetched_at, ag, max, n)) {
			if(fetched_at <= now + 300 && now - fetched_at < OCTOPUS_ACCOUNT_TTL_S) {
				free(stored);
				return 0;
			}
			have_stale = 1;
		} else
			log_warn("octopus_account_record_bad", "alias=%s", alias);
		free(stored);
		stored = NULL;
	}
	*n = 0;
	if(!network)
		return rp_err_set(err, RP_ENOENT, "the record of account '%s' is not cached", alias);
	if(!ctx->cfg || !ctx->cfg->octopus_api_key || !*ctx->cfg->octopus_api_key)
		return rp_err_set(err, RP_EINVAL, "account '%s' needs RATEPOOL_OCTOPUS_API_KEY", alias);
	while(blen && base[blen - 1] == '/')
		blen--;
	if(snprintf(url, sizeof(url), "%.*s/v1/accounts/%s/", (int)blen, base, acc->number) >=
	   (int)sizeof(url))
		return rp_err_set(err, RP_EINVAL, "RATEPOOL_OCTOPUS_URL is too long");
	request_defaults(ctx, &req);
	req.url = url;
	req.basic_user = ctx->cfg->octopus_api_key;
	req.basic_password = "";
	rc = octopus_get(ctx, &req, &resp, calls, err);
	if(rc == RP_EAUTH)
		rc = rp_err_set(
		        err, RP_EAUTH,
		        "Octopus refused the API key for account '%s' (check RATEPOOL_OCTOPUS_API_KEY)",
		        alias);
	else if(rc == RP_ENOTFOUND)
		rc = rp_err_set(err, RP_ENOTFOUND, "Octopus has no account %s for this API key (alias '%s')",
		                acc->number, alias);
	if(!rc)
		rc = octopus_parse_account(resp.body, resp.len, ag, max, n, err);
	if(rc) {
		/* Agreements change rarely: an older record beats no answer
		 * while the upstream is down. */
		if(have_stale && http_retryable(rc) && ctx->store &&
		   !store_meta_get(ctx->store, key, &stored, &stored_len) &&
		   !record_load(stored, stored_len, acc->number, &fetched_at, ag, max, n)) {
			log_warn("octopus_account_stale", "alias=%s age_s=%lld code=%s", alias,
			         (long long)(now - fetched_at), rp_code_name(rc));
			rc = 0;
		}
		goto out;
	}
	log_info("octopus_account_fetched", "alias=%s agreements=%zu", alias, *n);
	if(ctx->store) {
		record = record_dump(acc->number, now, ag, *n);
		if(!record || store_meta_put(ctx->store, key, record, strlen(record)))
			log_warn("octopus_account_not_cached", "alias=%s", alias);
	}
out:
	http_response_free(&resp);
	free(stored);
	free(record);
	return rc;
}

/* The agreements overlapping [from, to), merged where two import points
 * share a tariff, refused where they disagree. Unclipped. */
static int spans_of(const struct octopus_agreement *ag, size_t nag, int64_t from, int64_t to,
                    struct octopus_agreement *out, size_t max, size_t *n, struct rp_err *err)
{
	size_t i;

	*n = 0;
	for(i = 0; i < nag; i++) {
		if(ag[i].to <= from || ag[i].from >= to)
			continue;
		if(*n && ag[i].from < out[*n - 1].to) {
			struct octopus_agreement *prev = &out[*n - 1];
			if(strcmp(prev->tariff_code, ag[i].tariff_code)) {
				char t[RTIME_TEXT_SIZE];
				rtime_format(ag[i].from, t);
				return rp_err_set(
				        err, RP_EGARBAGE,
				        "account has import meter points on different tariffs (%s and %s) at "
				        "%s; ask for the tariff code instead",
				        prev->tariff_code, ag[i].tariff_code, t);
			}
			if(ag[i].to > prev->to)
				prev->to = ag[i].to;
			continue;
		}
		if(*n >= max)
			return rp_err_set(err, RP_ETOOLARGE, "more than %zu tariffs in the range", max);
		out[(*n)++] = ag[i];
	}
	return 0;
}

static int account_tariffs(const struct provider_ctx *ctx, const char *alias, int64_t from, int64_t to,
                           struct octopus_tariff_span *spans, size_t max, size_t *n, bool network,
                           struct rp_err *err)
{
	struct octopus_agreement *ag = NULL, *sp = NULL;
	size_t nag = 0, nsp = 0, i;
	int calls = 0;
	int rc;

	*n = 0;
	ag = calloc(OCTOPUS_MAX_AGREEMENTS, sizeof(*ag));
	sp = calloc(OCTOPUS_MAX_AGREEMENTS, sizeof(*sp));
	if(!ag || !sp) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		goto out;
	}
	rc = account_agreements(ctx, alias, ag, OCTOPUS_MAX_AGREEMENTS, &nag, &calls, network, err);
	if(!rc)
		rc = spans_of(ag, nag, from, to, sp, OCTOPUS_MAX_AGREEMENTS, &nsp, err);
	if(rc)
		goto out;
	if(nsp > max) {
		rc = rp_err_set(err, RP_ETOOLARGE, "%zu tariffs in the range, room for %zu", nsp, max);
		goto out;
	}
	for(i = 0; i < nsp; i++) {
		snprintf(spans[i].tariff_code, sizeof(spans[i].tariff_code), "%s", sp[i].tariff_code);
		spans[i].from = sp[i].from > from ? sp[i].from : from;
		spans[i].to = sp[i].to < to ? sp[i].to : to;
	}
	*n = nsp;
out:
	free(ag);
	free(sp);
	return rc;
}

int octopus_account_tariffs(const struct provider_ctx *ctx, const char *alias, int64_t from, int64_t to,
                            struct octopus_tariff_span *spans, size_t max, size_t *n, struct rp_err *err)
{
	return account_tariffs(ctx, alias, from, to, spans, max, n, true, err);
}

int octopus_account_tariffs_cached(const struct provider_ctx *ctx, const char *alias, int64_t from,
                                   int64_t to, struct octopus_tariff_span *spans, size_t max, size_t *n,
                                   struct rp_err *err)
{
	return account_tariffs(ctx, alias, from, to, spans, max, n, false, err);
}

/* --- the provider -------------------------------------------------------- */

static int fetch_account(const struct provider_ctx *ctx, const char *alias, int64_t from, int64_t to,
                         struct provider_result *res, struct rp_err *err)
{
	struct octopus_agreement *ag = NULL, *sp = NULL;
	size_t nag = 0, nsp = 0, i;
	int rc;

	ag = calloc(OCTOPUS_MAX_AGREEMENTS, sizeof(*ag));
	sp = calloc(OCTOPUS_MAX_AGREEMENTS, sizeof(*sp));
	if(!ag || !sp) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		goto out;
	}
	rc = account_agreements(ctx, alias, ag, OCTOPUS_MAX_AGREEMENTS, &nag, &res->upstream_calls, true,
	                        err);
	if(!rc)
		rc = spans_of(ag, nag, from, to, sp, OCTOPUS_MAX_AGREEMENTS, &nsp, err);
	for(i = 0; !rc && i < nsp; i++) {
		int64_t f = sp[i].from > from ? sp[i].from : from;
		int64_t t = sp[i].to < to ? sp[i].to : to;
		rc = fetch_tariff(ctx, sp[i].tariff_code, f, t, sp[i].from, sp[i].to, &res->slots,
		                  &res->upstream_calls, err);
	}
	snprintf(res->slots.unit, sizeof(res->slots.unit), "GBP/kWh");
	snprintf(res->source, sizeof(res->source), "octopus/account");
out:
	free(ag);
	free(sp);
	return rc;
}

static int octopus_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                         struct provider_result *res, struct rp_err *err)
{
	size_t held = res->slots.n;
	int rc;

	if(ctx->cfg && config_account_find(ctx->cfg, id))
		rc = fetch_account(ctx, id, from, to, res, err);
	else {
		snprintf(res->source, sizeof(res->source), "octopus/standard-unit-rates");
		snprintf(res->slots.unit, sizeof(res->slots.unit), "GBP/kWh");
		rc = fetch_tariff(ctx, id, from, to, INT64_MIN, INT64_MAX, &res->slots, &res->upstream_calls,
		                  err);
	}
	if(rc)
		res->slots.n = held; /* an account's earlier tariffs are dropped too */
	return rc;
}

const struct provider provider_octopus = {
        .id = "octopus",
        .unit = "GBP/kWh",
        .zone = RTIME_LONDON,
        .resolution = 1800,
        .max_abs = GBP_MAX_ABS,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 16 * 60,
        .publish_spread_s = 4 * 3600,
        .period_s = 0,
        .delay_s = 0,
        .revisable = false,
        .needs_auth = false,
        .fetch = octopus_fetch,
};
