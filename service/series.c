/* series.c - series id rules. */
#include "ratepool/series.h"
#include "ratepool/error.h"

#include <string.h>

bool series_id_valid_n(const char *id, size_t len)
{
	size_t i;

	if(!id || len == 0 || len > SERIES_ID_MAX)
		return false;
	for(i = 0; i < len; i++) {
		char c = id[i];
		if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		     c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool series_id_valid(const char *id)
{
	return id && series_id_valid_n(id, strnlen(id, SERIES_ID_MAX + 1));
}

int series_ref_set(struct series_ref *out, const char *provider, const char *id)
{
	size_t plen;

	if(!provider || !id)
		return RP_EINVAL;
	plen = strnlen(provider, PROVIDER_ID_MAX + 1);
	if(!series_id_valid_n(provider, plen) || plen > PROVIDER_ID_MAX || !series_id_valid(id))
		return RP_EINVAL;
	memcpy(out->provider, provider, plen + 1);
	memcpy(out->id, id, strlen(id) + 1);
	return 0;
}

int series_ref_parse(const char *text, struct series_ref *out)
{
	const char *slash;
	size_t plen;

	if(!text)
		return RP_EINVAL;
	slash = strchr(text, '/');
	if(!slash)
		return RP_EINVAL;
	plen = (size_t)(slash - text);
	if(plen > PROVIDER_ID_MAX || !series_id_valid_n(text, plen) || !series_id_valid(slash + 1))
		return RP_EINVAL;
	memcpy(out->provider, text, plen);
	out->provider[plen] = '\0';
	memcpy(out->id, slash + 1, strlen(slash + 1) + 1);
	return 0;
}
