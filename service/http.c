/* http.c - upstream HTTP over libcurl: one easy handle per request,
 * classified answers, and the one retry policy every provider uses. */
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define HTTP_DEFAULT_CONNECT_MS 5000L
#define HTTP_DEFAULT_TIMEOUT_MS 20000L
#define HTTP_DEFAULT_MAX_BODY   ((size_t)8 << 20)
#define HTTP_MAX_REDIRECTS      3L
#define HTTP_URL_LOG_MAX        256
#define HTTP_HEADER_MAX         8192 /* one request header line we build */

#ifndef RATEPOOL_VERSION
#define RATEPOOL_VERSION "0.0.0"
#endif

static const struct http_retry_policy default_policy = {
        .max_attempts = 4,
        .base_ms = 500,
        .cap_ms = 30000,
        .max_retry_after_s = 120,
};

int http_global_init(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if(rc != CURLE_OK) {
		log_error("http_init_failed", "msg=\"%s\"", curl_easy_strerror(rc));
		return RP_ENOMEM;
	}
	return 0;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

void http_response_free(struct http_response *resp)
{
	if(!resp)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

/* Copies url into out without userinfo and without the query or fragment,
 * where API keys and tokens would otherwise leak into logs and errors. */
static void url_redact(const char *url, char *out, size_t n)
{
	const char *scheme_end;
	const char *host;
	const char *at;
	const char *end;
	size_t o = 0;

	if(!n)
		return;
	out[0] = '\0';
	if(!url)
		return;
	scheme_end = strstr(url, "://");
	host = scheme_end ? scheme_end + 3 : url;
	end = host + strcspn(host, "?#");
	at = memchr(host, '@', (size_t)(host + strcspn(host, "/?#") - host));
	/* scheme */
	while(url < host && o + 1 < n)
		out[o++] = *url++;
	if(at)
		host = at + 1;
	while(host < end && o + 1 < n)
		out[o++] = *host++;
	out[o] = '\0';
}

/* Growable body with a hard cap. */
struct body_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	int over; /* the cap was hit: the transfer was aborted */
	int nomem;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body_buf *b = userdata;
	size_t n = size * nmemb;

	if(n > b->max - b->len) {
		b->over = 1;
		return 0; /* aborts with CURLE_WRITE_ERROR */
	}
	if(b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;
		while(cap < b->len + n + 1)
			cap *= 2;
		if(cap > b->max + 1)
			cap = b->max + 1;
		p = realloc(b->data, cap);
		if(!p) {
			b->nomem = 1;
			return 0;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Response headers we keep. Values are reset at every status line, so a
 * redirect's or a 100-continue's headers do not leak into the answer. */
struct head_info {
	char content_type[96];
	char etag[160];
	char last_modified[64];
	char retry_after[96];
};

/* Copies the value of header line `line` (len bytes) into out when its
 * name is `name`. Returns 1 when it matched. */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	size_t i, o = 0;

	if(len <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return 0;
	i = nl + 1;
	while(i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while(len > i && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' ||
	                  line[len - 1] == '\t'))
		len--;
	for(; i < len && o + 1 < n; i++)
		out[o++] = (unsigned char)line[i] < 0x20 ? ' ' : line[i];
	out[o] = '\0';
	return 1;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct head_info *h = userdata;
	size_t n = size * nmemb;

	if(n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
		memset(h, 0, sizeof(*h));
		return n;
	}
	if(header_value(ptr, n, "Content-Type", h->content_type, sizeof(h->content_type)) ||
	   header_value(ptr, n, "ETag", h->etag, sizeof(h->etag)) ||
	   header_value(ptr, n, "Last-Modified", h->last_modified, sizeof(h->last_modified)))
		return n;
	header_value(ptr, n, "Retry-After", h->retry_after, sizeof(h->retry_after));
	return n;
}

/* A header we send must be one line: a token or ETag from a hostile
 * upstream could otherwise inject headers. */
static int header_safe(const char *v)
{
	for(; *v; v++)
		if(*v == '\r' || *v == '\n')
			return 0;
	return 1;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[HTTP_HEADER_MAX];
	struct curl_slist *next;
	int w;

	if(!header_safe(value))
		return RP_EINVAL;
	w = snprintf(line, sizeof(line), "%s: %s", name, value);
	if(w < 0 || (size_t)w >= sizeof(line))
		return RP_ETOOLARGE;
	next = curl_slist_append(*list, line);
	explicit_bzero(line, sizeof(line)); /* may hold a token */
	if(!next)
		return RP_ENOMEM;
	*list = next;
	return 0;
}

static int build_headers(const struct http_request *req, struct curl_slist **list)
{
	const char *const *h;
	int rc = 0;

	/* No "Expect: 100-continue" round trip for our small POSTs. */
	rc = add_header(list, "Expect", "");
	if(!rc && req->body && req->content_type)
		rc = add_header(list, "Content-Type", req->content_type);
	if(!rc && req->bearer) {
		char v[HTTP_HEADER_MAX];
		int w = snprintf(v, sizeof(v), "Bearer %s", req->bearer);
		rc = (w < 0 || (size_t)w >= sizeof(v)) ? RP_ETOOLARGE : add_header(list, "Authorization", v);
		explicit_bzero(v, sizeof(v));
	} else if(!rc && req->authorization)
		rc = add_header(list, "Authorization", req->authorization);
	if(!rc && req->if_none_match && *req->if_none_match)
		rc = add_header(list, "If-None-Match", req->if_none_match);
	if(!rc && req->if_modified_since && *req->if_modified_since)
		rc = add_header(list, "If-Modified-Since", req->if_modified_since);
	for(h = req->headers; !rc && h && *h; h++) {
		struct curl_slist *next;
		if(!header_safe(*h) || !strchr(*h, ':'))
			return RP_EINVAL;
		next = curl_slist_append(*list, *h);
		if(!next)
			return RP_ENOMEM;
		*list = next;
	}
	return rc;
}

/* Maps a finished transfer to the project's classes. */
static int classify_curl(CURLcode cc, const struct body_buf *b)
{
	switch(cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return RP_ETIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return RP_ETOOLARGE;
	case CURLE_WRITE_ERROR:
		if(b->over)
			return RP_ETOOLARGE;
		return b->nomem ? RP_ENOMEM : RP_EIO;
	case CURLE_OUT_OF_MEMORY:
		return RP_ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return RP_EINVAL;
	case CURLE_TOO_MANY_REDIRECTS:
		return RP_EUPSTREAM;
	case CURLE_BAD_CONTENT_ENCODING:
		return RP_EPARSE;
	default:
		/* resolve, connect, TLS, reset, closed without answer
		 * (CURLE_GOT_NOTHING), body cut short (CURLE_PARTIAL_FILE) */
		return RP_ENET;
	}
}

static int classify_status(long status)
{
	if((status >= 200 && status < 300) || status == 304)
		return 0;
	switch(status) {
	case 401:
		return RP_EAUTH;
	case 403:
		return RP_EFORBIDDEN;
	case 404:
	case 410:
		return RP_ENOTFOUND;
	case 429:
		return RP_ERATELIMIT;
	default:
		break;
	}
	if(status >= 500 && status < 600)
		return RP_ESERVER;
	return RP_EUPSTREAM;
}

/* A short, single-line excerpt of an error body for the message: upstream
 * error texts ("Invalid region: FOO") help users; HTML pages do not.
 * Scrubbed of registered secrets. */
static void body_excerpt(const struct http_response *resp, char *out, size_t n)
{
	char raw[128];
	size_t i, len;

	out[0] = '\0';
	if(!resp->body || !resp->len || http_body_is_html(resp))
		return;
	len = resp->len < sizeof(raw) - 1 ? resp->len : sizeof(raw) - 1;
	for(i = 0; i < len; i++)
		raw[i] = (unsigned char)resp->body[i] < 0x20 || resp->body[i] == '"' ? ' ' : resp->body[i];
	raw[len] = '\0';
	log_scrub(raw, out, n);
}

int http_perform(const struct http_request *req, struct http_response *resp, struct rp_err *err_out)
{
	struct rp_err local_err;
	struct rp_err *err = err_out ? err_out : &local_err;
	struct body_buf b = {0};
	struct head_info h;
	struct curl_slist *headers = NULL;
	char url_log[HTTP_URL_LOG_MAX];
	char errbuf[CURL_ERROR_SIZE];
	const char *method;
	CURL *c = NULL;
	CURLcode cc;
	int64_t t0 = rtime_now_ms();
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	memset(&h, 0, sizeof(h));
	rp_err_clear(err); /* err describes this call only, also after earlier tries */
	errbuf[0] = '\0';
	method = req && req->method ? req->method : "GET";
	url_redact(req ? req->url : NULL, url_log, sizeof(url_log));
	if(!req || !req->url || !*req->url) {
		rc = rp_err_set(err, RP_EINVAL, "no URL given");
		goto out;
	}
	if(strcmp(method, "GET") && strcmp(method, "POST")) {
		rc = rp_err_set(err, RP_EINVAL, "unsupported method %s", method);
		goto out;
	}

	b.max = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY;
	c = curl_easy_init();
	if(!c) {
		rc = rp_err_set(err, RP_ENOMEM, "cannot create an HTTP handle");
		goto out;
	}
	rc = build_headers(req, &headers);
	if(rc) {
		rp_err_set(err, rc, "%s %s: bad request header", method, url_log);
		goto out;
	}

	/* Failing setopt calls here only happen with a libcurl built
	 * without the feature; the transfer then reports the problem. */
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, HTTP_MAX_REDIRECTS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 req->connect_timeout_ms > 0 ? req->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	                 req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ratepool/" RATEPOOL_VERSION);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl was built with */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/* Stops a body with a Content-Length over the cap before it starts;
	 * the write callback enforces the cap on chunked or compressed
	 * bodies, which this option does not see in libcurl < 8.4. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b.max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if(req->basic_user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, req->basic_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "");
	}
	if(!strcmp(method, "POST")) {
		const char *body = req->body ? req->body : "";
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}

	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", h.content_type);
	snprintf(resp->etag, sizeof(resp->etag), "%s", h.etag);
	snprintf(resp->last_modified, sizeof(resp->last_modified), "%s", h.last_modified);
	if(h.retry_after[0])
		resp->retry_after = http_parse_retry_after(h.retry_after, rtime_now());

	rc = classify_curl(cc, &b);
	if(rc) {
		const char *why = rc == RP_ETOOLARGE ? "response over the size cap" : errbuf;
		if(!*why)
			why = curl_easy_strerror(cc);
		rp_err_set(err, rc, "%s %s: %s", method, url_log, why);
		/* A cut or oversized body is useless; never hand half of one on. */
		free(b.data);
		b.data = NULL;
		b.len = 0;
		goto out;
	}
	resp->body = b.data;
	resp->len = b.len;
	b.data = NULL;
	if(resp->status == 304) {
		resp->len = 0;
		if(resp->body)
			resp->body[0] = '\0';
	}
	rc = classify_status(resp->status);
	if(rc) {
		char excerpt[128] = "";
		if(!resp->body) {
			resp->body = calloc(1, 1);
			if(!resp->body) {
				rc = rp_err_set(err, RP_ENOMEM, "out of memory");
				goto out;
			}
		}
		body_excerpt(resp, excerpt, sizeof(excerpt));
		rp_err_set(err, rc, "%s %s: HTTP %ld%s%s%s", method, url_log, resp->status,
		           http_body_is_html(resp) ? " (HTML page)" : "", *excerpt ? ": " : "", excerpt);
	}

out:
	if(!resp->body)
		resp->body = calloc(1, 1); /* callers may treat body as a string */
	if(rc) {
		err->http_status = (int)resp->status;
		err->retry_after = resp->retry_after;
	}
	if(rc)
		log_warn("http_error", "method=%s url=%s status=%ld code=%s ms=%lld msg=\"%s\"", method,
		         url_log, resp->status, rp_code_name(rc), (long long)(rtime_now_ms() - t0), err->msg);
	else
		log_debug("http_done", "method=%s url=%s status=%ld bytes=%zu ms=%lld", method, url_log,
		          resp->status, resp->len, (long long)(rtime_now_ms() - t0));
	free(b.data);
	curl_slist_free_all(headers);
	if(c)
		curl_easy_cleanup(c);
	return rc;
}

bool http_retryable(int code)
{
	return code == RP_ENET || code == RP_ETIMEOUT || code == RP_ERATELIMIT || code == RP_ESERVER;
}

/* Per-thread xorshift64*: jitter needs spread, not secrecy, and must not
 * serialise threads on a shared generator. */
static uint64_t rand64(void)
{
	static __thread uint64_t s;

	if(!s) {
		struct timespec ts;
		if(getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&s;
		}
		if(!s)
			s = 0x9e3779b97f4a7c15ULL;
	}
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1dULL;
}

long http_backoff_ms(const struct http_retry_policy *policy, int attempt)
{
	const struct http_retry_policy *p = policy ? policy : &default_policy;
	long cap = p->cap_ms > 0 ? p->cap_ms : 0;
	long ceiling = p->base_ms > 0 ? p->base_ms : 0;
	int i;

	/* ceiling = min(cap, base * 2^(attempt-1)) without overflow */
	for(i = 1; i < attempt && ceiling < cap; i++)
		ceiling = ceiling > LONG_MAX / 2 ? LONG_MAX : ceiling * 2;
	if(ceiling > cap)
		ceiling = cap;
	if(ceiling <= 0)
		return 0;
	return (long)(rand64() % ((uint64_t)ceiling + 1));
}

long http_parse_retry_after(const char *value, long long now)
{
	const char *p = value;
	long long v = 0;
	time_t t;

	if(!p)
		return -1;
	while(*p == ' ' || *p == '\t')
		p++;
	if(isdigit((unsigned char)*p)) {
		for(; isdigit((unsigned char)*p); p++) {
			if(v > 100000000LL) /* over three years: clamp, it is refused by the cap anyway */
				v = 100000000LL;
			else
				v = v * 10 + (*p - '0');
		}
		while(*p == ' ' || *p == '\t')
			p++;
		return *p ? -1 : (long)v;
	}
	/* HTTP-date: IMF-fixdate, RFC 850 or asctime; all start with a day name. */
	if(!isalpha((unsigned char)*p))
		return -1;
	t = curl_getdate(p, NULL);
	if(t == (time_t)-1)
		return -1;
	if((long long)t <= now)
		return 0;
	v = (long long)t - now;
	return v > 100000000LL ? 100000000L : (long)v;
}

int http_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if(!n)
		return RP_ETOOLARGE;
	for(; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if(isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if(o + 1 >= n)
				goto full;
			out[o++] = (char)ch;
		} else {
			if(o + 3 >= n)
				goto full;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return 0;
full:
	out[0] = '\0';
	return RP_ETOOLARGE;
}

bool http_text_is_html(const char *body, size_t len, const char *content_type)
{
	const unsigned char *p = (const unsigned char *)body;
	size_t i = 0;

	if(content_type && !strncasecmp(content_type, "text/html", 9))
		return true;
	if(!body)
		return false;
	if(len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) /* UTF-8 BOM */
		i = 3;
	while(i < len && isspace(p[i]))
		i++;
	return i < len && p[i] == '<';
}

bool http_body_is_html(const struct http_response *resp)
{
	return resp && http_text_is_html(resp->body, resp->len, resp->content_type);
}

static void sleep_ms(long ms)
{
	double real = rtime_real_seconds((double)ms / 1000.0);
	struct timespec ts;

	if(real <= 0)
		return;
	ts.tv_sec = (time_t)real;
	ts.tv_nsec = (long)((real - (double)ts.tv_sec) * 1e9);
	while(nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int http_perform_retry(const struct http_request *req, const struct http_retry_policy *policy,
                       struct http_response *resp, int *attempts, struct rp_err *err)
{
	const struct http_retry_policy *p = policy ? policy : &default_policy;
	int max = p->max_attempts >= 1 ? p->max_attempts : 1;
	char url_log[HTTP_URL_LOG_MAX];
	int n = 0;
	int rc;

	url_redact(req ? req->url : NULL, url_log, sizeof(url_log));
	for(;;) {
		long wait_ms;

		if(n)
			http_response_free(resp);
		n++;
		rc = http_perform(req, resp, err);
		if(!rc || !http_retryable(rc) || n >= max)
			break;
		wait_ms = http_backoff_ms(p, n);
		if(resp->retry_after >= 0) {
			/* The upstream named its time: obey it, but do not
			 * park a worker for longer than the policy allows. */
			if(resp->retry_after > p->max_retry_after_s) {
				log_warn("http_retry_after_too_long", "url=%s retry_after=%ld max=%ld",
				         url_log, resp->retry_after, p->max_retry_after_s);
				break;
			}
			if(resp->retry_after * 1000 > wait_ms)
				wait_ms = resp->retry_after * 1000;
		}
		log_info("http_retry", "url=%s attempt=%d code=%s wait_ms=%ld", url_log, n, rp_code_name(rc),
		         wait_ms);
		sleep_ms(wait_ms);
	}
	if(attempts)
		*attempts = n;
	return rc;
}
