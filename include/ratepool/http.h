/*
 * http.h - HTTP requests to the upstreams. The only module that includes
 * curl.h.
 *
 * Every request has a connect and a total timeout, a cap on the body,
 * `User-Agent: ratepool/<version>`, accepts compressed answers and
 * verifies TLS. The answer is classified into the RP_E* codes so callers
 * act on the class, not on curl or HTTP details:
 *   2xx, 304        0
 *   network/TLS     RP_ENET       timeout    RP_ETIMEOUT
 *   401             RP_EAUTH      403        RP_EFORBIDDEN
 *   404             RP_ENOTFOUND  429        RP_ERATELIMIT (retry_after set)
 *   5xx             RP_ESERVER    (retry_after set from Retry-After)
 *   other 4xx       RP_EUPSTREAM  body > cap RP_ETOOLARGE
 * The retry policy (http_perform_retry) is the one piece of code every
 * provider uses: exponential backoff with full jitter on RP_ENET,
 * RP_ETIMEOUT, RP_ERATELIMIT and RP_ESERVER, capped; Retry-After obeyed
 * (up to a cap); 400, 401, 403 and 404 are never retried here (401 is for
 * auth to handle).
 */
#ifndef RATEPOOL_HTTP_H
#define RATEPOOL_HTTP_H

#include "ratepool/error.h"

#include <stdbool.h>
#include <stddef.h>

struct http_request {
	const char *method; /* "GET" (default when NULL) or "POST" */
	const char *url;
	const char *body;           /* POST body or NULL */
	const char *content_type;   /* for body, e.g. "application/json" */
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	const char *basic_user;     /* basic auth when not NULL */
	const char *basic_password;
	const char *bearer;        /* "Authorization: Bearer <bearer>" when not NULL */
	const char *authorization; /* raw "Authorization: <value>" when not NULL (Kraken JWT) */
	const char *if_none_match; /* ETag for a conditional GET, or NULL */
	const char *if_modified_since;
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* 0: 20000 */
	size_t max_body;         /* 0: 8 MiB */
};

struct http_response {
	long status; /* HTTP status, 0 when none arrived */
	char *body;  /* malloc'd, NUL-terminated; freed by http_response_free */
	size_t len;
	char content_type[96];
	char etag[160];
	char last_modified[64];
	long retry_after; /* seconds from Retry-After, -1 when absent */
};

struct http_retry_policy {
	int max_attempts;       /* total tries, >= 1 */
	long base_ms;           /* first backoff ceiling */
	long cap_ms;            /* largest backoff */
	long max_retry_after_s; /* a longer Retry-After is not waited for:
	                           the error is returned with retry_after set */
};

/* Process-wide setup and teardown (curl_global_*). Call before threads. */
int http_global_init(void);
void http_global_cleanup(void);

/* One request, no retry. Fills resp (which the caller frees with
 * http_response_free, also on error: a 4xx/5xx body is kept for the
 * caller's message). Returns 0 or the class above; err gets a message that
 * never includes credentials (URLs are logged without their query).
 * Thread-safe: each call uses its own handle (or a per-thread one). */
int http_perform(const struct http_request *req, struct http_response *resp, struct rp_err *err);

/* http_perform with the retry policy. Sleeps between tries (real time
 * scaled by the rtime clock seam). `attempts` (may be NULL) gets the
 * number of requests made, so tests and health can count upstream calls. */
int http_perform_retry(const struct http_request *req, const struct http_retry_policy *policy,
                       struct http_response *resp, int *attempts, struct rp_err *err);

void http_response_free(struct http_response *resp);

/* True for the classes the policy retries. */
bool http_retryable(int code);

/* Backoff before try number `attempt` (1-based retry count): a uniform
 * random value in [0, min(cap, base * 2^(attempt-1))] (full jitter). */
long http_backoff_ms(const struct http_retry_policy *policy, int attempt);

/* Parses a Retry-After value: delta seconds or an HTTP date, relative to
 * now (unix seconds). Returns seconds >= 0, or -1 when unparsable. */
long http_parse_retry_after(const char *value, long long now);

/* Percent-encodes s for a query value into out (size n). Returns 0 or
 * RP_ETOOLARGE. */
int http_escape(const char *s, char *out, size_t n);

/* True when the body looks like an HTML page rather than JSON (a CDN's
 * error page): a text/html content type or a leading '<'. */
bool http_body_is_html(const struct http_response *resp);

/* The same test on a bare body (len bytes) and content type (NULL: none),
 * for parsers handed a body without its response. */
bool http_text_is_html(const char *body, size_t len, const char *content_type);

#endif
