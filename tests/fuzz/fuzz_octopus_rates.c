/*
 * fuzz_octopus_rates.c - octopus_parse_rates (one standard-unit-rates
 * page, then the rows-to-slots conversion) on hostile bodies. Seeds:
 * tests/data/octopus/.
 */
#include "fuzz.h"
#include "ratepool/octopus.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slot_list out;
	struct rp_err err;
	size_t i;
	int rc;

	slot_list_init(&out);
	rp_err_clear(&err);
	/* A realistic three-day range (what the scheduler asks for) and the
	 * widest one, where open-ended rows are split into many days. */
	rc = octopus_parse_rates((const char *)data, size, INT64_C(1795132800), INT64_C(1795392000), &out,
	                         &err);
	/* Ordered and not overlapping. (Slot lengths are not checked here:
	 * a row ending off the minute is passed on and refused by the
	 * slot_list_validate() in provider_fetch, which every fetch runs.) */
	for(i = 0; rc == 0 && i < out.n; i++)
		if(out.v[i].end <= out.v[i].start || (i && out.v[i].start < out.v[i - 1].end) ||
		   !isfinite(out.v[i].value))
			abort();
	slot_list_free(&out);
	slot_list_init(&out);
	octopus_parse_rates((const char *)data, size, FUZZ_FROM, FUZZ_TO, &out, &err);
	slot_list_free(&out);
	return 0;
}
