#!/usr/bin/python3
# Three torch.save checkpoints with distinct names (ckpt-000000.pt ..): the
# cached ckpt.py checkpoint, each next one perturbed by (1 + 1e-4*N(0,1)) in
# its float tensors.  Usage: /usr/bin/python3 tools/bench/torch_names.py DIR
import torch, sys
sd = torch.load('/root/.cache/mixfs-bench/ckpt.pt')
g = torch.Generator().manual_seed(0)
def perturb(o):
    if isinstance(o, torch.Tensor) and o.is_floating_point() and o.numel() > 1:
        return o + torch.randn(o.shape, generator=g) * 1e-4 * o.abs()
    if isinstance(o, dict): return {k: perturb(v) for k, v in o.items()}
    if isinstance(o, list): return [perturb(v) for v in o]
    return o
for k in range(3):
    torch.save(sd, f"{sys.argv[1]}/ckpt-{k:06d}.pt")
    sd = perturb(sd)
