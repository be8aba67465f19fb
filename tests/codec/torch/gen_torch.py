#!/usr/bin/python3
# Writes the torch.save fixtures of tests/codec/test_hint_torch.c.  Run once
# by hand with a Python that has torch (Debian: /usr/bin/python3 with
# python3-torch; these were made with torch 1.13):
#   cd tests/codec/torch && /usr/bin/python3 gen_torch.py
# The tests read the committed bytes and need no torch.  Storage keys
# ("data/<key>" entries) follow the order in which torch.save meets the
# storages, listed next to each file.
import torch

torch.manual_seed(0)

# data/0 fp32 4x6 (row 6), data/1 fp32 6 (row 6)
torch.save({'w': torch.randn(4, 6), 'b': torch.randn(6)}, 'f32.pt')
# data/0 fp16 2x300 (row 300: BININT2 sizes)
torch.save({'w': torch.randn(2, 300).half()}, 'f16.pt')
# data/0 bf16 3x5 (row 5)
torch.save({'w': torch.randn(3, 5).bfloat16()}, 'bf16.pt')
# data/0 int64 10, data/1 float64 2x3: neither has a codec dtype (AUTO)
torch.save({'i': torch.arange(10), 'f64': torch.randn(2, 3).double()}, 'i64.pt')

# One storage, many tensors: data/0 is base's 8x10 (row 10 from base,
# the largest tensor); data/1 a 0-dim tensor (row 0); data/2 only seen
# through a transpose (row 0); data/3 only through a column slice 4x3 of
# a 4x10 tensor (row 10, the storage's row pitch); data/4 only through a
# step slice (row 0)
base = torch.randn(8, 10)
torch.save({'view': base[2:4], 'row': base[1], 'base': base, 't': base.t(),
            'scalar': torch.tensor(3.5), 'nc': base[:, ::2],
            'tonly': torch.randn(6, 4).t(), 'cols': torch.randn(4, 10)[:, :3],
            'step': torch.randn(12)[::3]}, 'shared.pt')

# A model and its AdamW state after one step: data/0.. in state-dict order
m = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
opt = torch.optim.AdamW(m.parameters())
m(torch.randn(2, 5)).sum().backward()
opt.step()
torch.save({'model': m.state_dict(), 'optim': opt.state_dict(), 'epoch': 3}, 'adamw.pt')

# Pickle protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL
torch.save({'w': torch.randn(3, 4).half(), 'b': torch.randn(4)}, 'p4.pt', pickle_protocol=4)
