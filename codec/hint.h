/*
 * hint.h - file-format hints for the codec: where tensors live in a file
 * and what their element type and row length are.
 *
 * Pure parsers over bytes the caller already has (no I/O).  Formats:
 *   safetensors  u64 LE header length n, JSON header of n bytes
 *                ({"name": {"dtype", "shape", "data_offsets"}, ...}), then
 *                the tensor bytes; data_offsets count from 8 + n.
 *   torch.save   a zip archive whose stored (uncompressed) entries named
 *                "<archive>/data/<N>" hold tensor storages.  Their dtype
 *                and row length come from the first entry, the pickle
 *                "<archive>/data.pkl": a bounded walk over its opcodes
 *                maps each storage key to its storage class (Float /
 *                Half / BFloat16Storage: fp32 / fp16 / bf16; any other
 *                class: AUTO) and to the row of the largest tensor
 *                rebuilt from it (_rebuild_tensor_v2 with a dense last
 *                dimension: stride[-2], i.e. size[-1] when contiguous).
 *                A storage whose entry is not exactly numel elements of
 *                that dtype, a pickle not whole in CODEC_HINT_MAX_HEADER
 *                bytes of head, or one the
 *                walk cannot read (unknown opcode, malformed, over a
 *                bound) leave the ranges AUTO with row 0, as without it.
 *                A head that ends inside data.pkl is -EAGAIN (need: twice
 *                the head): without the pickle no walk can go on.
 *   GGUF         llama.cpp's model file: metadata key/value pairs, then
 *                tensor infos (name, dims fastest first, ggml type, offset
 *                in the data section, which starts at the next multiple of
 *                general.alignment, default 32).  F32, F16 and BF16
 *                tensors get their dtype and a row of dims[0]; integer and
 *                the block-quantized types (Q4_0 .. Q8_1, Q2_K .. Q8_K,
 *                the IQ types IQ1_S .. IQ4_XS, TQ1_0, TQ2_0, MXFP4) a
 *                range of dtype OTHER (tensor-boundary cuts, names for
 *                series references); types whose layout is not known
 *                here (the removed Q4_0_4_4 etc.) no range.  The whole head up to the data section is
 *                needed (-EAGAIN: need grows by half each time).
 *   NumPy .npy   "\x93NUMPY", version, header length, a Python dict
 *                literal ({'descr': '<f4', 'fortran_order': False,
 *                'shape': (3, 4), }); the array follows.  One range: '<f4'
 *                fp32, '<f2' fp16, 'bfloat16' bf16 (row: the fastest
 *                dimension), a 2-byte void ('<V2': how np.save writes
 *                ml_dtypes' bfloat16) AUTO, other plain dtypes
 *                OTHER; object arrays and structured dtypes none.  No key
 *                (the header names no array: it is a dtype and a shape).
 *   NumPy .npz   a zip (format TORCH_ZIP: the same walk) whose stored
 *                entries "<name>.npy" are .npy files: a range per array
 *                (after its own header), keyed by the entry's name.  The
 *                array header gives the entry's length where the zip's
 *                does not yet (Python's zipfile writes zero sizes first
 *                and seeks back for the real ones; streamed entries put
 *                them in a descriptor after the data).  np.savez_compressed
 *                deflates its entries: no ranges.
 * Every length and offset read from the file is bounds-checked; a hostile
 * header yields -EBADMSG, never a crash or an unbounded allocation (the
 * pickle walk allocates tables bounded by its length and fixed limits).
 *
 * Errors are negative errno: -ENOENT (not a recognised format), -EAGAIN
 * (need more bytes, see need), -EBADMSG (malformed), -ENOMEM, -EINVAL.
 */
#ifndef MIXFS_CODEC_HINT_H
#define MIXFS_CODEC_HINT_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

enum codec_hint_format {
	CODEC_HINT_UNKNOWN = 0,
	CODEC_HINT_SAFETENSORS = 1,
	CODEC_HINT_TORCH_ZIP = 2, /* any zip: torch.save, NumPy's .npz */
	CODEC_HINT_GGUF = 3,
	CODEC_HINT_NPY = 4
};

/* Largest safetensors header accepted (the format's own limit). */
#define CODEC_HINT_MAX_HEADER (100u << 20)
/* Most ranges one parse returns. */
#define CODEC_HINT_MAX_RANGES (1u << 20)

struct codec_hint_range {
	uint64_t off;       /* file offset of the first byte */
	uint64_t len;       /* bytes, > 0 */
	int dtype;          /* enum codec_dtype, CODEC_DTYPE_AUTO if unknown */
	uint32_t row_elems; /* elements per row (safetensors: shape[-1]), 0 if unknown */
	/* the tensor's name within its format, 0 if unknown: safetensors and
	 * GGUF, a 64-bit FNV-1a hash of the name; torch zip, 1 + the storage key
	 * of "<archive>/data/<key>" (the archive prefix is the file's name and
	 * is left out); an .npz array, the hash of its entry's name (a .npy
	 * file has none).  Equal keys (and lengths) in two versions of a file
	 * name the same tensor wherever it lies: series references follow it. */
	uint64_t key;
};

struct codec_hint {
	int format;                 /* enum codec_hint_format */
	struct codec_hint_range *r; /* sorted by off; owned, see release */
	size_t n;
	/* -EAGAIN: bytes of the file's head needed for the parse to finish.
	 * 0 on success for safetensors; for a zip the offset of the
	 * first local header beyond head_len (codec_hint_feed takes the walk
	 * on from there as the writes arrive), 0 when the walk ended. */
	uint64_t need;
	size_t cap;     /* ranges allocated in r */
	void *torch;    /* torch zip: data.pkl's storage table (owned), or NULL */
	uint64_t dsize; /* zip: need is at the data descriptor of a
	                   streamed entry of dsize bytes (else 0) */
};

/* Parse the first head_len bytes of a file of file_size bytes (0 if not
 * known yet: offsets are then not checked against it).  On 0, *h holds
 * the ranges (release with codec_hint_release); on error *h holds none. */
int codec_hint_parse(const void *head, size_t head_len, uint64_t file_size,
                     struct codec_hint *h);
void codec_hint_release(struct codec_hint *h);
/* Bytes of memory h holds (itself, its ranges, a torch zip's storage
 * table), for callers that bound what they keep; 0 for NULL. */
size_t codec_hint_mem(const struct codec_hint *h);

/* Parse one zip local file header found at file offset off (buf holds
 * the bytes from off on).  Sets *next to the offset of the following
 * header.  Returns 1 and fills *r for a stored tensor entry, 0 for any
 * other entry, -ENOENT when buf does not start with a local header (the
 * central directory, say), -EAGAIN when len is too short, -EBADMSG.
 * torch.save streams entries (sizes in a data descriptor after the data):
 * when such a tensor's end is not in buf, returns 2 with r->off = the
 * data start, r->len = 0 and *next = 0; call again with more bytes.
 * One torch entry alone says nothing of the dtype: r->dtype is AUTO.  An
 * .npz array has its own header: r is the array (dtype, row and key
 * from it; for a streamed one whose end is not in buf, r->len is known
 * and 2 is returned all the same). */
int codec_hint_zip_entry(const void *buf, size_t len, uint64_t off,
                         struct codec_hint_range *r, uint64_t *next);

/* A zip (torch.save, .npz): the entries after the parsed head, as the
 * file's bytes arrive in order.  buf holds file bytes [off, off + len);
 * while h->need lies in them, the entries from there get ranges (appended,
 * in file order) and h->need moves past them.  A streamed tensor whose end
 * is not in buf ends where data.pkl's storage size (an .npz array: its
 * header) says; its descriptor is checked when its bytes arrive.  Returns the ranges added (0: buf does not reach h->need,
 * or ends inside a header), or a negative errno: the walk is then over
 * (need = 0) and the ranges so far stay valid. */
int codec_hint_feed(struct codec_hint *h, const void *buf, size_t len, uint64_t off);

/* Codec parameters for the chunk at file bytes [off, off + len): the
 * range overlapping it most gives dtype, element phase and row length.
 * Returns 0, or -ENOENT (no range overlaps; p->dtype is set to AUTO).
 * Other fields of *p are left alone. */
int codec_hint_chunk(const struct codec_hint *h, uint64_t off, uint64_t len,
                     struct codec_params *p);

/* The first tensor boundary after file offset off: the start or the end of
 * a range at least min_len bytes long, so a chunker can cut there (chunks
 * then hold one tensor's bytes, and a tensor that did not change between
 * two checkpoints gives the same chunks even when what lies between the
 * tensors did, like torch.save's entry names).  0 if there is none within
 * the next 16 MiB. */
uint64_t codec_hint_next_cut(const struct codec_hint *h, uint64_t off, uint64_t min_len);

#ifdef __cplusplus
}
#endif
#endif
