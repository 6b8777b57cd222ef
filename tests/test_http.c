/* test_http.c - the HTTP layer: classification, caps, headers, retries.
 *
 * Two servers: a tiny canned-answer server in this file (for exact
 * headers, gzip, chunked bodies, 304) and the fake upstream (for faults
 * and counted upstream calls). */
#include "ratepool/error.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "support/fake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* --- a canned-answer server ------------------------------------------- */

struct mini {
	int fd;
	int port;
	pthread_t th;
	pthread_mutex_t mu;
	char answer[65536];
	size_t answer_len;
	char last_request[8192];
	int requests;
	int stop;
};

static struct mini mini;

static void *mini_main(void *arg)
{
	(void)arg;
	for(;;) {
		struct pollfd pfd = {mini.fd, POLLIN, 0};
		char req[8192];
		size_t len = 0;
		int c;
		int stop;

		pthread_mutex_lock(&mini.mu);
		stop = mini.stop;
		pthread_mutex_unlock(&mini.mu);
		if(stop)
			break;
		if(poll(&pfd, 1, 50) <= 0)
			continue;
		c = accept(mini.fd, NULL, NULL);
		if(c < 0)
			continue;
		/* Read the head and, when announced, the body. */
		for(;;) {
			ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
			char *end;
			if(r <= 0)
				break;
			len += (size_t)r;
			req[len] = '\0';
			end = strstr(req, "\r\n\r\n");
			if(end) {
				char *cl = strcasestr(req, "\r\nContent-Length:");
				size_t want = (size_t)(end + 4 - req);
				if(cl && cl < end)
					want += (size_t)strtoul(cl + 17, NULL, 10);
				if(len >= want || len >= sizeof(req) - 1)
					break;
			}
			if(len >= sizeof(req) - 1)
				break;
		}
		req[len] = '\0';
		pthread_mutex_lock(&mini.mu);
		memcpy(mini.last_request, req, len + 1);
		mini.requests++;
		if(send(c, mini.answer, mini.answer_len, MSG_NOSIGNAL) < 0)
			mini.requests += 0;
		pthread_mutex_unlock(&mini.mu);
		shutdown(c, SHUT_WR);
		while(recv(c, req, sizeof(req), 0) > 0)
			;
		close(c);
	}
	return NULL;
}

static int mini_start(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(&sa, 0, sizeof(sa));
	pthread_mutex_init(&mini.mu, NULL);
	mini.fd = socket(AF_INET, SOCK_STREAM, 0);
	if(mini.fd < 0)
		return -1;
	setsockopt(mini.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(bind(mini.fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(mini.fd, 16) ||
	   getsockname(mini.fd, (struct sockaddr *)&sa, &sl))
		return -1;
	mini.port = ntohs(sa.sin_port);
	return pthread_create(&mini.th, NULL, mini_main, NULL) ? -1 : 0;
}

static void mini_stop(void)
{
	pthread_mutex_lock(&mini.mu);
	mini.stop = 1;
	pthread_mutex_unlock(&mini.mu);
	pthread_join(mini.th, NULL);
	close(mini.fd);
}

/* The next answers are these bytes (a whole HTTP response). */
static void mini_answer(const void *data, size_t len)
{
	pthread_mutex_lock(&mini.mu);
	assert_true(len <= sizeof(mini.answer));
	memcpy(mini.answer, data, len);
	mini.answer_len = len;
	mini.requests = 0;
	mini.last_request[0] = '\0';
	pthread_mutex_unlock(&mini.mu);
}

static void mini_answer_text(const char *text)
{
	mini_answer(text, strlen(text));
}

static void mini_url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", mini.port, path);
}

static int mini_requests(void)
{
	int n;
	pthread_mutex_lock(&mini.mu);
	n = mini.requests;
	pthread_mutex_unlock(&mini.mu);
	return n;
}

static void mini_last_request(char *out, size_t n)
{
	pthread_mutex_lock(&mini.mu);
	snprintf(out, n, "%s", mini.last_request);
	pthread_mutex_unlock(&mini.mu);
}

/* --- helpers -------------------------------------------------------------- */

static const struct http_retry_policy fast_policy = {
        .max_attempts = 3,
        .base_ms = 1,
        .cap_ms = 5,
        .max_retry_after_s = 5,
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int get_mini(const char *path, size_t max_body, struct http_response *resp, struct rp_err *err)
{
	char url[256];
	struct http_request req = {0};

	mini_url(url, sizeof(url), path);
	req.url = url;
	req.max_body = max_body;
	req.timeout_ms = 5000;
	return http_perform(&req, resp, err);
}

static char login_url[256];

/* WattTime /login on the fake: a simple GET that answers JSON. */
static struct http_request login_request(void)
{
	struct http_request req = {0};

	snprintf(login_url, sizeof(login_url), "%s/login", fake_url());
	req.url = login_url;
	req.basic_user = "ratepool";
	req.basic_password = "fake-password";
	req.timeout_ms = 5000;
	return req;
}

static int group_setup(void **state)
{
	(void)state;
	log_open(LOG_LEVEL_ERROR, NULL);
	if(http_global_init() || mini_start())
		return -1;
	return fake_start();
}

static int group_teardown(void **state)
{
	(void)state;
	fake_stop();
	mini_stop();
	http_global_cleanup();
	return 0;
}

static int fake_test_setup(void **state)
{
	(void)state;
	return fake_reset();
}

/* --- pure functions ------------------------------------------------------- */

static void test_retry_after_delta_seconds(void **state)
{
	(void)state;
	assert_int_equal(http_parse_retry_after("120", 1000), 120);
	assert_int_equal(http_parse_retry_after(" 5 ", 1000), 5);
	assert_int_equal(http_parse_retry_after("0", 1000), 0);
	assert_int_equal(http_parse_retry_after("", 1000), -1);
	assert_int_equal(http_parse_retry_after("-5", 1000), -1);
	assert_int_equal(http_parse_retry_after("5x", 1000), -1);
	assert_int_equal(http_parse_retry_after("1.5", 1000), -1);
	assert_int_equal(http_parse_retry_after(NULL, 1000), -1);
	/* absurd values are clamped, never overflow */
	assert_true(http_parse_retry_after("99999999999999999999999", 0) > 0);
}

static void test_retry_after_http_date(void **state)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const long long t = 784111777LL;
	(void)state;
	assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t - 30), 30);
	assert_int_equal(http_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", t - 90), 90);
	assert_int_equal(http_parse_retry_after("Sun Nov  6 08:49:37 1994", t - 1), 1);
	/* a date in the past means now */
	assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t + 500), 0);
	assert_int_equal(http_parse_retry_after("Someday, never", t), -1);
}

static void test_backoff_full_jitter_within_bounds(void **state)
{
	const struct http_retry_policy p = {.max_attempts = 10, .base_ms = 100, .cap_ms = 3000};
	int attempt, i;
	(void)state;

	for(attempt = 1; attempt <= 10; attempt++) {
		long ceiling = 100L << (attempt - 1);
		long hi = 0;
		if(ceiling > 3000)
			ceiling = 3000;
		for(i = 0; i < 2000; i++) {
			long b = http_backoff_ms(&p, attempt);
			assert_true(b >= 0);
			assert_true(b <= ceiling);
			if(b > hi)
				hi = b;
		}
		/* full jitter spreads over the whole range, not a fixed delay
		 * (2000 uniform draws all in the lower half: p = 2^-2000) */
		assert_true(hi > ceiling / 2);
	}
}

static void test_backoff_never_overflows(void **state)
{
	const struct http_retry_policy p = {.max_attempts = 100, .base_ms = 1L << 40, .cap_ms = 60000};
	const struct http_retry_policy zero = {.max_attempts = 3, .base_ms = 0, .cap_ms = 0};
	int i;
	(void)state;

	for(i = 0; i < 200; i++) {
		long b = http_backoff_ms(&p, 64 + i);
		assert_true(b >= 0 && b <= 60000);
	}
	assert_int_equal(http_backoff_ms(&zero, 5), 0);
}

static void test_retryable_classes(void **state)
{
	(void)state;
	assert_true(http_retryable(RP_ENET));
	assert_true(http_retryable(RP_ETIMEOUT));
	assert_true(http_retryable(RP_ERATELIMIT));
	assert_true(http_retryable(RP_ESERVER));
	assert_false(http_retryable(RP_EAUTH));
	assert_false(http_retryable(RP_EFORBIDDEN));
	assert_false(http_retryable(RP_ENOTFOUND));
	assert_false(http_retryable(RP_EUPSTREAM));
	assert_false(http_retryable(RP_ETOOLARGE));
	assert_false(http_retryable(0));
}

static void test_escape_reserved_characters(void **state)
{
	char out[64];
	(void)state;

	assert_int_equal(http_escape("2026-11-21T16:00:00Z", out, sizeof(out)), 0);
	assert_string_equal(out, "2026-11-21T16%3A00%3A00Z");
	assert_int_equal(http_escape("a b&c=d/e+f~g_h.i", out, sizeof(out)), 0);
	assert_string_equal(out, "a%20b%26c%3Dd%2Fe%2Bf~g_h.i");
	assert_int_equal(http_escape("\xc3\xa9", out, sizeof(out)), 0);
	assert_string_equal(out, "%C3%A9");
	assert_int_equal(http_escape("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void test_escape_refuses_overflow(void **state)
{
	char out[6];
	(void)state;

	assert_int_equal(http_escape("abcde", out, sizeof(out)), 0);
	assert_int_equal(http_escape("abcdef", out, sizeof(out)), RP_ETOOLARGE);
	assert_int_equal(http_escape("ab:", out, sizeof(out)), 0);
	assert_string_equal(out, "ab%3A");
	assert_int_equal(http_escape("abc:", out, sizeof(out)), RP_ETOOLARGE);
	assert_string_equal(out, "");
}

static void test_html_detected_by_type_or_leading_angle(void **state)
{
	struct http_response r;
	char json[] = "{\"a\":1}";
	char html[] = "\n  <html><body>403</body></html>";
	char bom[] = "\xef\xbb\xbf<!DOCTYPE html>";
	(void)state;

	memset(&r, 0, sizeof(r));
	r.body = json;
	r.len = strlen(json);
	assert_false(http_body_is_html(&r));
	snprintf(r.content_type, sizeof(r.content_type), "text/html; charset=utf-8");
	assert_true(http_body_is_html(&r));
	r.content_type[0] = '\0';
	r.body = html;
	r.len = strlen(html);
	assert_true(http_body_is_html(&r));
	r.body = bom;
	r.len = strlen(bom);
	assert_true(http_body_is_html(&r));
	r.body = NULL;
	r.len = 0;
	assert_false(http_body_is_html(&r));
}

/* --- against the canned server ------------------------------------------- */

static void check_status(long status, int want)
{
	char answer[256];
	struct http_response resp;
	struct rp_err err;

	snprintf(answer, sizeof(answer),
	         "HTTP/1.1 %ld X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
	         "Connection: close\r\n\r\n{}",
	         status);
	if(status == 204 || status == 304)
		snprintf(answer, sizeof(answer), "HTTP/1.1 %ld X\r\nConnection: close\r\n\r\n", status);
	mini_answer_text(answer);
	rp_err_clear(&err);
	assert_int_equal(get_mini("/x", 0, &resp, &err), want);
	assert_int_equal(resp.status, status);
	assert_non_null(resp.body);
	if(want) {
		assert_int_equal(err.code, want);
		assert_int_equal(err.http_status, status);
	}
	http_response_free(&resp);
}

static void test_each_status_class_maps_to_its_code(void **state)
{
	(void)state;
	check_status(200, 0);
	check_status(201, 0);
	check_status(204, 0);
	check_status(304, 0);
	check_status(400, RP_EUPSTREAM);
	check_status(401, RP_EAUTH);
	check_status(403, RP_EFORBIDDEN);
	check_status(404, RP_ENOTFOUND);
	check_status(422, RP_EUPSTREAM);
	check_status(429, RP_ERATELIMIT);
	check_status(500, RP_ESERVER);
	check_status(502, RP_ESERVER);
	check_status(503, RP_ESERVER);
}

static void test_request_carries_user_agent_and_accepts_compression(void **state)
{
	struct http_response resp;
	char seen[8192];
	(void)state;

	mini_answer_text("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
	assert_int_equal(get_mini("/ua", 0, &resp, NULL), 0);
	http_response_free(&resp);
	mini_last_request(seen, sizeof(seen));
	assert_non_null(strstr(seen, "User-Agent: ratepool/" RATEPOOL_VERSION "\r\n"));
	assert_non_null(strcasestr(seen, "\r\nAccept-Encoding: "));
	assert_non_null(strstr(seen, "gzip"));
}

static void test_gzip_answer_is_decoded(void **state)
{
	static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
	                                   0xab, 0x56, 0x4a, 0xce, 0xcf, 0x2d, 0x28, 0x4a, 0x2d, 0x2e,
	                                   0x4e, 0x4d, 0x51, 0xb2, 0x2a, 0x29, 0x2a, 0x4d, 0xd5, 0x51,
	                                   0x2a, 0x48, 0x04, 0x32, 0x95, 0x12, 0x49, 0x02, 0x4a, 0xb5,
	                                   0x00, 0xf5, 0x9b, 0x87, 0x11, 0x4a, 0x00, 0x00, 0x00};
	char answer[512];
	struct http_response resp;
	int w;
	(void)state;

	w = snprintf(answer, sizeof(answer),
	             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	             sizeof(gz));
	memcpy(answer + w, gz, sizeof(gz));
	mini_answer(answer, (size_t)w + sizeof(gz));
	assert_int_equal(get_mini("/gz", 0, &resp, NULL), 0);
	assert_string_equal(
	        resp.body,
	        "{\"compressed\":true,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
	assert_int_equal(resp.len, strlen(resp.body));
	assert_string_equal(resp.content_type, "application/json");
	http_response_free(&resp);
}

static void test_conditional_get_sends_validators_and_304_is_empty_success(void **state)
{
	char url[256];
	char seen[8192];
	struct http_request req = {0};
	struct http_response resp;
	(void)state;

	mini_answer_text("HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\nConnection: close\r\n\r\n");
	mini_url(url, sizeof(url), "/cond");
	req.url = url;
	req.if_none_match = "\"v1\"";
	req.if_modified_since = "Sat, 21 Nov 2026 16:00:00 GMT";
	assert_int_equal(http_perform(&req, &resp, NULL), 0);
	assert_int_equal(resp.status, 304);
	assert_int_equal(resp.len, 0);
	assert_string_equal(resp.body, "");
	http_response_free(&resp);
	mini_last_request(seen, sizeof(seen));
	assert_non_null(strstr(seen, "\r\nIf-None-Match: \"v1\"\r\n"));
	assert_non_null(strstr(seen, "\r\nIf-Modified-Since: Sat, 21 Nov 2026 16:00:00 GMT\r\n"));
}

static void test_validators_and_retry_after_are_captured(void **state)
{
	struct http_response resp;
	struct rp_err err;
	(void)state;

	mini_answer_text(
	        "HTTP/1.1 200 OK\r\nETag: W/\"abc\"\r\nLast-Modified: Sat, 21 Nov 2026 16:00:00 GMT\r\n"
	        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
	assert_int_equal(get_mini("/v", 0, &resp, NULL), 0);
	assert_string_equal(resp.etag, "W/\"abc\"");
	assert_string_equal(resp.last_modified, "Sat, 21 Nov 2026 16:00:00 GMT");
	assert_int_equal(resp.retry_after, -1);
	http_response_free(&resp);

	mini_answer_text(
	        "HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	rp_err_clear(&err);
	assert_int_equal(get_mini("/v", 0, &resp, &err), RP_ESERVER);
	assert_int_equal(resp.retry_after, 7);
	assert_int_equal(err.retry_after, 7);
	http_response_free(&resp);
}

static void test_chunked_body_over_cap_is_too_large(void **state)
{
	char answer[65536];
	size_t o = 0;
	struct http_response resp;
	struct rp_err err;
	int i;
	(void)state;

	/* No Content-Length, so only the running count can stop it. */
	o += (size_t)snprintf(answer, sizeof(answer),
	                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	for(i = 0; i < 40; i++)
		o += (size_t)snprintf(answer + o, sizeof(answer) - o, "400\r\n%01024d\r\n", 0);
	o += (size_t)snprintf(answer + o, sizeof(answer) - o, "0\r\n\r\n");
	mini_answer(answer, o);

	rp_err_clear(&err);
	assert_int_equal(get_mini("/big", 4096, &resp, &err), RP_ETOOLARGE);
	assert_int_equal(resp.len, 0);
	assert_int_equal(err.code, RP_ETOOLARGE);
	http_response_free(&resp);

	/* the same answer fits a larger cap */
	assert_int_equal(get_mini("/big", 65536, &resp, NULL), 0);
	assert_int_equal(resp.len, 40 * 1024);
	http_response_free(&resp);
}

static void test_declared_length_over_cap_is_too_large(void **state)
{
	struct http_response resp;
	(void)state;

	mini_answer_text("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
	                 "0123456789012345678901234567890123456789012345678901234567890123456789"
	                 "012345678901234567890123456789");
	assert_int_equal(get_mini("/len", 50, &resp, NULL), RP_ETOOLARGE);
	http_response_free(&resp);
	assert_int_equal(get_mini("/len", 100, &resp, NULL), 0);
	assert_int_equal(resp.len, 100);
	http_response_free(&resp);
}

static void test_refused_connection_is_network_error(void **state)
{
	struct http_request req = {0};
	struct http_response resp;
	struct rp_err err;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64];
	(void)state;

	/* a port that was free a moment ago and has no listener */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	req.url = url;
	rp_err_clear(&err);
	assert_int_equal(http_perform(&req, &resp, &err), RP_ENET);
	assert_int_equal(resp.status, 0);
	assert_int_equal(err.code, RP_ENET);
	http_response_free(&resp);
}

static void test_credentials_never_in_error_or_log(void **state)
{
	char path[] = "/tmp/ratepool-http-log-XXXXXX";
	char url[256];
	char line[4096];
	struct http_request req = {0};
	struct http_response resp;
	struct rp_err err;
	FILE *f;
	int fd = mkstemp(path);
	int lines = 0;
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(LOG_LEVEL_DEBUG, path), 0);
	mini_answer_text("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
	                 "Connection: close\r\n\r\n{\"detail\":\"No such tariff\"}");
	snprintf(url, sizeof(url), "http://user:pw-SECRET-1@127.0.0.1:%d/v1/x/?api_key=QUERY-SECRET-2&a=b",
	         mini.port);
	req.url = url;
	rp_err_clear(&err);
	assert_int_equal(http_perform(&req, &resp, &err), RP_ENOTFOUND);
	http_response_free(&resp);
	/* the message says what failed, without the secrets */
	assert_non_null(strstr(err.msg, "/v1/x/"));
	assert_non_null(strstr(err.msg, "404"));
	assert_non_null(strstr(err.msg, "No such tariff"));
	assert_null(strstr(err.msg, "SECRET"));
	log_open(LOG_LEVEL_ERROR, NULL);

	f = fopen(path, "r");
	assert_non_null(f);
	while(fgets(line, sizeof(line), f)) {
		lines++;
		assert_null(strstr(line, "SECRET"));
	}
	fclose(f);
	unlink(path);
	assert_true(lines >= 1);
}

static void test_header_injection_is_refused_before_sending(void **state)
{
	char url[256];
	struct http_request req = {0};
	struct http_response resp;
	(void)state;

	mini_answer_text("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
	mini_url(url, sizeof(url), "/inj");
	req.url = url;
	req.bearer = "tok\r\nX-Evil: 1";
	assert_int_equal(http_perform(&req, &resp, NULL), RP_EINVAL);
	http_response_free(&resp);
	assert_int_equal(mini_requests(), 0);
}

static void test_auth_headers_and_post_body_are_sent(void **state)
{
	char url[256];
	char seen[8192];
	const char *extra[] = {"X-Test: yes", NULL};
	struct http_request req = {0};
	struct http_response resp;
	(void)state;

	mini_answer_text("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
	mini_url(url, sizeof(url), "/post");
	req.url = url;
	req.method = "POST";
	req.body = "{\"query\":\"q\"}";
	req.content_type = "application/json";
	req.authorization = "jwt.token.here";
	req.headers = extra;
	assert_int_equal(http_perform(&req, &resp, NULL), 0);
	http_response_free(&resp);
	mini_last_request(seen, sizeof(seen));
	assert_true(!strncmp(seen, "POST /post HTTP/1.1\r\n", 21));
	assert_non_null(strstr(seen, "\r\nAuthorization: jwt.token.here\r\n"));
	assert_non_null(strstr(seen, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(seen, "\r\nX-Test: yes\r\n"));
	assert_non_null(strstr(seen, "\r\n\r\n{\"query\":\"q\"}"));

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.bearer = "abc123";
	assert_int_equal(http_perform(&req, &resp, NULL), 0);
	http_response_free(&resp);
	mini_last_request(seen, sizeof(seen));
	assert_non_null(strstr(seen, "\r\nAuthorization: Bearer abc123\r\n"));

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.basic_user = "ratepool";
	req.basic_password = "fake-password";
	assert_int_equal(http_perform(&req, &resp, NULL), 0);
	http_response_free(&resp);
	mini_last_request(seen, sizeof(seen));
	/* base64("ratepool:fake-password") */
	assert_non_null(strstr(seen, "\r\nAuthorization: Basic cmF0ZXBvb2w6ZmFrZS1wYXNzd29yZA==\r\n"));
}

/* --- against the fake upstream --------------------------------------------- */

static void test_fake_success_counts_one_call(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body, "\"token\""));
	assert_int_equal(attempts, 1);
	assert_int_equal(fake_calls("watttime_login"), 1);
	http_response_free(&resp);
}

static void test_429_then_success_obeys_retry_after(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	int attempts = 0;
	int64_t t0;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"status\",\"status\":429,"
	                            "\"retry_after\":\"1\",\"times\":1}"),
	                 0);
	t0 = mono_ms();
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, NULL), 0);
	/* the backoff alone is at most 5 ms; the wait came from Retry-After
	 * (a lower bound only: a slow machine may take longer) */
	assert_true(mono_ms() - t0 >= (int64_t)(rtime_real_seconds(1.0) * 1000) - 50);
	assert_int_equal(attempts, 2);
	assert_int_equal(resp.status, 200);
	assert_int_equal(fake_calls("watttime_login"), 2);
	http_response_free(&resp);
}

static void test_retry_after_as_http_date_is_obeyed(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	struct rp_err err;
	char fault[256];
	char date[64];
	time_t when = (time_t)rtime_now() + 3600;
	struct tm tm;
	int attempts = 0;
	(void)state;

	/* an hour away: longer than the policy waits, so it comes back at
	 * once with retry_after set instead of sleeping */
	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(fault, sizeof(fault),
	         "{\"endpoint\":\"watttime_login\",\"kind\":\"status\",\"status\":429,"
	         "\"retry_after\":\"%s\",\"times\":1}",
	         date);
	assert_int_equal(fake_fault(fault), 0);
	rp_err_clear(&err);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, &err), RP_ERATELIMIT);
	assert_int_equal(attempts, 1);
	assert_true(resp.retry_after >= 3590 && resp.retry_after <= 3600);
	assert_true(err.retry_after >= 3590 && err.retry_after <= 3600);
	assert_int_equal(fake_calls("watttime_login"), 1);
	http_response_free(&resp);
}

static void check_not_retried(long status, int want)
{
	struct http_request req = login_request();
	struct http_response resp;
	char fault[160];
	int attempts = 0;

	assert_int_equal(fake_reset(), 0);
	snprintf(fault, sizeof(fault),
	         "{\"endpoint\":\"watttime_login\",\"kind\":\"status\",\"status\":%ld,\"times\":-1}", status);
	assert_int_equal(fake_fault(fault), 0);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, NULL), want);
	assert_int_equal(resp.status, status);
	assert_int_equal(attempts, 1);
	assert_int_equal(fake_calls("watttime_login"), 1);
	http_response_free(&resp);
}

static void test_400_401_403_404_are_not_retried(void **state)
{
	(void)state;
	check_not_retried(400, RP_EUPSTREAM);
	check_not_retried(401, RP_EAUTH);
	check_not_retried(403, RP_EFORBIDDEN);
	check_not_retried(404, RP_ENOTFOUND);
}

static void test_500_is_retried_up_to_max_attempts(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	struct rp_err err;
	int attempts = 0;
	(void)state;

	assert_int_equal(
	        fake_fault(
	                "{\"endpoint\":\"watttime_login\",\"kind\":\"status\",\"status\":500,\"times\":-1}"),
	        0);
	rp_err_clear(&err);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, &err), RP_ESERVER);
	assert_int_equal(attempts, 3);
	assert_int_equal(err.http_status, 500);
	assert_int_equal(fake_calls("watttime_login"), 3);
	http_response_free(&resp);
}

static void test_503_twice_then_success(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	struct rp_err err;
	int attempts = 0;
	(void)state;

	assert_int_equal(
	        fake_fault(
	                "{\"endpoint\":\"watttime_login\",\"kind\":\"status\",\"status\":503,\"times\":2}"),
	        0);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, &err), 0);
	assert_int_equal(err.code, 0); /* no stale message from the failed tries */
	assert_int_equal(attempts, 3);
	assert_int_equal(fake_calls("watttime_login"), 3);
	http_response_free(&resp);
}

static void test_slow_answer_times_out(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	struct rp_err err;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"slow\",\"delay_s\":5}"), 0);
	req.timeout_ms = 300;
	rp_err_clear(&err);
	assert_int_equal(http_perform(&req, &resp, &err), RP_ETIMEOUT);
	assert_int_equal(err.code, RP_ETIMEOUT);
	assert_int_equal(resp.len, 0);
	http_response_free(&resp);
}

static void test_truncated_body_is_an_error(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	int rc;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"truncate\"}"), 0);
	rc = http_perform(&req, &resp, NULL);
	assert_int_equal(rc, RP_ENET);
	assert_int_equal(resp.len, 0); /* half a body is never handed on */
	http_response_free(&resp);
}

static void test_closed_connection_is_retried(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"close\",\"times\":1}"), 0);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_int_equal(attempts, 2);
	assert_int_equal(fake_calls("watttime_login"), 2);
	http_response_free(&resp);
}

static void test_cdn_html_page_is_forbidden_and_detected(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	struct rp_err err;
	int attempts = 0;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"html\"}"), 0);
	rp_err_clear(&err);
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, &err), RP_EFORBIDDEN);
	assert_int_equal(attempts, 1);
	assert_true(http_body_is_html(&resp));
	assert_non_null(strstr(err.msg, "HTML"));
	http_response_free(&resp);
}

static void test_fake_body_over_cap_is_too_large(void **state)
{
	struct http_request req = login_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	req.max_body = 8;
	assert_int_equal(http_perform_retry(&req, &fast_policy, &resp, &attempts, NULL), RP_ETOOLARGE);
	assert_int_equal(attempts, 1); /* a too-large answer is not retried */
	assert_int_equal(resp.len, 0);
	http_response_free(&resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_retry_after_delta_seconds),
	        cmocka_unit_test(test_retry_after_http_date),
	        cmocka_unit_test(test_backoff_full_jitter_within_bounds),
	        cmocka_unit_test(test_backoff_never_overflows),
	        cmocka_unit_test(test_retryable_classes),
	        cmocka_unit_test(test_escape_reserved_characters),
	        cmocka_unit_test(test_escape_refuses_overflow),
	        cmocka_unit_test(test_html_detected_by_type_or_leading_angle),
	        cmocka_unit_test(test_each_status_class_maps_to_its_code),
	        cmocka_unit_test(test_request_carries_user_agent_and_accepts_compression),
	        cmocka_unit_test(test_gzip_answer_is_decoded),
	        cmocka_unit_test(test_conditional_get_sends_validators_and_304_is_empty_success),
	        cmocka_unit_test(test_validators_and_retry_after_are_captured),
	        cmocka_unit_test(test_chunked_body_over_cap_is_too_large),
	        cmocka_unit_test(test_declared_length_over_cap_is_too_large),
	        cmocka_unit_test(test_refused_connection_is_network_error),
	        cmocka_unit_test(test_credentials_never_in_error_or_log),
	        cmocka_unit_test(test_header_injection_is_refused_before_sending),
	        cmocka_unit_test(test_auth_headers_and_post_body_are_sent),
	        cmocka_unit_test_setup(test_fake_success_counts_one_call, fake_test_setup),
	        cmocka_unit_test_setup(test_429_then_success_obeys_retry_after, fake_test_setup),
	        cmocka_unit_test_setup(test_retry_after_as_http_date_is_obeyed, fake_test_setup),
	        cmocka_unit_test_setup(test_400_401_403_404_are_not_retried, fake_test_setup),
	        cmocka_unit_test_setup(test_500_is_retried_up_to_max_attempts, fake_test_setup),
	        cmocka_unit_test_setup(test_503_twice_then_success, fake_test_setup),
	        cmocka_unit_test_setup(test_slow_answer_times_out, fake_test_setup),
	        cmocka_unit_test_setup(test_truncated_body_is_an_error, fake_test_setup),
	        cmocka_unit_test_setup(test_closed_connection_is_retried, fake_test_setup),
	        cmocka_unit_test_setup(test_cdn_html_page_is_forbidden_and_detected, fake_test_setup),
	        cmocka_unit_test_setup(test_fake_body_over_cap_is_too_large, fake_test_setup),
	};
	return cmocka_run_group_tests_name("http", tests, group_setup, group_teardown);
}
