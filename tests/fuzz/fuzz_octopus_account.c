/*
 * fuzz_octopus_account.c - octopus_parse_account on hostile
 * /v1/accounts/{number}/ bodies. Seeds: tests/data/octopus/.
 */
#include "fuzz.h"
#include "ratepool/octopus.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct octopus_agreement ag[OCTOPUS_MAX_AGREEMENTS];
	struct rp_err err;
	size_t n = 0, i;
	int rc;

	rp_err_clear(&err);
	rc = octopus_parse_account((const char *)data, size, ag, OCTOPUS_MAX_AGREEMENTS, &n, &err);
	if(rc == 0) {
		if(n > OCTOPUS_MAX_AGREEMENTS)
			abort();
		for(i = 0; i < n; i++)
			if(!memchr(ag[i].tariff_code, '\0', sizeof(ag[i].tariff_code)) ||
			   ag[i].from >= ag[i].to)
				abort(); /* unterminated code or an empty agreement kept */
	}
	/* A small array: the "more than max" path. */
	octopus_parse_account((const char *)data, size, ag, 2, &n, &err);
	return 0;
}
