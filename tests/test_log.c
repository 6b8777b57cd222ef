/* test_log.c - one line per event, secrets scrubbed, levels filtered. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"
#include "ratepool/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_log.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ratepool.log", f->dir);
	assert_int_equal(log_open(LOG_LEVEL_DEBUG, f->path), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char old[160];

	log_close();
	unlink(f->path);
	snprintf(old, sizeof(old), "%s.1", f->path);
	unlink(old);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The whole file, malloc'd; the caller frees it. */
static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int count_lines(const char *text)
{
	int n = 0;
	for(; *text; text++)
		n += *text == '\n';
	return n;
}

static void test_line_is_logfmt_with_time_level_and_event(void **state)
{
	struct fixture *f = *state;
	char *text;

	log_info("fetch_done", "provider=%s slots=%d", "octopus", 48);
	log_info("started", "%s", "");
	text = slurp(f->path);
	assert_int_equal(count_lines(text), 2);
	assert_memory_equal(text, "ts=", 3);
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
	assert_int_equal(text[13], 'T');
	assert_int_equal(text[26], 'Z');
	assert_non_null(strstr(text, "Z level=info event=fetch_done provider=octopus slots=48\n"));
	/* No trailing space when there is nothing after the event. */
	assert_non_null(strstr(text, "Z level=info event=started\n"));
	free(text);
}

static void test_newlines_in_values_stay_on_one_line(void **state)
{
	struct fixture *f = *state;
	char *text;

	log_warn("upstream_error", "msg=\"%s\"", "line one\nline two\r\nthree\tfour\x1b[31m");
	text = slurp(f->path);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, "msg=\"line one line two  three four [31m\"\n"));
	assert_null(strchr(text, '\t'));
	assert_null(strchr(text, '\r'));
	assert_null(strchr(text, '\x1b'));
	free(text);
}

static void test_registered_secret_is_scrubbed(void **state)
{
	struct fixture *f = *state;
	char *text;

	assert_int_equal(log_add_secret("sk_live_0123456789"), 0);
	log_error("auth_failed", "msg=\"key sk_live_0123456789 refused; again sk_live_0123456789\"");
	log_info("url", "u=https://x/?k=sk_live_0123456789&z=1");
	text = slurp(f->path);
	assert_null(strstr(text, "sk_live"));
	assert_null(strstr(text, "0123456789"));
	assert_non_null(strstr(text, "msg=\"key *** refused; again ***\""));
	assert_non_null(strstr(text, "u=https://x/?k=***&z=1"));
	free(text);
}

static void test_secret_extending_another_is_masked_whole(void **state)
{
	struct fixture *f = *state;
	char *text;

	/* Registered shorter first: the longer one must still be masked in
	 * full, not as "***" followed by its tail. */
	assert_int_equal(log_add_secret("abcd1234"), 0);
	assert_int_equal(log_add_secret("abcd1234-tail-of-token"), 0);
	log_info("token", "t=abcd1234-tail-of-token s=abcd1234");
	text = slurp(f->path);
	assert_null(strstr(text, "tail-of-token"));
	assert_non_null(strstr(text, "t=*** s=***"));
	free(text);
}

static void test_secret_cut_by_the_line_limit_does_not_leak(void **state)
{
	struct fixture *f = *state;
	const char *secret = "SECRETPREFIXsecretsuffix";
	char pad[4096];
	size_t cut;
	char *text;

	assert_int_equal(log_add_secret(secret), 0);
	/* Place the secret across every point where a line might be cut. */
	for(cut = 1900; cut < 2200; cut += 3) {
		memset(pad, 'p', cut);
		pad[cut] = '\0';
		log_info("long", "%s%s", pad, secret);
	}
	text = slurp(f->path);
	assert_null(strstr(text, "SECRET"));
	assert_null(strstr(text, "suffix"));
	free(text);
}

static void test_short_secrets_are_ignored_and_duplicates_are_one(void **state)
{
	struct fixture *f = *state;
	char *text;
	int i;

	assert_int_equal(log_add_secret("abc"), 0);
	assert_int_equal(log_add_secret(""), 0);
	assert_int_equal(log_add_secret(NULL), 0);
	for(i = 0; i < 40; i++)
		assert_int_equal(log_add_secret("same-secret"), 0);
	log_info("words", "w=abc same-secret");
	text = slurp(f->path);
	assert_non_null(strstr(text, "w=abc ***"));
	free(text);
}

static void test_secret_list_is_bounded(void **state)
{
	char s[32];
	int i;

	for(i = 0; i < 32; i++) {
		snprintf(s, sizeof(s), "secret-number-%02d", i);
		assert_int_equal(log_add_secret(s), 0);
	}
	assert_int_equal(log_add_secret("one-too-many"), RP_EBUSY);
	/* Forgotten by log_close: room again. */
	log_close();
	assert_int_equal(log_add_secret("one-too-many"), 0);
}

static void test_removed_secret_frees_its_place(void **state)
{
	struct fixture *f = *state;
	char s[32];
	char *text;
	int i;

	for(i = 0; i < 32; i++) {
		snprintf(s, sizeof(s), "token-generation-%02d", i);
		assert_int_equal(log_add_secret(s), 0);
	}
	assert_int_equal(log_add_secret("token-generation-32"), RP_EBUSY);
	log_remove_secret("token-generation-00");
	log_remove_secret("never-registered");
	log_remove_secret(NULL);
	assert_int_equal(log_add_secret("token-generation-32"), 0);
	log_info("tokens", "old=token-generation-00 kept=token-generation-31 new=token-generation-32");
	text = slurp(f->path);
	assert_non_null(strstr(text, "old=token-generation-00 kept=*** new=***"));
	free(text);
}

static int evaluated;
static int side_effect(void)
{
	return ++evaluated;
}

static void test_level_filters_before_formatting(void **state)
{
	struct fixture *f = *state;
	char *text;

	assert_int_equal(log_open(LOG_LEVEL_WARN, f->path), 0);
	evaluated = 0;
	log_debug("debug_event", "n=%d", side_effect());
	log_info("info_event", "n=%d", side_effect());
	log_warn("warn_event", "n=%d", side_effect());
	log_error("error_event", "n=%d", side_effect());
	assert_int_equal(evaluated, 2);
	text = slurp(f->path);
	assert_int_equal(count_lines(text), 2);
	assert_null(strstr(text, "debug_event"));
	assert_null(strstr(text, "info_event"));
	assert_non_null(strstr(text, "level=warn event=warn_event n=1"));
	assert_non_null(strstr(text, "level=error event=error_event n=2"));
	free(text);

	assert_int_equal(log_open(LOG_LEVEL_ERROR, f->path), 0);
	log_warn("quiet", "x=1");
	assert_int_equal(log_open(LOG_LEVEL_DEBUG, f->path), 0);
	log_debug("loud", "x=1");
	text = slurp(f->path);
	assert_null(strstr(text, "quiet"));
	assert_non_null(strstr(text, "level=debug event=loud"));
	free(text);
}

static void test_level_names_parse(void **state)
{
	enum log_level l = LOG_LEVEL_INFO;

	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("WARN", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("Warning", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("verbose", &l), RP_EINVAL);
	assert_int_equal(log_level_parse("", &l), RP_EINVAL);
	assert_int_equal(log_level_parse("info ", &l), RP_EINVAL);
	assert_int_equal(log_level_parse(NULL, &l), RP_EINVAL);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
}

static void test_reopen_follows_a_rotated_file(void **state)
{
	struct fixture *f = *state;
	char old[160];
	char *text;

	snprintf(old, sizeof(old), "%s.1", f->path);
	log_info("before", "x=1");
	assert_int_equal(rename(f->path, old), 0);
	log_info("between", "x=2"); /* still the renamed file */
	assert_int_equal(log_reopen(), 0);
	log_info("after", "x=3");
	text = slurp(old);
	assert_non_null(strstr(text, "event=before"));
	assert_non_null(strstr(text, "event=between"));
	assert_null(strstr(text, "event=after"));
	free(text);
	text = slurp(f->path);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, "event=after"));
	free(text);
}

static void test_file_is_created_0640_and_appended(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char *text;

	log_info("one", "x=1");
	log_close();
	assert_int_equal(log_open(LOG_LEVEL_INFO, f->path), 0);
	log_info("two", "x=2");
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0022, 0); /* never group/world writable */
	assert_int_equal(st.st_mode & 0004, 0);
	text = slurp(f->path);
	assert_int_equal(count_lines(text), 2);
	free(text);
}

static void test_open_failure_keeps_the_old_destination(void **state)
{
	struct fixture *f = *state;
	char bad[200];
	char *text;

	snprintf(bad, sizeof(bad), "%s/no/such/dir/x.log", f->dir);
	assert_int_equal(log_open(LOG_LEVEL_INFO, bad), RP_EIO);
	log_info("still_here", "x=1");
	text = slurp(f->path);
	assert_non_null(strstr(text, "event=still_here"));
	free(text);
	/* The stderr destination works too (nothing to check but no crash),
	 * and reopen is then a no-op. */
	assert_int_equal(log_open(LOG_LEVEL_ERROR, NULL), 0);
	assert_int_equal(log_reopen(), 0);
	assert_int_equal(log_open(LOG_LEVEL_ERROR, ""), 0);
}

static void test_scrub_bounds_and_terminates(void **state)
{
	char out[16];

	assert_int_equal(log_add_secret("hunter22"), 0);
	log_scrub("pw=hunter22!", out, sizeof(out));
	assert_string_equal(out, "pw=***!");
	log_scrub("0123456789abcdefghij", out, sizeof(out));
	assert_string_equal(out, "0123456789abcde");
	log_scrub("abcdefghijklhunter22", out, sizeof(out));
	assert_string_equal(out, "abcdefghijkl***");
	log_scrub("abcdefghijklmhunter22", out, sizeof(out));
	assert_string_equal(out, "abcdefghijklm**");
	log_scrub("x", out, 1);
	assert_string_equal(out, "");
	log_scrub(NULL, out, sizeof(out));
	assert_string_equal(out, "");
	log_scrub("a\nb", out, sizeof(out));
	assert_string_equal(out, "a b");
	out[0] = 'q';
	log_scrub("abc", out, 0); /* no room: nothing written */
	assert_int_equal(out[0], 'q');
}

#define THREADS          4
#define LINES_PER_THREAD 300

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char pad[600];
	int i;

	memset(pad, 'a' + id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for(i = 0; i < LINES_PER_THREAD; i++)
		log_info("busy", "thread=%d i=%d pad=%s end=1", id, i, pad);
	return NULL;
}

static void test_lines_from_threads_never_interleave(void **state)
{
	struct fixture *f = *state;
	pthread_t th[THREADS];
	char *text, *line, *next;
	int i, n = 0;

	for(i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
	for(i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	text = slurp(f->path);
	for(line = text; *line; line = next + 1) {
		int id = 0, k = 0;
		next = strchr(line, '\n');
		assert_non_null(next);
		*next = '\0';
		assert_int_equal(sscanf(strstr(line, "thread="), "thread=%d i=%d", &id, &k), 2);
		assert_memory_equal(line + strlen(line) - 6, " end=1", 6);
		assert_non_null(strchr(line, 'a' + id));
		n++;
	}
	assert_int_equal(n, THREADS * LINES_PER_THREAD);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_line_is_logfmt_with_time_level_and_event, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_newlines_in_values_stay_on_one_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_registered_secret_is_scrubbed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_secret_extending_another_is_masked_whole, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_secret_cut_by_the_line_limit_does_not_leak, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_short_secrets_are_ignored_and_duplicates_are_one, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_secret_list_is_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_removed_secret_frees_its_place, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_level_filters_before_formatting, setup, teardown),
	        cmocka_unit_test(test_level_names_parse),
	        cmocka_unit_test_setup_teardown(test_reopen_follows_a_rotated_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_file_is_created_0640_and_appended, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_open_failure_keeps_the_old_destination, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scrub_bounds_and_terminates, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lines_from_threads_never_interleave, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
