/*
 * queue.h - a bounded multi-producer, single-consumer queue of pointers
 * with a wake-up file descriptor.
 *
 * Producers (paho's callback thread, fetch workers) push items and never
 * block: a full queue refuses the item at once and counts the drop, so a
 * burst of requests can never stall the MQTT library's thread or grow
 * memory without bound. The one consumer (the daemon's event loop) waits
 * on queue_fd() with poll() next to its other descriptors, or on
 * queue_wait(), and drains with queue_pop().
 *
 * The queue holds an internal mutex only for the O(1) ring update; no
 * callback runs and no system call is made under it, so a producer never
 * waits on anything a consumer does between pops. The eventfd is written
 * only when the queue goes from empty to non-empty (and by queue_wake()),
 * so a busy queue costs no system call per item.
 *
 * Items are opaque pointers owned by the queue between a successful push
 * and the pop that returns them; queue_free() hands the leftovers to a
 * destructor.
 */
#ifndef RATEPOOL_QUEUE_H
#define RATEPOOL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct queue;

/* Largest capacity accepted (items, not bytes). */
#define QUEUE_CAPACITY_MAX (1u << 24)

struct queue_stats {
	uint64_t pushed;   /* items accepted */
	uint64_t popped;   /* items handed to the consumer */
	uint64_t dropped;  /* pushes refused because the queue was full */
	size_t length;     /* items waiting now */
	size_t high_water; /* most items ever waiting at once */
	size_t capacity;
};

/* Creates a queue holding at most `capacity` items (1..QUEUE_CAPACITY_MAX).
 * Returns 0, RP_EINVAL (bad capacity), RP_ENOMEM or RP_EIO (no eventfd). */
int queue_new(struct queue **out, size_t capacity);

/* Frees the queue. Items still queued are passed to free_item (when not
 * NULL) in FIFO order. No producer or consumer may use q any more. q may
 * be NULL. */
void queue_free(struct queue *q, void (*free_item)(void *item));

/* Appends item (not NULL). Never blocks. Returns 0 when the queue took
 * ownership of item, RP_EBUSY when the queue is full (the caller keeps
 * item and usually frees it; the drop is counted), RP_EINVAL for a NULL
 * item. Thread-safe. */
int queue_push(struct queue *q, void *item);

/* Removes and returns the oldest item, or NULL when the queue is empty.
 * Never blocks. Only the consumer thread calls this. */
void *queue_pop(struct queue *q);

/* Waits until an item is queued, queue_wake() was called, or timeout_ms
 * passed (-1: no timeout; 0: just check). Clears the wake-up descriptor.
 * Returns 1 when items are waiting, 0 otherwise (timeout or a wake without
 * items). Only the consumer thread calls this. */
int queue_wait(struct queue *q, int timeout_ms);

/* A descriptor that polls readable (POLLIN) while items may be waiting or
 * after queue_wake(). Owned by the queue; valid until queue_free(). A
 * consumer that polls it itself calls queue_clear_fd() before draining
 * with queue_pop() until NULL, so no wake-up is lost. */
int queue_fd(const struct queue *q);

/* Resets the descriptor to not readable. Consumer only. */
void queue_clear_fd(struct queue *q);

/* Makes queue_fd() readable and returns a waiting queue_wait() without an
 * item (used to interrupt the consumer: shutdown, reconnect, ...).
 * Thread-safe and async-signal-safe (it is one write(2)). */
void queue_wake(struct queue *q);

/* Items waiting now. Thread-safe (a snapshot). */
size_t queue_length(struct queue *q);

/* Counters so far. Thread-safe (a consistent snapshot). */
void queue_stats(struct queue *q, struct queue_stats *out);

#endif
