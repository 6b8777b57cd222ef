/*
 * fuzz_aemo.c - aemo_parse_5min on hostile 5MIN reports. Seeds:
 * tests/data/aemo/.
 */
#include "fuzz.h"
#include "ratepool/aemo.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slot_list out;
	struct rp_err err;
	int rc;

	slot_list_init(&out);
	rp_err_clear(&err);
	rc = aemo_parse_5min((const char *)data, size, "NSW1", FUZZ_FROM, FUZZ_TO, &out, &err);
	if(rc == 0 && out.n && slot_list_validate(&out, AEMO_MAX_ABS, &err) != 0)
		abort();
	if(rc != 0 && out.n != 0)
		abort(); /* "On error out is empty" */
	slot_list_free(&out);
	return 0;
}
