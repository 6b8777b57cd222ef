/* test_error.c - the error space: every code has a stable name and text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"

#include <ctype.h>
#include <string.h>

static void test_every_code_has_a_unique_snake_case_name(void **state)
{
	int a, b;
	const char *p;

	for(a = RP_ENOMEM; a < RP_ECODE_END; a++) {
		const char *name = rp_code_name(a);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown");
		assert_string_not_equal(name, "ok");
		for(p = name; *p; p++)
			assert_true(islower((unsigned char)*p) || *p == '_');
		assert_true(strlen(rp_strerror(a)) > 0);
		assert_string_not_equal(rp_strerror(a), "unknown error");
		for(b = RP_ENOMEM; b < a; b++)
			if(!strcmp(name, rp_code_name(b)))
				fail_msg("codes %d and %d are both \"%s\"", a, b, name);
	}
}

static void test_names_clients_rely_on(void **state)
{
	/* Published in MQTT replies and health (docs/topics.md): stable. */
	assert_string_equal(rp_code_name(0), "ok");
	assert_string_equal(rp_code_name(RP_EINVAL), "invalid");
	assert_string_equal(rp_code_name(RP_ETIMEOUT), "upstream_timeout");
	assert_string_equal(rp_code_name(RP_ENOTFOUND), "not_found");
	assert_string_equal(rp_code_name(RP_ERATELIMIT), "rate_limited");
	assert_string_equal(rp_code_name(RP_ESERVER), "upstream_error");
	assert_string_equal(rp_code_name(RP_EAUTH), "auth_failed");
	assert_string_equal(rp_strerror(0), "success");
}

static void test_unknown_codes_are_named_unknown(void **state)
{
	static const int odd[] = {1, -1, 42, RP_ENOMEM - 1, RP_ECODE_END, RP_ECODE_END + 5, -2147483647 - 1};
	size_t i;

	for(i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		assert_string_equal(rp_code_name(odd[i]), "unknown");
		assert_string_equal(rp_strerror(odd[i]), "unknown error");
	}
}

static void test_err_set_fills_and_returns_the_code(void **state)
{
	struct rp_err err;
	char long_text[600];

	rp_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_int_equal(err.retry_after, -1);
	assert_int_equal(err.http_status, 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(rp_err_set(&err, RP_EPARSE, "bad %s at %d", "json", 7), RP_EPARSE);
	assert_int_equal(err.code, RP_EPARSE);
	assert_string_equal(err.msg, "bad json at 7");
	/* NULL err: only the code comes back. */
	assert_int_equal(rp_err_set(NULL, RP_EIO, "ignored %d", 1), RP_EIO);
	rp_err_clear(NULL);
	/* A long message is cut, and terminated. */
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	rp_err_set(&err, RP_EUPSTREAM, "%s", long_text);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_code_has_a_unique_snake_case_name),
	        cmocka_unit_test(test_names_clients_rely_on),
	        cmocka_unit_test(test_unknown_codes_are_named_unknown),
	        cmocka_unit_test(test_err_set_fills_and_returns_the_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
