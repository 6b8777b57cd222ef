/*
 * sha256.h - SHA-256 (FIPS 180-4), small and dependency-free.
 *
 * Used to name stored credentials (auth_credential_key) without writing
 * the secret itself. Not constant-time and not meant for anything that
 * needs a MAC or a KDF.
 */
#ifndef RATEPOOL_SHA256_H
#define RATEPOOL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE    65 /* 64 hex digits plus NUL */

struct sha256_ctx {
	uint32_t state[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t buf[64];
	size_t buf_len;
};

void sha256_init(struct sha256_ctx *ctx);
/* Hashes len bytes at data (data may be NULL when len is 0). */
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes ctx. */
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_SIZE]);

/* One-shot digest of data as lower-case hex into out. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_SIZE]);

#endif
