/* test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors. */
#include "ratepool/sha256.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_empty_input(void **state)
{
	char hex[SHA256_HEX_SIZE];
	(void)state;

	sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex(NULL, 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_abc(void **state)
{
	char hex[SHA256_HEX_SIZE];
	(void)state;

	sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_two_block_message(void **state)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char hex[SHA256_HEX_SIZE];
	(void)state;

	/* 56 bytes: the length no longer fits the first block */
	sha256_hex(m, strlen(m), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_in_uneven_pieces(void **state)
{
	static char chunk[997];
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];
	static const uint8_t want[SHA256_DIGEST_SIZE] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
	                                                 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
	                                                 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
	                                                 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
	size_t left = 1000000;
	(void)state;

	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&ctx);
	while(left) {
		size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
		sha256_update(&ctx, chunk, n);
		left -= n;
	}
	sha256_final(&ctx, d);
	assert_memory_equal(d, want, sizeof(want));
}

static void test_split_updates_match_one_shot(void **state)
{
	char msg[200];
	char one[SHA256_HEX_SIZE];
	size_t len, cut;
	int i;
	(void)state;

	for(i = 0; i < (int)sizeof(msg); i++)
		msg[i] = (char)(i * 7 + 3);
	for(len = 0; len <= sizeof(msg); len += 13) {
		sha256_hex(msg, len, one);
		for(cut = 0; cut <= len; cut += 5) {
			struct sha256_ctx ctx;
			uint8_t d[SHA256_DIGEST_SIZE];
			char hex[SHA256_HEX_SIZE];
			int j;
			sha256_init(&ctx);
			sha256_update(&ctx, msg, cut);
			sha256_update(&ctx, msg + cut, len - cut);
			sha256_final(&ctx, d);
			for(j = 0; j < SHA256_DIGEST_SIZE; j++) {
				hex[j * 2] = "0123456789abcdef"[d[j] >> 4];
				hex[j * 2 + 1] = "0123456789abcdef"[d[j] & 15];
			}
			hex[64] = '\0';
			assert_string_equal(hex, one);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty_input),
	        cmocka_unit_test(test_abc),
	        cmocka_unit_test(test_two_block_message),
	        cmocka_unit_test(test_million_a_in_uneven_pieces),
	        cmocka_unit_test(test_split_updates_match_one_shot),
	};
	return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
