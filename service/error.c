/* error.c - texts and names of ratepool's error codes. */
#include "ratepool/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct code_text {
	const char *name;
	const char *text;
};

static const struct code_text texts[] = {
        [0] = {"ok", "success"},
        [RP_ENOMEM - RP_ENOMEM + 1] = {"out_of_memory", "out of memory"},
        [RP_EINVAL - RP_ENOMEM + 1] = {"invalid", "invalid argument"},
        [RP_ENET - RP_ENOMEM + 1] = {"upstream_unreachable", "network error"},
        [RP_ETIMEOUT - RP_ENOMEM + 1] = {"upstream_timeout", "timed out"},
        [RP_EAUTH - RP_ENOMEM + 1] = {"auth_failed", "authentication failed"},
        [RP_EFORBIDDEN - RP_ENOMEM + 1] = {"forbidden", "access forbidden"},
        [RP_ENOTFOUND - RP_ENOMEM + 1] = {"not_found", "not found"},
        [RP_ERATELIMIT - RP_ENOMEM + 1] = {"rate_limited", "rate limited by upstream"},
        [RP_ESERVER - RP_ENOMEM + 1] = {"upstream_error", "upstream server error"},
        [RP_ETOOLARGE - RP_ENOMEM + 1] = {"too_large", "response too large"},
        [RP_EPARSE - RP_ENOMEM + 1] = {"bad_response", "unparsable response"},
        [RP_EGARBAGE - RP_ENOMEM + 1] = {"bad_data", "response data is invalid"},
        [RP_EUPSTREAM - RP_ENOMEM + 1] = {"upstream_refused", "upstream refused the request"},
        [RP_ESTORE - RP_ENOMEM + 1] = {"store_error", "store error"},
        [RP_EFULL - RP_ENOMEM + 1] = {"store_full", "store full"},
        [RP_ESCHEMA - RP_ENOMEM + 1] = {"store_schema", "store has an unknown schema version"},
        [RP_ECORRUPT - RP_ENOMEM + 1] = {"store_corrupt", "store file is damaged"},
        [RP_EBUSY - RP_ENOMEM + 1] = {"busy", "busy"},
        [RP_ENOENT - RP_ENOMEM + 1] = {"no_entry", "no such entry"},
        [RP_EIO - RP_ENOMEM + 1] = {"io_error", "input/output error"},
        [RP_EUNAVAILABLE - RP_ENOMEM + 1] = {"upstream_unavailable", "upstream unavailable and nothing held"},
        [RP_ELIMIT - RP_ENOMEM + 1] = {"too_many_series", "too many new series"},
};

static const struct code_text *lookup(int code)
{
	static const struct code_text unknown = {"unknown", "unknown error"};
	size_t i;

	if(code == 0)
		return &texts[0];
	if(code < RP_ENOMEM || code >= RP_ECODE_END)
		return &unknown;
	i = (size_t)(code - RP_ENOMEM + 1);
	return texts[i].name ? &texts[i] : &unknown;
}

const char *rp_strerror(int code)
{
	return lookup(code)->text;
}

const char *rp_code_name(int code)
{
	return lookup(code)->name;
}

int rp_err_set(struct rp_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if(!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void rp_err_clear(struct rp_err *err)
{
	if(!err)
		return;
	memset(err, 0, sizeof(*err));
	err->retry_after = -1;
}
