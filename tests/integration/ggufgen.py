#!/usr/bin/env python3
"""ggufgen.py PATH NTENSORS ROWS COLS SEED NAME [DRIFT]: a GGUF v3 file (the
layout llama.cpp writes: metadata key/value pairs, tensor infos, the data
section at the next multiple of general.alignment = 32) of NTENSORS BF16
tensors of ROWS x COLS seeded N(0, 0.02) weights, named blk.K.weight, with
general.name = NAME (another name: another header length, so every tensor
moves).  DRIFT > 0 multiplies a third of the values by 1 + DRIFT * N(0, 1)
(another seed): the next checkpoint of a fine-tune.  Also a seed for the
fuzz_hint corpus (small sizes)."""
import array, random, struct, sys


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kv, tensors):
    """A GGUF v3 file at path: the metadata pairs kv (encoded), then the
    tensors (name, dims fastest first, ggml type, data bytes), each data
    at an offset aligned to 32, the data section at the next multiple of
    32 after the infos (general.alignment = 32 is the caller's to put in
    kv).  Shared with ggufquant.py."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    datas, off = [], 0
    for name, dims, ggml_type, data in tensors:
        head += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", ggml_type, off)
        datas.append(data + b"\0" * (-len(data) % 32))
        off += len(datas[-1])
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head + b"".join(datas))


def main():
    path, ntens, rows, cols, seed, name = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
    drift = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    rng, drng = random.Random(seed), random.Random(seed + 1)
    kv = [(gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama")),
          (gstr("general.name") + struct.pack("<I", 8) + gstr(name)),
          (gstr("general.alignment") + struct.pack("<II", 4, 32)),
          (gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) +
           gstr("<s>") + gstr("</s>") + gstr("hello"))]
    tensors = []
    for k in range(ntens):
        vals = [rng.gauss(0.0, 0.02) for _ in range(rows * cols)]
        if drift:
            vals = [v * (1.0 + drift * drng.gauss(0.0, 1.0)) if i % 3 == 0 else v
                    for i, v in enumerate(vals)]
        f32 = array.array("f", vals).tobytes()
        bf16 = bytearray(2 * rows * cols)
        bf16[0::2] = f32[2::4]  # truncation to bf16: the high halves
        bf16[1::2] = f32[3::4]
        # dims fastest first; type 30 = BF16
        tensors.append(("blk.%d.weight" % k, (cols, rows), 30, bytes(bf16)))
    write_gguf(path, kv, tensors)


if __name__ == "__main__":
    main()
