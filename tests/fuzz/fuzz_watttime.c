/*
 * fuzz_watttime.c - watttime_parse_forecast and watttime_explain_error on
 * hostile /v3/forecast answers. Seeds: tests/data/watttime/.
 */
#include "fuzz.h"
#include "ratepool/watttime.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {400, 401, 403, 404, 422};
	struct slot_list out;
	struct rp_err err;
	int rc;

	slot_list_init(&out);
	rp_err_clear(&err);
	rc = watttime_parse_forecast((const char *)data, size, "CAISO_NORTH", "co2_moer", FUZZ_FROM, FUZZ_TO,
	                             &out, &err);
	if(rc == 0 && out.n && slot_list_validate(&out, WATTTIME_MAX_ABS, &err) != 0)
		abort();
	if(rc != 0 && out.n != 0)
		abort(); /* "On error out is empty" */
	/* Unchecked region and signal: other paths. */
	watttime_parse_forecast((const char *)data, size, NULL, NULL, FUZZ_FROM, FUZZ_TO, &out, &err);
	slot_list_free(&out);

	rp_err_clear(&err);
	watttime_explain_error(RP_EUPSTREAM, statuses[size % 5], (const char *)data, size, "CAISO_NORTH",
	                       "co2_moer", &err);
	if(!memchr(err.msg, '\0', sizeof(err.msg)))
		abort();
	return 0;
}
