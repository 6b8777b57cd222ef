/*
 * auth.h - upstream tokens: Octopus Kraken JWTs and WattTime tokens.
 *
 * Tokens live in the store (store_token_*) under a key that is a SHA-256
 * of the provider and credential, so they survive restarts without the
 * secret ever being written. A token is refreshed `margin` seconds before
 * its expiry (from the JWT `exp` claim for Kraken; 30 minutes after login
 * for WattTime). Concurrent callers needing a refresh of one credential
 * wait for a single refresh. Every refresh is counted per provider.
 * Tokens and secrets are registered with log_add_secret() and never
 * logged or published.
 */
#ifndef RATEPOOL_AUTH_H
#define RATEPOOL_AUTH_H

#include "ratepool/error.h"
#include "ratepool/http.h"

#include <stddef.h>
#include <stdint.h>

struct store;
struct config;
struct auth;

enum auth_kind { AUTH_KRAKEN, AUTH_WATTTIME, AUTH_KIND_COUNT };

#define AUTH_TOKEN_MAX 4096

/* Creates the token manager. Borrows store and cfg, which must outlive it.
 * store may be NULL (tokens then live in memory only). */
int auth_new(struct auth **out, struct store *store, const struct config *cfg);
void auth_free(struct auth *a);

/* Copies a valid access token into out (size n), refreshing it first when
 * missing or within the margin of expiry: Kraken by refresh token, then by
 * API key when that fails; WattTime by login. Returns 0, RP_EINVAL (no
 * credential configured), RP_EAUTH (credential refused), or a transport
 * class from http.h. */
int auth_token(struct auth *a, enum auth_kind kind, char *out, size_t n, struct rp_err *err);

/* Marks `token` as refused (after a 401 or Kraken KT-CT-1139/1111/1143):
 * the next auth_token() call refreshes, unless another caller already
 * replaced it. */
void auth_invalidate(struct auth *a, enum auth_kind kind, const char *token);

/* Performs req with the current token of `kind` attached (WattTime:
 * "Authorization: Bearer <token>"; Kraken: "Authorization: <jwt>"), using
 * the retry policy. On RP_EAUTH, or a Kraken GraphQL answer whose errors
 * carry KT-CT-1139, KT-CT-1111 or KT-CT-1143, it invalidates the token,
 * refreshes it and retries once; a second auth failure returns RP_EAUTH
 * (reported, not looped). Also treated as a refused token, once: the
 * expired-JWT codes KT-CT-1124/1120, and a WattTime 403 (WattTime answers
 * an expired token with 403 as often as 401); a 403 that survives the
 * fresh token is returned as RP_EFORBIDDEN. `attempts` (may be NULL) gets
 * every HTTP request made, token requests included. req's auth fields are
 * overwritten, and left NULL on return. */
int auth_perform(struct auth *a, enum auth_kind kind, struct http_request *req,
                 const struct http_retry_policy *policy, struct http_response *resp, int *attempts,
                 struct rp_err *err);

struct auth_stats {
	unsigned long refresh_count;
	int64_t last_refresh; /* 0: never */
	int64_t expires_at;   /* of the token held, 0 when none */
};
void auth_stats_get(struct auth *a, enum auth_kind kind, struct auth_stats *out);

/* Decodes the payload of a JWT (base64url, no signature check) and gives
 * its `exp`. Returns 0 or RP_EPARSE. */
int auth_jwt_exp(const char *jwt, int64_t *exp);

/* Hex SHA-256 of `provider` ":" `credential` into out (65 bytes). */
void auth_credential_key(const char *provider, const char *credential, char out[65]);

#endif
