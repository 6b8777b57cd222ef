/*
 * error.h - ratepool's one error space.
 *
 * Every fallible function in ratepool returns an int: 0 on success or one
 * of the negative RP_E* codes below. Library codes (LMDB, curl, paho,
 * jansson) are converted to these at the one module that wraps the library
 * and logged there once. Where a caller needs a human message as well, it
 * passes a struct rp_err that the callee fills.
 */
#ifndef RATEPOOL_ERROR_H
#define RATEPOOL_ERROR_H

#include <stddef.h>

enum rp_code {
	RP_OK = 0,
	RP_ENOMEM = -1000, /* allocation failed */
	RP_EINVAL,         /* bad argument, bad setting, bad request */
	RP_ENET,           /* connection refused/reset, DNS, TLS */
	RP_ETIMEOUT,       /* connect or total timeout */
	RP_EAUTH,          /* 401, or a Kraken auth error code */
	RP_EFORBIDDEN,     /* 403 (also a CDN's HTML error page) */
	RP_ENOTFOUND,      /* 404, unknown series */
	RP_ERATELIMIT,     /* 429 */
	RP_ESERVER,        /* 5xx */
	RP_ETOOLARGE,      /* body over the cap */
	RP_EPARSE,         /* not JSON / not the expected shape */
	RP_EGARBAGE,       /* parsed, but the data lies (NaN, overlaps, ...) */
	RP_EUPSTREAM,      /* any other upstream error (400, GraphQL error) */
	RP_ESTORE,         /* LMDB error other than those below */
	RP_EFULL,          /* store at its size bound / disk full */
	RP_ESCHEMA,        /* store written by an unknown/newer version */
	RP_ECORRUPT,       /* store file damaged */
	RP_EBUSY,          /* lease held by someone else, queue full */
	RP_ENOENT,         /* no such record */
	RP_EIO,            /* other system error */
	RP_EUNAVAILABLE,   /* upstream failing; nothing held to serve */
	RP_ELIMIT,         /* a client-protection limit was hit */
	RP_ECODE_END
};

/* A code plus a human message that is safe to show a user (never holds a
 * secret). `retry_after` is seconds the upstream asked us to wait (429 or
 * 503 with Retry-After), or -1. */
struct rp_err {
	int code;
	int http_status;
	long retry_after;
	char msg[256];
};

/* Static English text for a code; never NULL. */
const char *rp_strerror(int code);

/* Stable snake_case identifier of a code, used as `error.code` in MQTT
 * replies and in health (`upstream_timeout`, `not_found`, ...). */
const char *rp_code_name(int code);

/* Sets err (when not NULL) to code with a printf-style message and returns
 * code, so that `return rp_err_set(err, RP_EPARSE, "...")` reads well. */
int rp_err_set(struct rp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err to RP_OK with an empty message and retry_after -1. */
void rp_err_clear(struct rp_err *err);

#endif
