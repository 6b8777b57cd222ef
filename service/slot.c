/* slot.c - slot lists: growth, sorting, validation. */
#include "ratepool/slot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void slot_list_init(struct slot_list *list)
{
	memset(list, 0, sizeof(*list));
}

void slot_list_free(struct slot_list *list)
{
	free(list->v);
	slot_list_init(list);
}

void slot_list_clear(struct slot_list *list)
{
	list->n = 0;
}

int slot_list_push(struct slot_list *list, int64_t start, int64_t end, double value, double value_exc_vat)
{
	struct slot *s;

	if(list->n >= SLOT_LIST_MAX)
		return RP_ETOOLARGE;
	if(list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct slot *v;
		if(cap > SLOT_LIST_MAX)
			cap = SLOT_LIST_MAX;
		v = realloc(list->v, cap * sizeof(*v));
		if(!v)
			return RP_ENOMEM;
		list->v = v;
		list->cap = cap;
	}
	s = &list->v[list->n++];
	s->start = start;
	s->end = end;
	s->value = value;
	s->value_exc_vat = value_exc_vat;
	return 0;
}

static int by_start(const struct slot *x, const struct slot *y)
{
	if(x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* Bottom-up merge sort: stable whatever the C library's qsort is (glibc's
 * stopped being a merge sort in 2.37). Falls back to an insertion sort
 * (also stable) when the scratch buffer cannot be had. */
void slot_list_sort(struct slot_list *list)
{
	struct slot *a = list->v, *b, *tmp;
	size_t n = list->n, width, i;

	if(n < 2)
		return;
	b = malloc(n * sizeof(*b));
	if(!b) {
		for(i = 1; i < n; i++) {
			struct slot s = a[i];
			size_t j = i;
			while(j > 0 && by_start(&a[j - 1], &s) > 0) {
				a[j] = a[j - 1];
				j--;
			}
			a[j] = s;
		}
		return;
	}
	for(width = 1; width < n; width *= 2) {
		for(i = 0; i < n; i += 2 * width) {
			size_t lo = i, mid = i + width < n ? i + width : n;
			size_t hi = i + 2 * width < n ? i + 2 * width : n;
			size_t l = lo, r = mid, o = lo;
			while(l < mid && r < hi)
				b[o++] = by_start(&a[r], &a[l]) < 0 ? a[r++] : a[l++];
			while(l < mid)
				b[o++] = a[l++];
			while(r < hi)
				b[o++] = a[r++];
		}
		tmp = a;
		a = b;
		b = tmp;
	}
	if(a != list->v) {
		memcpy(list->v, a, n * sizeof(*a));
		b = a;
	}
	free(b);
}

int slot_list_validate(const struct slot_list *list, double max_abs, struct rp_err *err)
{
	size_t i;

	if(!list->unit[0])
		return rp_err_set(err, RP_EGARBAGE, "slots have no unit");
	if(list->n > SLOT_LIST_MAX)
		return rp_err_set(err, RP_EGARBAGE, "%zu slots is more than %d", list->n, SLOT_LIST_MAX);
	for(i = 0; i < list->n; i++) {
		const struct slot *s = &list->v[i];
		/* In unsigned arithmetic: hostile times must not overflow. */
		uint64_t len = (uint64_t)s->end - (uint64_t)s->start;
		if(!isfinite(s->value) || fabs(s->value) > max_abs)
			return rp_err_set(err, RP_EGARBAGE, "slot %zu has an absurd value", i);
		if(!isnan(s->value_exc_vat) &&
		   (!isfinite(s->value_exc_vat) || fabs(s->value_exc_vat) > max_abs))
			return rp_err_set(err, RP_EGARBAGE, "slot %zu has an absurd value excluding VAT", i);
		if(s->end <= s->start || len > 86400 || len % 60)
			return rp_err_set(err, RP_EGARBAGE, "slot %zu has a bad length (from %lld to %lld)",
			                  i, (long long)s->start, (long long)s->end);
		if(i && s->start < list->v[i - 1].end)
			return rp_err_set(err, RP_EGARBAGE, "slot %zu overlaps or precedes the one before",
			                  i);
	}
	return 0;
}

int64_t slot_list_contiguous_end(const struct slot_list *list)
{
	size_t i;

	if(!list->n)
		return 0;
	for(i = 1; i < list->n; i++)
		if(list->v[i].start != list->v[i - 1].end)
			break;
	return list->v[i - 1].end;
}
