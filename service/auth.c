/* auth.c - upstream tokens: Kraken JWTs (obtainKrakenToken) and WattTime
 * logins; kept in the store, refreshed before expiry or when refused,
 * one refresh at a time per credential. */
#include "ratepool/auth.h"
#include "ratepool/config.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/sha256.h"
#include "ratepool/store.h"

#include <jansson.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#define DEFAULT_OCTOPUS_URL  "https://api.octopus.energy"
#define DEFAULT_WATTTIME_URL "https://api.watttime.org"
#define KRAKEN_LIFETIME_S    3600 /* documented; used when the JWT has no exp */
#define WATTTIME_LIFETIME_S  1800 /* documented: 30 minutes after login */
#define TOKEN_ANSWER_MAX     (256 * 1024)
#define JWT_PAYLOAD_MAX      8192
#define AUTH_URL_MAX         1024

#define KRAKEN_TOKEN_MUTATION                                                                                \
	"mutation obtainKrakenToken($input: ObtainJSONWebTokenInput!) { obtainKrakenToken(input: $input) "   \
	"{ token refreshToken refreshExpiresIn payload } }"

struct auth_cred {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int configured;
	char key[SHA256_HEX_SIZE]; /* store key: hash of the credential */
	struct store_token tok;    /* tok.access[0] == 0: none held */
	int refused;               /* the upstream refused tok.access */
	int refreshing;            /* a thread is refreshing: wait for it */
	unsigned long generation;  /* bumped by every finished refresh */
	int last_rc;               /* result of the last refresh, for waiters */
	struct rp_err last_err;
	unsigned long refresh_count;
	int64_t last_refresh;
};

struct auth {
	struct store *store;
	const struct config *cfg;
	struct auth_cred cred[AUTH_KIND_COUNT];
};

static const char *kind_name(enum auth_kind kind)
{
	return kind == AUTH_KRAKEN ? "kraken" : "watttime";
}

/* --- pure helpers ---------------------------------------------------------- */

static void hex_encode(const uint8_t d[SHA256_DIGEST_SIZE], char out[SHA256_HEX_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for(i = 0; i < SHA256_DIGEST_SIZE; i++) {
		out[i * 2] = hex[d[i] >> 4];
		out[i * 2 + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

void auth_credential_key(const char *provider, const char *credential, char out[65])
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];

	/* Hashed piecewise so that no buffer ever holds "provider:secret". */
	sha256_init(&ctx);
	sha256_update(&ctx, provider ? provider : "", provider ? strlen(provider) : 0);
	sha256_update(&ctx, ":", 1);
	sha256_update(&ctx, credential ? credential : "", credential ? strlen(credential) : 0);
	sha256_final(&ctx, d);
	hex_encode(d, out);
}

static int b64url_value(unsigned char c)
{
	if(c >= 'A' && c <= 'Z')
		return c - 'A';
	if(c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if(c >= '0' && c <= '9')
		return c - '0' + 52;
	if(c == '-')
		return 62;
	if(c == '_')
		return 63;
	return -1;
}

/* Decodes unpadded (or '='-padded) base64url. Returns 0 or RP_EPARSE. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;
	size_t i;

	while(len && in[len - 1] == '=')
		len--;
	if(len % 4 == 1)
		return RP_EPARSE;
	for(i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if(v < 0)
			return RP_EPARSE;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if(bits >= 8) {
			bits -= 8;
			if(o >= cap)
				return RP_EPARSE;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out_len = o;
	return 0;
}

/*
 * The signature is deliberately not checked. ratepool is the token's
 * client, not its audience: the upstream that issued the JWT verifies it
 * on every request, and a forged or damaged token only earns us a 401 or
 * KT-CT-1143, which refreshes it. We read `exp` only to know when to
 * refresh, and checking would need the issuer's keys for no gain.
 */
int auth_jwt_exp(const char *jwt, int64_t *exp)
{
	unsigned char buf[JWT_PAYLOAD_MAX];
	const char *dot1, *dot2;
	json_t *root = NULL;
	json_t *v;
	size_t len = 0;
	int rc = RP_EPARSE;

	if(!jwt || !exp)
		return RP_EPARSE;
	dot1 = strchr(jwt, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if(!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot1 == jwt || dot2 == dot1 + 1)
		return RP_EPARSE;
	if(b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, sizeof(buf), &len))
		return RP_EPARSE;
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	if(!json_is_object(root))
		goto out;
	v = json_object_get(root, "exp");
	if(json_is_integer(v) && json_integer_value(v) > 0) {
		*exp = (int64_t)json_integer_value(v);
		rc = 0;
	} else if(json_is_real(v) && isfinite(json_real_value(v)) && json_real_value(v) >= 1.0 &&
	          json_real_value(v) < 9e15) {
		*exp = (int64_t)json_real_value(v);
		rc = 0;
	}
out:
	json_decref(root);
	return rc;
}

/* A token from the upstream goes into a header and the store: printable
 * ASCII without spaces, and short enough for its field. */
static int token_ok(const char *t, size_t max)
{
	size_t n = 0;

	if(!t)
		return 0;
	for(; t[n]; n++)
		if((unsigned char)t[n] <= 0x20 || (unsigned char)t[n] >= 0x7f)
			return 0;
	return n > 0 && n < max;
}

static void base_url(char *out, size_t n, const char *url, const char *fallback, const char *path)
{
	const char *u = url && *url ? url : fallback;
	size_t len = strlen(u);

	while(len && u[len - 1] == '/')
		len--;
	if((size_t)snprintf(out, n, "%.*s%s", (int)len, u, path) >= n)
		out[0] = '\0';
}

static void token_policy(const struct config *cfg, struct http_retry_policy *p)
{
	p->max_attempts = cfg->retry_max_attempts > 0 ? cfg->retry_max_attempts : 4;
	p->base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 500;
	p->cap_ms = cfg->retry_cap_ms > 0 ? cfg->retry_cap_ms : 30000;
	p->max_retry_after_s = 120;
}

static void token_request(const struct config *cfg, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->connect_timeout_ms = cfg->http_connect_timeout_ms;
	req->timeout_ms = cfg->http_timeout_ms;
	req->max_body = TOKEN_ANSWER_MAX;
}

/* --- Kraken -------------------------------------------------------------- */

/* Codes that mean "this token or credential is not (or no longer) good".
 * 1139/1111/1143 are the contract's; 1124 and 1120 are the expired-JWT
 * variants, which a refresh cures just the same. */
static int kraken_token_code(const char *code)
{
	static const char *const codes[] = {"KT-CT-1139", "KT-CT-1111", "KT-CT-1143",
	                                    "KT-CT-1124", "KT-CT-1120", NULL};
	int i;

	for(i = 0; code && codes[i]; i++)
		if(!strcmp(code, codes[i]))
			return 1;
	return 0;
}

/* Codes the token mutation answers when the API key or refresh token is
 * refused. */
static int kraken_refused_code(const char *code)
{
	static const char *const codes[] = {"KT-CT-1134", "KT-CT-1135", "KT-CT-1138", "KT-CT-1112", NULL};
	int i;

	if(kraken_token_code(code))
		return 1;
	for(i = 0; code && codes[i]; i++)
		if(!strcmp(code, codes[i]))
			return 1;
	return 0;
}

/* First error of a GraphQL envelope: its code and a human text. Returns 1
 * when `errors` is a non-empty array. */
static int graphql_first_error(json_t *root, const char **code, const char **text)
{
	json_t *errors = json_object_get(root, "errors");
	json_t *e, *ext;

	*code = NULL;
	*text = NULL;
	if(!json_is_array(errors) || !json_array_size(errors))
		return 0;
	e = json_array_get(errors, 0);
	ext = json_object_get(e, "extensions");
	*code = json_string_value(json_object_get(ext, "errorCode"));
	*text = json_string_value(json_object_get(ext, "errorDescription"));
	if(!*text || !**text)
		*text = json_string_value(json_object_get(e, "message"));
	return 1;
}

/* True when a GraphQL answer carries a token error in any of its errors. */
static int kraken_answer_refuses_token(const struct http_response *resp)
{
	json_t *root, *errors, *e;
	size_t i;
	int hit = 0;

	if(!resp->body || !resp->len || !strstr(resp->body, "KT-CT-"))
		return 0;
	root = json_loadb(resp->body, resp->len, 0, NULL);
	errors = json_object_get(root, "errors");
	json_array_foreach(errors, i, e)
	{
		const char *code =
		        json_string_value(json_object_get(json_object_get(e, "extensions"), "errorCode"));
		if(kraken_token_code(code)) {
			hit = 1;
			break;
		}
	}
	json_decref(root);
	return hit;
}

/* One obtainKrakenToken call with input {field: value} (APIKey or
 * refreshToken). Fills out on success. */
static int kraken_obtain(struct auth *a, const char *field, const char *value, struct store_token *out,
                         int *calls, struct rp_err *err)
{
	struct http_retry_policy policy;
	struct http_request req;
	struct http_response resp = {0};
	char url[AUTH_URL_MAX];
	const char *ctype[] = {"Accept: application/json", NULL};
	char *body = NULL;
	json_t *root = NULL;
	json_t *q = NULL;
	json_t *t, *v;
	const char *code, *text;
	const char *token, *refresh;
	int64_t now = rtime_now();
	int n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	base_url(url, sizeof(url), a->cfg->octopus_url, DEFAULT_OCTOPUS_URL, "/v1/graphql/");
	if(!*url)
		return rp_err_set(err, RP_EINVAL, "octopus_url is too long");
	q = json_pack("{s:s, s:{s:{s:s}}}", "query", KRAKEN_TOKEN_MUTATION, "variables", "input", field,
	              value);
	body = q ? json_dumps(q, JSON_COMPACT) : NULL;
	json_decref(q);
	if(!body)
		return rp_err_set(err, RP_ENOMEM, "out of memory");

	token_request(a->cfg, &req);
	token_policy(a->cfg, &policy);
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.content_type = "application/json";
	req.headers = ctype;
	rc = http_perform_retry(&req, &policy, &resp, &n, err);
	*calls += n;
	explicit_bzero(body, strlen(body)); /* holds the API key or refresh token */
	free(body);
	if(rc) {
		if(rc == RP_EAUTH)
			rp_err_set(err, rc, "Kraken refused the %s (HTTP %ld)",
			           !strcmp(field, "APIKey") ? "API key" : "refresh token", resp.status);
		goto out;
	}
	root = json_loadb(resp.body, resp.len, 0, NULL);
	if(!json_is_object(root)) {
		rc = rp_err_set(err, http_body_is_html(&resp) ? RP_EFORBIDDEN : RP_EPARSE,
		                "Kraken token answer is not JSON");
		goto out;
	}
	if(graphql_first_error(root, &code, &text)) {
		char clean[160];
		log_scrub(text ? text : "", clean, sizeof(clean));
		if(kraken_refused_code(code))
			rc = RP_EAUTH;
		else if(code && !strcmp(code, "KT-CT-1199"))
			rc = RP_ERATELIMIT;
		else
			rc = RP_EUPSTREAM;
		rp_err_set(err, rc, "Kraken refused the %s: %s %s",
		           !strcmp(field, "APIKey") ? "API key" : "refresh token", code ? code : "(no code)",
		           clean);
		goto out;
	}
	t = json_object_get(json_object_get(root, "data"), "obtainKrakenToken");
	token = json_string_value(json_object_get(t, "token"));
	refresh = json_string_value(json_object_get(t, "refreshToken"));
	if(!token_ok(token, sizeof(out->access))) {
		rc = rp_err_set(err, RP_EPARSE, "Kraken token answer has no usable token");
		goto out;
	}
	memcpy(out->access, token, strlen(token) + 1);
	if(refresh && token_ok(refresh, sizeof(out->refresh)))
		memcpy(out->refresh, refresh, strlen(refresh) + 1);
	v = json_object_get(t, "refreshExpiresIn"); /* an absolute unix time */
	if(json_is_integer(v) && json_integer_value(v) > 0)
		out->refresh_expires_at = (int64_t)json_integer_value(v);
	if(auth_jwt_exp(out->access, &out->expires_at)) {
		v = json_object_get(json_object_get(t, "payload"), "exp");
		if(json_is_integer(v) && json_integer_value(v) > 0)
			out->expires_at = (int64_t)json_integer_value(v);
		else {
			log_warn("token_no_exp", "provider=kraken assumed_lifetime_s=%d", KRAKEN_LIFETIME_S);
			out->expires_at = now + KRAKEN_LIFETIME_S;
		}
	}
	out->obtained_at = now;
out:
	json_decref(root);
	if(resp.body)
		explicit_bzero(resp.body, resp.len); /* holds tokens */
	http_response_free(&resp);
	if(rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Refresh token first (cheap, and works while the API key is rotated);
 * the API key when the refresh token is refused or absent. A transport
 * failure is returned as is: the API key would meet the same network. */
static int kraken_refresh(struct auth *a, const struct store_token *held, struct store_token *out,
                          const char **method, int *calls, struct rp_err *err)
{
	const char *key = a->cfg->octopus_api_key;
	int64_t now = rtime_now();
	int rc;

	if(held->refresh[0] && (!held->refresh_expires_at || held->refresh_expires_at > now)) {
		*method = "refresh_token";
		rc = kraken_obtain(a, "refreshToken", held->refresh, out, calls, err);
		if(!rc || (rc != RP_EAUTH && rc != RP_EUPSTREAM && rc != RP_EPARSE))
			return rc;
		log_info("token_refresh_fallback", "provider=kraken reason=%s", rp_code_name(rc));
	}
	if(!key || !*key)
		return rp_err_set(err, RP_EINVAL, "no Octopus API key configured");
	*method = "api_key";
	return kraken_obtain(a, "APIKey", key, out, calls, err);
}

/* --- WattTime ------------------------------------------------------------ */

static int watttime_login(struct auth *a, struct store_token *out, int *calls, struct rp_err *err)
{
	struct http_retry_policy policy;
	struct http_request req;
	struct http_response resp = {0};
	char url[AUTH_URL_MAX];
	const char *accept[] = {"Accept: application/json", NULL};
	json_t *root = NULL;
	const char *token;
	int64_t now = rtime_now();
	int64_t exp;
	int n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	base_url(url, sizeof(url), a->cfg->watttime_url, DEFAULT_WATTTIME_URL, "/login");
	if(!*url)
		return rp_err_set(err, RP_EINVAL, "watttime_url is too long");
	token_request(a->cfg, &req);
	token_policy(a->cfg, &policy);
	req.url = url;
	req.basic_user = a->cfg->watttime_username;
	req.basic_password = a->cfg->watttime_password;
	req.headers = accept;
	rc = http_perform_retry(&req, &policy, &resp, &n, err);
	*calls += n;
	if(rc == RP_EAUTH || rc == RP_EFORBIDDEN) {
		/* WattTime answers bad credentials with 403 (nginx HTML). */
		rc = rp_err_set(err, RP_EAUTH, "WattTime refused the login (HTTP %ld)", resp.status);
		goto out;
	}
	if(rc)
		goto out;
	root = json_loadb(resp.body, resp.len, 0, NULL);
	token = json_string_value(json_object_get(root, "token"));
	if(!token_ok(token, sizeof(out->access))) {
		rc = rp_err_set(err, RP_EPARSE, "WattTime login answer has no usable token");
		goto out;
	}
	memcpy(out->access, token, strlen(token) + 1);
	/* 30 minutes after login, or sooner when the token says so. */
	out->expires_at = now + WATTTIME_LIFETIME_S;
	if(!auth_jwt_exp(out->access, &exp) && exp < out->expires_at)
		out->expires_at = exp;
	out->obtained_at = now;
out:
	json_decref(root);
	if(resp.body)
		explicit_bzero(resp.body, resp.len);
	http_response_free(&resp);
	if(rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* --- the manager ------------------------------------------------------------ */

static void forget_secrets(const struct store_token *tok)
{
	if(tok->access[0])
		log_remove_secret(tok->access);
	if(tok->refresh[0])
		log_remove_secret(tok->refresh);
}

static void remember_secrets(const struct store_token *tok)
{
	log_add_secret(tok->access);
	log_add_secret(tok->refresh);
}

int auth_new(struct auth **out, struct store *store, const struct config *cfg)
{
	struct auth *a;
	int k;

	*out = NULL;
	if(!cfg)
		return RP_EINVAL;
	a = calloc(1, sizeof(*a));
	if(!a)
		return RP_ENOMEM;
	a->store = store;
	a->cfg = cfg;
	for(k = 0; k < AUTH_KIND_COUNT; k++) {
		struct auth_cred *c = &a->cred[k];
		pthread_mutex_init(&c->mu, NULL);
		pthread_cond_init(&c->cv, NULL);
	}
	/* The store key names the credential without holding it: a new API
	 * key or password starts afresh instead of using another's token. */
	if(cfg->octopus_api_key && *cfg->octopus_api_key) {
		a->cred[AUTH_KRAKEN].configured = 1;
		auth_credential_key("kraken", cfg->octopus_api_key, a->cred[AUTH_KRAKEN].key);
		log_add_secret(cfg->octopus_api_key);
	}
	if(cfg->watttime_username && *cfg->watttime_username && cfg->watttime_password &&
	   *cfg->watttime_password) {
		struct sha256_ctx ctx;
		uint8_t d[SHA256_DIGEST_SIZE];
		char hex[SHA256_HEX_SIZE];
		/* user and password both name the credential; hash them
		 * first so no buffer ever holds "user:password" */
		sha256_init(&ctx);
		sha256_update(&ctx, cfg->watttime_username, strlen(cfg->watttime_username));
		sha256_update(&ctx, "\n", 1);
		sha256_update(&ctx, cfg->watttime_password, strlen(cfg->watttime_password));
		sha256_final(&ctx, d);
		hex_encode(d, hex);
		a->cred[AUTH_WATTTIME].configured = 1;
		auth_credential_key("watttime", hex, a->cred[AUTH_WATTTIME].key);
		log_add_secret(cfg->watttime_password);
	}
	for(k = 0; store && k < AUTH_KIND_COUNT; k++) {
		struct auth_cred *c = &a->cred[k];
		int rc;
		if(!c->configured)
			continue;
		rc = store_token_get(store, c->key, &c->tok);
		c->tok.access[sizeof(c->tok.access) - 1] = '\0';
		c->tok.refresh[sizeof(c->tok.refresh) - 1] = '\0';
		if(rc || !token_ok(c->tok.access, sizeof(c->tok.access))) {
			if(rc && rc != RP_ENOENT)
				log_warn("token_load_failed", "provider=%s code=%s",
				         kind_name((enum auth_kind)k), rp_code_name(rc));
			memset(&c->tok, 0, sizeof(c->tok));
			continue;
		}
		if(!token_ok(c->tok.refresh, sizeof(c->tok.refresh)))
			c->tok.refresh[0] = '\0';
		remember_secrets(&c->tok);
		log_info("token_loaded", "provider=%s expires_in=%lld", kind_name((enum auth_kind)k),
		         (long long)(c->tok.expires_at - rtime_now()));
	}
	*out = a;
	return 0;
}

void auth_free(struct auth *a)
{
	int k;

	if(!a)
		return;
	for(k = 0; k < AUTH_KIND_COUNT; k++) {
		pthread_mutex_destroy(&a->cred[k].mu);
		pthread_cond_destroy(&a->cred[k].cv);
	}
	explicit_bzero(a, sizeof(*a));
	free(a);
}

static int64_t margin_s(const struct auth *a)
{
	return a->cfg->token_refresh_margin_s > 0 ? a->cfg->token_refresh_margin_s : 0;
}

/* Runs one refresh of c (the caller set c->refreshing and does not hold
 * c->mu) and publishes the result to c and its waiters. err not NULL. */
static int refresh_cred(struct auth *a, enum auth_kind kind, struct auth_cred *c, int *calls,
                        struct rp_err *err)
{
	struct store_token *held = NULL;
	struct store_token *fresh = NULL;
	const char *method = "login";
	int rc;

	held = malloc(sizeof(*held));
	fresh = malloc(sizeof(*fresh));
	if(!held || !fresh) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		pthread_mutex_lock(&c->mu);
		goto publish;
	}
	pthread_mutex_lock(&c->mu);
	*held = c->tok;
	pthread_mutex_unlock(&c->mu);

	if(kind == AUTH_KRAKEN)
		rc = kraken_refresh(a, held, fresh, &method, calls, err);
	else
		rc = watttime_login(a, fresh, calls, err);
	if(!rc) {
		remember_secrets(fresh);
		if(a->store) {
			int src = store_token_put(a->store, c->key, fresh);
			if(src)
				log_warn("token_save_failed", "provider=%s code=%s", kind_name(kind),
				         rp_code_name(src));
		}
		log_info("token_refreshed", "provider=%s method=%s expires_in=%lld", kind_name(kind), method,
		         (long long)(fresh->expires_at - fresh->obtained_at));
	} else
		log_warn("token_refresh_failed", "provider=%s method=%s code=%s msg=\"%s\"", kind_name(kind),
		         method, rp_code_name(rc), err->msg);

	pthread_mutex_lock(&c->mu);
	if(!rc) {
		/* Tokens replaced stay secret until the replacement is in. */
		if(strcmp(c->tok.access, fresh->access))
			forget_secrets(&c->tok);
		c->tok = *fresh;
		c->refused = 0;
		c->refresh_count++;
		c->last_refresh = rtime_now();
	}
publish:
	c->last_rc = rc;
	c->last_err = *err;
	c->generation++;
	c->refreshing = 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if(held)
		explicit_bzero(held, sizeof(*held));
	if(fresh)
		explicit_bzero(fresh, sizeof(*fresh));
	free(held);
	free(fresh);
	return rc;
}

/* auth_token, also counting the HTTP requests this caller made. */
static int token_get(struct auth *a, enum auth_kind kind, char *out, size_t n, int *calls,
                     struct rp_err *err_out)
{
	struct rp_err local_err;
	struct rp_err *err = err_out ? err_out : &local_err;
	struct auth_cred *c;
	int after_refresh = 0;
	int rc = 0;

	if(!a || kind < 0 || kind >= AUTH_KIND_COUNT || !out || !n)
		return rp_err_set(err, RP_EINVAL, "bad arguments");
	out[0] = '\0';
	c = &a->cred[kind];
	if(!c->configured)
		return rp_err_set(err, RP_EINVAL, "no %s credential configured",
		                  kind == AUTH_KRAKEN ? "Octopus API key" : "WattTime username/password");

	pthread_mutex_lock(&c->mu);
	for(;;) {
		int64_t now = rtime_now();
		int usable = c->tok.access[0] && !c->refused;

		/* Right after a refresh, take what it gave even inside the
		 * margin (a lifetime shorter than the margin would otherwise
		 * refresh for ever). */
		if(usable && (after_refresh || c->tok.expires_at - margin_s(a) > now)) {
			size_t len = strlen(c->tok.access);
			if(len >= n)
				rc = rp_err_set(err, RP_ETOOLARGE, "token longer than the buffer");
			else
				memcpy(out, c->tok.access, len + 1);
			break;
		}
		if(after_refresh) {
			/* the refresh succeeded, yet the token was refused
			 * again meanwhile: report, never loop */
			rc = rp_err_set(err, RP_EAUTH, "%s token refused", kind_name(kind));
			break;
		}
		if(c->refreshing) {
			unsigned long gen = c->generation;
			while(c->refreshing && c->generation == gen)
				pthread_cond_wait(&c->cv, &c->mu);
			if(c->last_rc) {
				rc = c->last_rc;
				*err = c->last_err;
				break;
			}
			after_refresh = 1;
			continue;
		}
		c->refreshing = 1;
		pthread_mutex_unlock(&c->mu);
		rc = refresh_cred(a, kind, c, calls, err);
		pthread_mutex_lock(&c->mu);
		if(rc)
			break;
		after_refresh = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int auth_token(struct auth *a, enum auth_kind kind, char *out, size_t n, struct rp_err *err)
{
	int calls = 0;
	return token_get(a, kind, out, n, &calls, err);
}

void auth_invalidate(struct auth *a, enum auth_kind kind, const char *token)
{
	struct auth_cred *c;

	if(!a || kind < 0 || kind >= AUTH_KIND_COUNT || !token)
		return;
	c = &a->cred[kind];
	pthread_mutex_lock(&c->mu);
	/* Only the token the caller used: another thread may have replaced
	 * it already, and the replacement is good. */
	if(c->tok.access[0] && !strcmp(c->tok.access, token))
		c->refused = 1;
	pthread_mutex_unlock(&c->mu);
}

/* True when a WattTime 403 refuses the region (plan scope), not the token. */
static bool watttime_scope_refusal(const struct http_response *resp)
{
	return resp->body && !http_body_is_html(resp) && strstr(resp->body, "Invalid scope") != NULL;
}

int auth_perform(struct auth *a, enum auth_kind kind, struct http_request *req,
                 const struct http_retry_policy *policy, struct http_response *resp, int *attempts,
                 struct rp_err *err)
{
	char *token = NULL;
	int calls = 0;
	int try;
	int rc = 0;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	token = malloc(AUTH_TOKEN_MAX);
	if(!token) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		goto out;
	}
	for(try = 0; try < 2; try++) {
		int refused;
		int n = 0;

		if(try)
			http_response_free(resp);
		rc = token_get(a, kind, token, AUTH_TOKEN_MAX, &calls, err);
		if(rc)
			goto out;
		req->basic_user = NULL;
		req->basic_password = NULL;
		req->bearer = kind == AUTH_WATTTIME ? token : NULL;
		req->authorization = kind == AUTH_KRAKEN ? token : NULL; /* bare JWT, no "Bearer" */
		rc = http_perform_retry(req, policy, resp, &n, err);
		calls += n;

		refused = rc == RP_EAUTH;
		/* Kraken says "refused" inside a 200 GraphQL answer. */
		if(kind == AUTH_KRAKEN && !rc && kraken_answer_refuses_token(resp))
			refused = 1;
		/* WattTime answers an expired token with 403 as often as 401;
		 * one refresh tells the two cases apart. A region outside the
		 * plan says "Invalid scope": no token would change that. */
		if(kind == AUTH_WATTTIME && rc == RP_EFORBIDDEN && !try && !watttime_scope_refusal(resp))
			refused = 1;
		if(!refused)
			goto out;
		if(try) {
			rc = rp_err_set(err, RP_EAUTH,
			                "%s refused a freshly obtained token (HTTP %ld); not retrying",
			                kind_name(kind), resp->status);
			goto out;
		}
		log_info("token_refused", "provider=%s status=%ld action=refresh_and_retry", kind_name(kind),
		         resp->status);
		auth_invalidate(a, kind, token);
	}
out:
	/* req must not keep pointing at our buffer */
	req->bearer = NULL;
	req->authorization = NULL;
	if(token) {
		explicit_bzero(token, AUTH_TOKEN_MAX);
		free(token);
	}
	if(!resp->body)
		resp->body = calloc(1, 1);
	if(attempts)
		*attempts = calls;
	return rc;
}

void auth_stats_get(struct auth *a, enum auth_kind kind, struct auth_stats *out)
{
	struct auth_cred *c;

	memset(out, 0, sizeof(*out));
	if(!a || kind < 0 || kind >= AUTH_KIND_COUNT)
		return;
	c = &a->cred[kind];
	pthread_mutex_lock(&c->mu);
	out->refresh_count = c->refresh_count;
	out->last_refresh = c->last_refresh;
	out->expires_at = c->tok.access[0] ? c->tok.expires_at : 0;
	pthread_mutex_unlock(&c->mu);
}
