/*
 * chunker_i.h - chunker internals shared with its tests.
 */
#ifndef MIXFS_CHUNKER_I_H
#define MIXFS_CHUNKER_I_H

#include <stdint.h>

/* The gear table: splitmix64(seed 0x6d69786673474541), outputs 0..255. */
extern const uint64_t cdc_gear[256];

#endif
