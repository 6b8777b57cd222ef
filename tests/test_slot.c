/* test_slot.c - slot lists: growth and its cap, stable sorting, validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"
#include "ratepool/slot.h"

#include <math.h>
#include <string.h>

#define T0 1795262400 /* 2026-11-21T12:00:00Z */
#define HH 1800

static void list_with_unit(struct slot_list *l)
{
	slot_list_init(l);
	memcpy(l->unit, "GBP/kWh", sizeof("GBP/kWh"));
}

/* n contiguous half-hours from T0 with values 0.10, 0.11, ... */
static void fill(struct slot_list *l, int n)
{
	int i;
	for(i = 0; i < n; i++)
		assert_int_equal(slot_list_push(l, T0 + (int64_t)i * HH, T0 + (int64_t)(i + 1) * HH,
		                                0.10 + i * 0.01, NAN),
		                 0);
}

static void test_push_grows_and_keeps_values(void **state)
{
	struct slot_list l;

	list_with_unit(&l);
	assert_int_equal(l.n, 0);
	fill(&l, 1000);
	assert_int_equal(l.n, 1000);
	assert_true(l.cap >= 1000);
	assert_int_equal(l.v[0].start, T0);
	assert_int_equal(l.v[999].end, T0 + 1000 * HH);
	assert_true(fabs(l.v[999].value - (0.10 + 999 * 0.01)) < 1e-12);
	assert_true(isnan(l.v[0].value_exc_vat));
	slot_list_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.cap, 0);
}

static void test_push_stops_at_slot_list_max(void **state)
{
	struct slot_list l;
	size_t i;

	list_with_unit(&l);
	for(i = 0; i < SLOT_LIST_MAX; i++)
		assert_int_equal(
		        slot_list_push(&l, T0 + (int64_t)i * 300, T0 + (int64_t)(i + 1) * 300, 1.0, 0.9), 0);
	assert_int_equal(l.n, SLOT_LIST_MAX);
	assert_int_equal(slot_list_push(&l, T0 - 300, T0, 1.0, NAN), RP_ETOOLARGE);
	assert_int_equal(slot_list_push(&l, T0 - 600, T0 - 300, 1.0, NAN), RP_ETOOLARGE);
	assert_int_equal(l.n, SLOT_LIST_MAX);
	assert_true(l.cap <= SLOT_LIST_MAX);
	assert_int_equal(slot_list_validate(&l, 10.0, NULL), 0);
	slot_list_free(&l);
}

static void test_clear_keeps_memory_and_list_is_reusable(void **state)
{
	struct slot_list l;
	struct slot *v;
	size_t cap;

	list_with_unit(&l);
	fill(&l, 100);
	v = l.v;
	cap = l.cap;
	slot_list_clear(&l);
	assert_int_equal(l.n, 0);
	assert_ptr_equal(l.v, v);
	assert_int_equal(l.cap, cap);
	assert_string_equal(l.unit, "GBP/kWh");
	fill(&l, 3);
	assert_int_equal(l.n, 3);
	slot_list_free(&l);
	slot_list_free(&l); /* freeing twice is harmless: the list is empty */
	fill(&l, 2);
	assert_int_equal(l.n, 2);
	slot_list_free(&l);
}

static void test_sort_orders_newest_first_answers(void **state)
{
	struct slot_list l;
	int i;

	list_with_unit(&l);
	/* Octopus pages newest first. */
	for(i = 99; i >= 0; i--)
		assert_int_equal(slot_list_push(&l, T0 + (int64_t)i * HH, T0 + (int64_t)(i + 1) * HH, i, NAN),
		                 0);
	slot_list_sort(&l);
	for(i = 0; i < 100; i++) {
		assert_int_equal(l.v[i].start, T0 + (int64_t)i * HH);
		assert_true(l.v[i].value == i);
	}
	assert_int_equal(slot_list_validate(&l, 1000.0, NULL), 0);
	slot_list_free(&l);
}

static void test_sort_is_stable_for_equal_starts(void **state)
{
	struct slot_list l;
	int i;

	list_with_unit(&l);
	/* 500 slots over 5 starts, in a scrambled order; the values record
	 * the order of arrival, which must survive within each start. */
	for(i = 0; i < 500; i++) {
		int64_t start = T0 + (int64_t)((i * 7) % 5) * HH;
		assert_int_equal(slot_list_push(&l, start, start + HH, i, NAN), 0);
	}
	slot_list_sort(&l);
	for(i = 1; i < 500; i++) {
		assert_true(l.v[i - 1].start <= l.v[i].start);
		if(l.v[i - 1].start == l.v[i].start)
			assert_true(l.v[i - 1].value < l.v[i].value);
	}
	/* Equal starts with different ends: shorter first. */
	slot_list_clear(&l);
	assert_int_equal(slot_list_push(&l, T0, T0 + 3600, 1, NAN), 0);
	assert_int_equal(slot_list_push(&l, T0, T0 + 900, 2, NAN), 0);
	slot_list_sort(&l);
	assert_int_equal(l.v[0].end, T0 + 900);
	/* Empty and single lists are fine. */
	slot_list_clear(&l);
	slot_list_sort(&l);
	assert_int_equal(slot_list_push(&l, T0, T0 + HH, 1, NAN), 0);
	slot_list_sort(&l);
	assert_int_equal(l.n, 1);
	slot_list_free(&l);
}

static void test_validate_accepts_a_good_answer(void **state)
{
	struct slot_list l;
	struct rp_err err;

	list_with_unit(&l);
	rp_err_clear(&err);
	assert_int_equal(slot_list_validate(&l, 10.0, &err), 0); /* empty is valid */
	fill(&l, 48);
	/* Negative prices happen (Agile plunge pricing); gaps are allowed;
	 * a value exactly at the bound is believable. */
	assert_int_equal(slot_list_push(&l, T0 + 50 * HH, T0 + 51 * HH, -0.05, -0.0476), 0);
	assert_int_equal(slot_list_push(&l, T0 + 51 * HH, T0 + 51 * HH + 300, 10.0, NAN), 0);
	assert_int_equal(slot_list_push(&l, T0 + 52 * HH, T0 + 52 * HH + 86400, 1.0, NAN), 0);
	assert_int_equal(slot_list_validate(&l, 10.0, &err), 0);
	assert_int_equal(err.code, 0);
	slot_list_free(&l);
}

/* One bad slot appended to a good list must be refused with RP_EGARBAGE
 * and a message naming the slot. */
static void assert_refused(int64_t start, int64_t end, double value, double exc, const char *words)
{
	struct slot_list l;
	struct rp_err err;

	list_with_unit(&l);
	fill(&l, 4);
	assert_int_equal(slot_list_push(&l, start, end, value, exc), 0);
	rp_err_clear(&err);
	assert_int_equal(slot_list_validate(&l, 10.0, &err), RP_EGARBAGE);
	assert_int_equal(err.code, RP_EGARBAGE);
	if(!strstr(err.msg, "slot 4") || !strstr(err.msg, words))
		fail_msg("message \"%s\" lacks \"slot 4\" or \"%s\"", err.msg, words);
	assert_int_equal(slot_list_validate(&l, 10.0, NULL), RP_EGARBAGE);
	slot_list_free(&l);
}

static void test_validate_refuses_each_kind_of_garbage(void **state)
{
	int64_t after = T0 + 4 * HH;

	assert_refused(after, after + HH, NAN, NAN, "absurd value");
	assert_refused(after, after + HH, INFINITY, NAN, "absurd value");
	assert_refused(after, after + HH, -INFINITY, NAN, "absurd value");
	assert_refused(after, after + HH, 10.0001, NAN, "absurd value");
	assert_refused(after, after + HH, -99999.0, NAN, "absurd value");
	assert_refused(after, after + HH, 0.2, INFINITY, "excluding VAT");
	assert_refused(after, after + HH, 0.2, 11.0, "excluding VAT");
	assert_refused(after, after, 0.2, NAN, "length");
	assert_refused(after, after - HH, 0.2, NAN, "length");
	assert_refused(after, after + 1799, 0.2, NAN, "length");
	assert_refused(after, after + 86400 + 60, 0.2, NAN, "length");
	assert_refused(after - 60, after + HH, 0.2, NAN, "overlaps");
	assert_refused(T0, T0 + HH, 0.2, NAN, "overlaps"); /* duplicate, out of order */
	assert_refused(T0 - HH, T0, 0.2, NAN, "precedes");
}

static void test_validate_survives_absurd_times(void **state)
{
	/* Lengths that do not fit in int64 must not overflow. */
	assert_refused(INT64_MIN, INT64_MAX, 0.2, NAN, "length");
	assert_refused(INT64_MAX, INT64_MIN, 0.2, NAN, "length");
	assert_refused(T0 + 4 * HH, INT64_MAX, 0.2, NAN, "length");
}

static void test_validate_refuses_a_list_without_unit(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	fill(&l, 2);
	rp_err_clear(&err);
	assert_int_equal(slot_list_validate(&l, 10.0, &err), RP_EGARBAGE);
	assert_non_null(strstr(err.msg, "unit"));
	slot_list_free(&l);
}

static void test_contiguous_end_stops_at_the_first_gap(void **state)
{
	struct slot_list l;

	list_with_unit(&l);
	assert_int_equal(slot_list_contiguous_end(&l), 0);
	fill(&l, 1);
	assert_int_equal(slot_list_contiguous_end(&l), T0 + HH);
	slot_list_clear(&l);
	fill(&l, 48);
	assert_int_equal(slot_list_contiguous_end(&l), T0 + 48 * HH);
	/* A gap of one half-hour, then more slots: the run ends at the gap. */
	assert_int_equal(slot_list_push(&l, T0 + 49 * HH, T0 + 50 * HH, 0.3, NAN), 0);
	assert_int_equal(slot_list_contiguous_end(&l), T0 + 48 * HH);
	/* A resolution change without a gap keeps the run going. */
	slot_list_clear(&l);
	fill(&l, 2);
	assert_int_equal(slot_list_push(&l, T0 + 2 * HH, T0 + 2 * HH + 900, 0.3, NAN), 0);
	assert_int_equal(slot_list_push(&l, T0 + 2 * HH + 900, T0 + 3 * HH, 0.3, NAN), 0);
	assert_int_equal(slot_list_contiguous_end(&l), T0 + 3 * HH);
	slot_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_push_grows_and_keeps_values),
	        cmocka_unit_test(test_push_stops_at_slot_list_max),
	        cmocka_unit_test(test_clear_keeps_memory_and_list_is_reusable),
	        cmocka_unit_test(test_sort_orders_newest_first_answers),
	        cmocka_unit_test(test_sort_is_stable_for_equal_starts),
	        cmocka_unit_test(test_validate_accepts_a_good_answer),
	        cmocka_unit_test(test_validate_refuses_each_kind_of_garbage),
	        cmocka_unit_test(test_validate_survives_absurd_times),
	        cmocka_unit_test(test_validate_refuses_a_list_without_unit),
	        cmocka_unit_test(test_contiguous_end_stops_at_the_first_gap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
