/* test_series.c - series ids: the one rule that keeps topics safe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"
#include "ratepool/series.h"

#include <string.h>

static void test_valid_ids(void **state)
{
	char max[SERIES_ID_MAX + 1];

	memset(max, 'a', SERIES_ID_MAX);
	max[SERIES_ID_MAX] = '\0';
	assert_true(series_id_valid("E-1R-AGILE-24-10-01-C"));
	assert_true(series_id_valid("DE-LU"));
	assert_true(series_id_valid("CAISO_NORTH"));
	assert_true(series_id_valid("NSW1"));
	assert_true(series_id_valid("96a14971-525a-4420-aae9-e5aedaa129ff"));
	assert_true(series_id_valid("a.b_c-D.9"));
	assert_true(series_id_valid("x"));
	assert_true(series_id_valid(".."));
	assert_true(series_id_valid(max));
}

static void test_invalid_ids(void **state)
{
	static const char *bad[] = {
	        "",  "a/b", "/",   "+",    "#",  "a+",   "a#",   "octopus/E-1R", "a b", " a",  "a\n", "a\t",
	        "é", "a:b", "a,b", "$SYS", "a*", "a\\b", "\x7f", "a\x01b",       "%2F", "a?b", "a=b",
	};
	char long_id[SERIES_ID_MAX + 2];
	size_t i;

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if(series_id_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(series_id_valid(NULL));
	memset(long_id, 'a', SERIES_ID_MAX + 1);
	long_id[SERIES_ID_MAX + 1] = '\0'; /* 65 characters */
	assert_false(series_id_valid(long_id));
}

static void test_valid_n_checks_exactly_len_bytes(void **state)
{
	/* A NUL inside the counted bytes is refused: an MQTT topic may carry
	 * one, and it must not cut the id short. */
	assert_false(series_id_valid_n("ab\0cd", 5));
	assert_false(series_id_valid_n("\0", 1));
	assert_true(series_id_valid_n("ab\0cd", 2));
	assert_true(series_id_valid_n("abc/def", 3));
	assert_false(series_id_valid_n("abc/def", 4));
	assert_false(series_id_valid_n("abc", 0));
	assert_false(series_id_valid_n(NULL, 3));

	char buf[SERIES_ID_MAX + 1];
	memset(buf, 'z', sizeof(buf)); /* not terminated */
	assert_true(series_id_valid_n(buf, SERIES_ID_MAX));
	assert_false(series_id_valid_n(buf, SERIES_ID_MAX + 1));
}

static void test_ref_parse_splits_provider_and_id(void **state)
{
	struct series_ref ref;

	assert_int_equal(series_ref_parse("octopus/E-1R-AGILE-24-10-01-C", &ref), 0);
	assert_string_equal(ref.provider, "octopus");
	assert_string_equal(ref.id, "E-1R-AGILE-24-10-01-C");
	assert_int_equal(series_ref_parse("energycharts/DE-LU", &ref), 0);
	assert_string_equal(ref.provider, "energycharts");
	assert_string_equal(ref.id, "DE-LU");
	/* Longest provider (15) and id (64). */
	assert_int_equal(series_ref_parse("abcdefghijklmno/"
	                                  "0123456789012345678901234567890123456789012345678901234567890123",
	                                  &ref),
	                 0);
	assert_int_equal(strlen(ref.provider), PROVIDER_ID_MAX);
	assert_int_equal(strlen(ref.id), SERIES_ID_MAX);
}

static void test_ref_parse_refuses_bad_text(void **state)
{
	static const char *bad[] = {
	        "",
	        "octopus",
	        "/E-1R",
	        "octopus/",
	        "octopus/a/b",
	        "octopus/+",
	        "octopus/#",
	        "oct+opus/a",
	        "oct#/a",
	        "abcdefghijklmnop/a", /* provider of 16 */
	        "octopus/0123456789012345678901234567890123456789012345678901234567890123x",
	        "octopus /a",
	        "octopus/a ",
	        "/",
	        "//",
	};
	struct series_ref ref;
	size_t i;

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ref, 0x55, sizeof(ref));
		if(series_ref_parse(bad[i], &ref) != RP_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(series_ref_parse(NULL, &ref), RP_EINVAL);
}

static void test_ref_set_checks_both_parts(void **state)
{
	struct series_ref ref;

	assert_int_equal(series_ref_set(&ref, "aemo", "NSW1"), 0);
	assert_string_equal(ref.provider, "aemo");
	assert_string_equal(ref.id, "NSW1");
	assert_int_equal(series_ref_set(&ref, "aemo", "NSW1/x"), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, "ae/mo", "NSW1"), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, "", "NSW1"), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, "aemo", ""), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, "abcdefghijklmnop", "NSW1"), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, NULL, "NSW1"), RP_EINVAL);
	assert_int_equal(series_ref_set(&ref, "aemo", NULL), RP_EINVAL);
	/* Unchanged after the refusals. */
	assert_string_equal(ref.provider, "aemo");
	assert_string_equal(ref.id, "NSW1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_valid_ids),
	        cmocka_unit_test(test_invalid_ids),
	        cmocka_unit_test(test_valid_n_checks_exactly_len_bytes),
	        cmocka_unit_test(test_ref_parse_splits_provider_and_id),
	        cmocka_unit_test(test_ref_parse_refuses_bad_text),
	        cmocka_unit_test(test_ref_set_checks_both_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
