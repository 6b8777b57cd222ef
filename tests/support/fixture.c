/* fixture.c - test data files, found from wherever the test runs. */
#include "fixture.h"
#include "ratepool/rtime.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static FILE *open_fixture(const char *dir, const char *name, char *path, size_t n)
{
	const char *root = getenv("RATEPOOL_TEST_DATA");
	char exe[PATH_MAX];
	ssize_t el;
	FILE *f;

	snprintf(path, n, "%s/%s/%s", root ? root : "tests/data", dir, name);
	f = fopen(path, "rb");
	if(f || root)
		return f;
	el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if(el <= 0)
		return NULL;
	exe[el] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, n, "%s/../../../tests/data/%s/%s", exe, dir, name);
	return fopen(path, "rb");
}

char *fixture_read(const char *dir, const char *name, size_t *len)
{
	char path[PATH_MAX + 256];
	FILE *f = open_fixture(dir, name, path, sizeof(path));
	char *buf;
	long n;

	if(!f)
		fail_msg("fixture %s/%s not found (last tried %s)", dir, name, path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int64_t fixture_time(const char *text)
{
	int64_t t = 0;

	if(rtime_parse(text, &t))
		fail_msg("bad time in test: %s", text);
	return t;
}
