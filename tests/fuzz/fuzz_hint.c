/*
 * fuzz_hint.c - the safetensors / torch zip / GGUF / NumPy hint parsers
 * (with the torch data.pkl walker) on hostile bytes: clean errors, ranges
 * inside the file, sorted, dtypes that fit their ranges, no leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/hint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_hint h;
	struct codec_hint_range r;
	struct codec_params p;
	uint8_t *buf = malloc(size ? size : 1);
	uint64_t next;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	if (codec_hint_parse(buf, size, size, &h) == 0) {
		for (size_t i = 0; i < h.n; i++) {
			if (!h.r[i].len || h.r[i].off + h.r[i].len > size ||
			    (i && h.r[i].off < h.r[i - 1].off))
				abort();
			/* a dtype from data.pkl or an array header fits its
			 * range; a range without a float dtype has no row */
			if ((h.format == CODEC_HINT_TORCH_ZIP || h.format == CODEC_HINT_NPY) &&
			    (h.r[i].dtype == CODEC_DTYPE_FP32 ? h.r[i].len % 4
			     : h.r[i].dtype == CODEC_DTYPE_FP16 || h.r[i].dtype == CODEC_DTYPE_BF16
			         ? h.r[i].len % 2
			         : h.r[i].row_elems != 0))
				abort();
			/* a .npy holds one array */
			if (h.format == CODEC_HINT_NPY && h.n != 1)
				abort();
		}
		for (uint64_t off = 0; off < size; off += 97) {
			uint64_t cut = codec_hint_next_cut(&h, off, off % 300);

			(void)codec_hint_chunk(&h, off, 1000, &p);
			if (cut && cut <= off) /* a boundary strictly after off */
				abort();
		}
		codec_hint_release(&h);
	}
	(void)codec_hint_parse(buf, size, 0, &h);
	codec_hint_release(&h);
	/* the write path: the first half as the head, the rest fed in pieces
	 * from where the walk stands; ranges stay sorted and in the file */
	if (codec_hint_parse(buf, size / 2, 0, &h) == 0) {
		for (unsigned k = 0; k < 64 && h.need && h.need < size; k++) {
			size_t n = size - h.need < 97 ? (size_t)(size - h.need) : 97;

			if (codec_hint_feed(&h, buf + h.need, n, h.need) < 0)
				break;
		}
		for (size_t i = 0; i < h.n; i++)
			if (!h.r[i].len || (i && h.r[i].off < h.r[i - 1].off))
				abort();
		codec_hint_release(&h);
	}
	(void)codec_hint_zip_entry(buf, size, 0, &r, &next);
	free(buf);
	return 0;
}
