/* queue.c - bounded MPSC ring of pointers with an eventfd wake-up. */
#include "ratepool/queue.h"
#include "ratepool/error.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct queue {
	pthread_mutex_t lock;
	void **ring;
	size_t capacity;
	size_t head; /* next slot to pop */
	size_t count;
	size_t high_water;
	uint64_t pushed;
	uint64_t popped;
	uint64_t dropped;
	int efd;
};

int queue_new(struct queue **out, size_t capacity)
{
	struct queue *q = NULL;
	int rc = 0;

	*out = NULL;
	if(capacity == 0 || capacity > QUEUE_CAPACITY_MAX)
		return RP_EINVAL;
	q = calloc(1, sizeof(*q));
	if(!q)
		return RP_ENOMEM;
	q->efd = -1;
	q->ring = calloc(capacity, sizeof(*q->ring));
	if(!q->ring) {
		rc = RP_ENOMEM;
		goto out;
	}
	q->capacity = capacity;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if(q->efd < 0) {
		rc = RP_EIO;
		goto out;
	}
	if(pthread_mutex_init(&q->lock, NULL) != 0) {
		rc = RP_ENOMEM;
		goto out;
	}
	*out = q;
	q = NULL;
out:
	if(q) {
		if(q->efd >= 0)
			close(q->efd);
		free(q->ring);
		free(q);
	}
	return rc;
}

void queue_free(struct queue *q, void (*free_item)(void *item))
{
	void *item;

	if(!q)
		return;
	while((item = queue_pop(q)) != NULL) {
		if(free_item)
			free_item(item);
	}
	pthread_mutex_destroy(&q->lock);
	close(q->efd);
	free(q->ring);
	free(q);
}

static void signal_fd(int efd)
{
	uint64_t one = 1;
	ssize_t n;

	/* EAGAIN means the counter is already huge, i.e. readable: fine. */
	do {
		n = write(efd, &one, sizeof(one));
	} while(n < 0 && errno == EINTR);
}

int queue_push(struct queue *q, void *item)
{
	int was_empty;

	if(!item)
		return RP_EINVAL;
	pthread_mutex_lock(&q->lock);
	if(q->count == q->capacity) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		return RP_EBUSY;
	}
	q->ring[(q->head + q->count) % q->capacity] = item;
	q->count++;
	q->pushed++;
	if(q->count > q->high_water)
		q->high_water = q->count;
	was_empty = q->count == 1;
	pthread_mutex_unlock(&q->lock);
	/* Only the empty -> non-empty edge needs a wake-up: a consumer drains
	 * until empty after clearing the fd, so later items are seen. */
	if(was_empty)
		signal_fd(q->efd);
	return 0;
}

void *queue_pop(struct queue *q)
{
	void *item = NULL;

	pthread_mutex_lock(&q->lock);
	if(q->count > 0) {
		item = q->ring[q->head];
		q->ring[q->head] = NULL;
		q->head = (q->head + 1) % q->capacity;
		q->count--;
		q->popped++;
	}
	pthread_mutex_unlock(&q->lock);
	return item;
}

void queue_clear_fd(struct queue *q)
{
	uint64_t v;
	ssize_t n;

	do {
		n = read(q->efd, &v, sizeof(v));
	} while(n < 0 && errno == EINTR);
}

int queue_wait(struct queue *q, int timeout_ms)
{
	struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
	int rc;

	if(queue_length(q) > 0) {
		queue_clear_fd(q);
		return 1;
	}
	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while(rc < 0 && errno == EINTR);
	if(rc > 0)
		queue_clear_fd(q);
	return queue_length(q) > 0 ? 1 : 0;
}

int queue_fd(const struct queue *q)
{
	return q->efd;
}

void queue_wake(struct queue *q)
{
	signal_fd(q->efd);
}

size_t queue_length(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void queue_stats(struct queue *q, struct queue_stats *out)
{
	pthread_mutex_lock(&q->lock);
	out->pushed = q->pushed;
	out->popped = q->popped;
	out->dropped = q->dropped;
	out->length = q->count;
	out->high_water = q->high_water;
	out->capacity = q->capacity;
	pthread_mutex_unlock(&q->lock);
}
