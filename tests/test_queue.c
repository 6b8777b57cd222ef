/* test_queue.c - the bounded MPSC queue: bounds, order, threads, wake-up. */
#include "ratepool/error.h"
#include "ratepool/queue.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Items are small integers disguised as pointers (never NULL). */
static void *item(uintptr_t v)
{
	return (void *)(v + 1);
}

static uintptr_t value(void *p)
{
	return (uintptr_t)p - 1;
}

static void test_bad_capacity_refused(void **state)
{
	struct queue *q = (struct queue *)1;

	assert_int_equal(queue_new(&q, 0), RP_EINVAL);
	assert_null(q);
	assert_int_equal(queue_new(&q, (size_t)QUEUE_CAPACITY_MAX + 1), RP_EINVAL);
	assert_null(q);
}

static void test_pop_on_empty_queue_returns_null(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	assert_null(queue_pop(q));
	assert_int_equal(queue_length(q), 0);
	queue_free(q, NULL);
}

static void test_null_item_refused(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	assert_int_equal(queue_push(q, NULL), RP_EINVAL);
	assert_int_equal(queue_length(q), 0);
	queue_free(q, NULL);
}

static void test_push_beyond_capacity_drops_and_counts(void **state)
{
	struct queue *q;
	struct queue_stats st;
	uintptr_t i;

	assert_int_equal(queue_new(&q, 3), 0);
	for(i = 0; i < 3; i++)
		assert_int_equal(queue_push(q, item(i)), 0);
	assert_int_equal(queue_push(q, item(3)), RP_EBUSY);
	assert_int_equal(queue_push(q, item(4)), RP_EBUSY);
	queue_stats(q, &st);
	assert_int_equal(st.pushed, 3);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.length, 3);
	assert_int_equal(st.high_water, 3);
	assert_int_equal(st.capacity, 3);
	/* the items already queued are untouched by the drops */
	for(i = 0; i < 3; i++)
		assert_int_equal(value(queue_pop(q)), i);
	assert_null(queue_pop(q));
	/* room again after draining */
	assert_int_equal(queue_push(q, item(9)), 0);
	queue_stats(q, &st);
	assert_int_equal(st.popped, 3);
	assert_int_equal(st.dropped, 2);
	queue_free(q, NULL);
}

static void test_fifo_order_survives_wraparound(void **state)
{
	struct queue *q;
	uintptr_t next_in = 0, next_out = 0;
	int round;

	assert_int_equal(queue_new(&q, 5), 0);
	for(round = 0; round < 50; round++) {
		int k, n = 1 + round % 5;
		for(k = 0; k < n; k++)
			assert_int_equal(queue_push(q, item(next_in++)), 0);
		for(k = 0; k < n; k++)
			assert_int_equal(value(queue_pop(q)), next_out++);
	}
	assert_null(queue_pop(q));
	queue_free(q, NULL);
}

static int freed_count;
static uintptr_t freed_sum;

static void count_free(void *p)
{
	freed_count++;
	freed_sum += value(p);
}

static void test_free_hands_leftovers_to_destructor(void **state)
{
	struct queue *q;

	freed_count = 0;
	freed_sum = 0;
	assert_int_equal(queue_new(&q, 8), 0);
	assert_int_equal(queue_push(q, item(10)), 0);
	assert_int_equal(queue_push(q, item(20)), 0);
	assert_int_equal(queue_push(q, item(30)), 0);
	assert_int_equal(value(queue_pop(q)), 10);
	queue_free(q, count_free);
	assert_int_equal(freed_count, 2);
	assert_int_equal(freed_sum, 50);
}

static int fd_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void test_fd_readable_after_push_and_cleared_by_consumer(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	assert_false(fd_readable(queue_fd(q)));
	assert_int_equal(queue_push(q, item(1)), 0);
	assert_true(fd_readable(queue_fd(q)));
	queue_clear_fd(q);
	assert_false(fd_readable(queue_fd(q)));
	assert_int_equal(value(queue_pop(q)), 1);
	/* the next empty -> non-empty edge signals again */
	assert_int_equal(queue_push(q, item(2)), 0);
	assert_true(fd_readable(queue_fd(q)));
	queue_free(q, NULL);
}

static void test_wait_returns_at_once_when_items_wait(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	assert_int_equal(queue_push(q, item(1)), 0);
	assert_int_equal(queue_wait(q, -1), 1);
	/* queue_wait does not consume */
	assert_int_equal(queue_length(q), 1);
	queue_free(q, NULL);
}

static void test_wait_times_out_on_empty_queue(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	assert_int_equal(queue_wait(q, 0), 0);
	assert_int_equal(queue_wait(q, 20), 0);
	queue_free(q, NULL);
}

static void test_wake_interrupts_wait_without_item(void **state)
{
	struct queue *q;

	assert_int_equal(queue_new(&q, 4), 0);
	queue_wake(q);
	assert_true(fd_readable(queue_fd(q)));
	assert_int_equal(queue_wait(q, -1), 0);
	assert_false(fd_readable(queue_fd(q)));
	queue_free(q, NULL);
}

struct delayed_push {
	struct queue *q;
	int delay_ms;
};

static void *push_later(void *arg)
{
	struct delayed_push *dp = arg;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)dp->delay_ms * 1000000L};

	nanosleep(&ts, NULL);
	queue_push(dp->q, item(42));
	return NULL;
}

static void test_wait_wakes_on_push_from_another_thread(void **state)
{
	struct queue *q;
	struct delayed_push dp;
	pthread_t t;

	assert_int_equal(queue_new(&q, 4), 0);
	dp.q = q;
	dp.delay_ms = 30;
	assert_int_equal(pthread_create(&t, NULL, push_later, &dp), 0);
	/* generous bound: only a lost wake-up would take this long */
	assert_int_equal(queue_wait(q, 30000), 1);
	assert_int_equal(value(queue_pop(q)), 42);
	pthread_join(t, NULL);
	queue_free(q, NULL);
}

#define PRODUCERS    4
#define PER_PRODUCER 20000

struct producer {
	struct queue *q;
	uintptr_t id;
	unsigned long refused;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	uintptr_t seq;

	for(seq = 0; seq < PER_PRODUCER; seq++) {
		void *it = item((p->id << 20) | seq);
		while(queue_push(p->q, it) == RP_EBUSY) {
			p->refused++;
			sched_yield();
		}
	}
	return NULL;
}

static void test_many_producers_deliver_every_item_once_in_order(void **state)
{
	struct queue *q;
	struct producer prod[PRODUCERS];
	pthread_t th[PRODUCERS];
	uintptr_t next[PRODUCERS] = {0};
	struct queue_stats st;
	unsigned long refused = 0;
	size_t got = 0;
	int i;

	/* a small queue so that producers really hit the bound */
	assert_int_equal(queue_new(&q, 64), 0);
	for(i = 0; i < PRODUCERS; i++) {
		prod[i].q = q;
		prod[i].id = (uintptr_t)i;
		prod[i].refused = 0;
		assert_int_equal(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
	}
	while(got < (size_t)PRODUCERS * PER_PRODUCER) {
		void *it;
		if(queue_wait(q, 30000) == 0)
			continue;
		while((it = queue_pop(q)) != NULL) {
			uintptr_t v = value(it);
			uintptr_t pid = v >> 20, seq = v & ((1u << 20) - 1);
			assert_true(pid < PRODUCERS);
			/* FIFO per producer, nothing lost or duplicated */
			assert_int_equal(seq, next[pid]);
			next[pid]++;
			got++;
		}
	}
	for(i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		refused += prod[i].refused;
		assert_int_equal(next[i], PER_PRODUCER);
	}
	queue_stats(q, &st);
	assert_int_equal(st.pushed, (uint64_t)PRODUCERS * PER_PRODUCER);
	assert_int_equal(st.popped, st.pushed);
	assert_int_equal(st.dropped, refused);
	assert_true(st.high_water <= 64);
	assert_null(queue_pop(q));
	queue_free(q, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_capacity_refused),
	        cmocka_unit_test(test_pop_on_empty_queue_returns_null),
	        cmocka_unit_test(test_null_item_refused),
	        cmocka_unit_test(test_push_beyond_capacity_drops_and_counts),
	        cmocka_unit_test(test_fifo_order_survives_wraparound),
	        cmocka_unit_test(test_free_hands_leftovers_to_destructor),
	        cmocka_unit_test(test_fd_readable_after_push_and_cleared_by_consumer),
	        cmocka_unit_test(test_wait_returns_at_once_when_items_wait),
	        cmocka_unit_test(test_wait_times_out_on_empty_queue),
	        cmocka_unit_test(test_wake_interrupts_wait_without_item),
	        cmocka_unit_test(test_wait_wakes_on_push_from_another_thread),
	        cmocka_unit_test(test_many_producers_deliver_every_item_once_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
