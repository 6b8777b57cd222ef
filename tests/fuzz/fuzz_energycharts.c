/*
 * fuzz_energycharts.c - energycharts_parse on hostile /price answers.
 * Seeds: tests/data/energycharts/.
 */
#include "fuzz.h"
#include "ratepool/energycharts.h"

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
	rc = energycharts_parse((const char *)data, size, FUZZ_FROM, FUZZ_TO, &out, &err);
	if(rc == 0 && out.n && slot_list_validate(&out, ENERGYCHARTS_MAX_ABS, &err) != 0)
		abort();
	if(rc != 0 && out.n != 0)
		abort(); /* "On error out is empty" */
	slot_list_free(&out);
	return 0;
}
