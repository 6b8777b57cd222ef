/*
 * fuzz_jwt.c - auth_jwt_exp on hostile tokens (a Kraken answer's
 * `token`). Seeds: tests/fuzz/seeds/jwt/.
 */
#include "fuzz.h"
#include "ratepool/auth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *jwt = fuzz_strndup(data, size);
	int64_t exp = -1;

	if(!jwt)
		return 0;
	if(auth_jwt_exp(jwt, &exp) == 0 && exp <= 0)
		abort(); /* an expiry must be a positive instant */
	free(jwt);
	return 0;
}
