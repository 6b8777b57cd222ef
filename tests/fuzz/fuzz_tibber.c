/*
 * fuzz_tibber.c - tibber_parse_prices on hostile GraphQL answers.
 * Seeds: tests/data/tibber/.
 */
#include "fuzz.h"
#include "ratepool/tibber.h"

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
	rc = tibber_parse_prices((const char *)data, size, "96a14971-525a-4420-aae9-e5aedaa129ff", FUZZ_FROM,
	                         FUZZ_TO, &out, &err);
	if(rc == 0 && out.n && slot_list_validate(&out, TIBBER_MAX_ABS, &err) != 0)
		abort(); /* accepted slots that overlap, are unordered or absurd */
	if(rc != 0 && out.n != 0)
		abort(); /* "On error out is left as it was" (empty here) */
	slot_list_free(&out);
	return 0;
}
