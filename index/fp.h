/*
 * fp.h - chunk fingerprints: SHA-256 through OpenSSL's libcrypto (SHA-NI
 * where the CPU has it).  A collision-resistant hash is a security property
 * here: dedup on a weak hash would let one writer's chunk stand in for
 * another's, returning someone else's bytes.
 */
#ifndef MIXFS_FP_H
#define MIXFS_FP_H

#include <stddef.h>
#include <stdint.h>

#define FP_LEN 32

/* out = SHA-256(buf[0..len)).  Returns 0, or -EIO if libcrypto fails. */
int fp_compute(const void *buf, size_t len, uint8_t out[FP_LEN]);

/* Lower-case hex of fp into out (2*FP_LEN+1 bytes). */
void fp_hex(const uint8_t fp[FP_LEN], char out[2 * FP_LEN + 1]);

#endif
