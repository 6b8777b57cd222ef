/*
 * provider.c - the provider registry and the one fetch entry point that
 * sorts, validates and counts what a provider's client returns.
 */
#include "ratepool/provider.h"
#include "ratepool/config.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"

#include <stdio.h>
#include <string.h>

extern const struct provider provider_octopus;
extern const struct provider provider_tibber;
extern const struct provider provider_watttime;
extern const struct provider provider_aemo;
extern const struct provider provider_energycharts;

static const struct provider *const providers[] = {
        &provider_octopus, &provider_tibber, &provider_watttime, &provider_aemo, &provider_energycharts, NULL,
};

const struct provider *provider_find(const char *id)
{
	size_t i;

	if(!id)
		return NULL;
	for(i = 0; providers[i]; i++)
		if(!strcmp(providers[i]->id, id))
			return providers[i];
	return NULL;
}

const struct provider *const *provider_all(void)
{
	return providers;
}

void provider_result_init(struct provider_result *res)
{
	memset(res, 0, sizeof(*res));
	slot_list_init(&res->slots);
}

void provider_result_free(struct provider_result *res)
{
	slot_list_free(&res->slots);
	provider_result_init(res);
}

int provider_fetch(const struct provider *p, const struct provider_ctx *ctx, const char *id, int64_t from,
                   int64_t to, struct provider_result *res, struct rp_err *err)
{
	char tf[RTIME_TEXT_SIZE], tt[RTIME_TEXT_SIZE];
	int64_t started = rtime_now_ms();
	int rc;

	slot_list_clear(&res->slots);
	res->slots.unit[0] = '\0';
	res->upstream_calls = 0;
	res->source[0] = '\0';
	res->fetched_at = rtime_now();
	if(!p || !p->fetch || !ctx)
		return rp_err_set(err, RP_EINVAL, "no such provider");
	if(!series_id_valid(id))
		return rp_err_set(err, RP_EINVAL, "series id must match [A-Za-z0-9._-]{1,64}");
	if(from >= to)
		return rp_err_set(err, RP_EINVAL, "empty range: from must be before to");
	rc = p->fetch(ctx, id, from, to, res, err);
	if(!rc) {
		if(!res->slots.unit[0])
			snprintf(res->slots.unit, sizeof(res->slots.unit), "%s", p->unit);
		if(!res->source[0])
			snprintf(res->source, sizeof(res->source), "%s", p->id);
		slot_list_sort(&res->slots);
		rc = slot_list_validate(&res->slots, p->max_abs, err);
	} else if(err && !err->msg[0])
		rp_err_set(err, rc, "%s", rp_strerror(rc));
	rtime_format(from, tf);
	rtime_format(to, tt);
	if(rc) {
		slot_list_clear(&res->slots);
		log_warn("fetch_failed", "provider=%s series=%s from=%s to=%s calls=%d code=%s msg=\"%s\"",
		         p->id, id, tf, tt, res->upstream_calls, rp_code_name(rc), err ? err->msg : "");
		return rc;
	}
	log_info("fetch_done", "provider=%s series=%s from=%s to=%s slots=%zu calls=%d ms=%lld", p->id, id,
	         tf, tt, res->slots.n, res->upstream_calls, (long long)(rtime_now_ms() - started));
	return 0;
}

void provider_retry_policy(const struct config *cfg, struct http_retry_policy *out)
{
	out->max_attempts = 4;
	out->base_ms = 500;
	out->cap_ms = 30000;
	/* A longer Retry-After is not slept through inside one fetch: the
	 * error goes back with retry_after set and the scheduler waits. */
	out->max_retry_after_s = 60;
	if(!cfg)
		return;
	if(cfg->retry_max_attempts >= 1)
		out->max_attempts = cfg->retry_max_attempts;
	if(cfg->retry_base_ms > 0)
		out->base_ms = cfg->retry_base_ms;
	if(cfg->retry_cap_ms > 0)
		out->cap_ms = cfg->retry_cap_ms;
	if(out->cap_ms < out->base_ms)
		out->cap_ms = out->base_ms;
}

int64_t provider_earliest(const struct provider *p, int64_t now)
{
	if(p->revisable)
		return now;
	switch(p->history) {
	case PROVIDER_HISTORY_TODAY:
		return rtime_day_start(p->zone, now);
	case PROVIDER_HISTORY_ROLLING:
		return now - p->history_s;
	case PROVIDER_HISTORY_ALL:
	default:
		return INT64_MIN;
	}
}
