/*
 * fp.c - SHA-256 chunk fingerprints through libcrypto's EVP interface (the
 * low-level SHA256_* calls are deprecated in OpenSSL 3 and EVP picks the
 * SHA-NI code path where the CPU has it).
 */
#include "index/fp.h"

#include <errno.h>

#include <openssl/evp.h>

int fp_compute(const void *buf, size_t len, uint8_t out[FP_LEN])
{
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, len, out, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != FP_LEN)
		return -EIO;
	return 0;
}

void fp_hex(const uint8_t fp[FP_LEN], char out[2 * FP_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < FP_LEN; i++) {
		out[2 * i] = digits[fp[i] >> 4];
		out[2 * i + 1] = digits[fp[i] & 15];
	}
	out[2 * FP_LEN] = '\0';
}
