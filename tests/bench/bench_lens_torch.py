"""The same training micro-step as bench_lens, in PyTorch, on this machine: the
comparison point for tlens' numbers, measured in the same `bench` run.

A pythia-70m-shaped GPT-NeoX (d 512, 6 layers, 8 heads, V 50304, parallel residual,
rotary on a quarter of each head, untied unembedding) with random weights, T 512,
batch 1, 2 threads, fp32. One micro-step as the tuned-lens package runs it: the
frozen model's forward under no_grad (all hidden states and the final logits), then
for each of the 6 streams the translator (h + W h + b), the final LayerNorm, the
unembedding and KL(model || lens) from log-softmaxes, the losses summed and one
backward into the translators. Prints the best of 3 steps after a warm-up, and the
peak RSS of the process."""
import resource
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("bench_lens_torch: PyTorch is not installed here (Debian: python3-torch); skipped")
    sys.exit(0)

L, D, H, V, T, FF = 6, 512, 8, 50304, 512, 2048
HD = D // H
ROT = HD // 4
torch.set_num_threads(2)
torch.manual_seed(0)


def randn(*shape, scale=0.02):
    return torch.randn(*shape) * scale


embed = randn(V, D)
unembed = randn(V, D)
layers = [
    dict(ln1=(torch.ones(D), torch.zeros(D)), ln2=(torch.ones(D), torch.zeros(D)),
         qkv=(randn(3 * D, D), torch.zeros(3 * D)), o=(randn(D, D), torch.zeros(D)),
         up=(randn(FF, D), torch.zeros(FF)), down=(randn(D, FF), torch.zeros(D)))
    for _ in range(L)
]
final_ln = (torch.ones(D), torch.zeros(D))
inv = 1.0 / (10000 ** (torch.arange(0, ROT, 2).float() / ROT))
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
mask = torch.full((T, T), float("-inf")).triu(1)


def rotary(x):  # x [H, T, HD]: rotate-half on the first ROT dims
    r, p = x[..., :ROT], x[..., ROT:]
    r1, r2 = r[..., : ROT // 2], r[..., ROT // 2:]
    return torch.cat([r * cos + torch.cat([-r2, r1], -1) * sin, p], -1)


@torch.no_grad()
def model_forward(ids):
    x = embed[ids]
    hidden = [x]
    for i, w in enumerate(layers):
        a = F.layer_norm(x, (D,), *w["ln1"])
        qkv = F.linear(a, *w["qkv"]).view(T, H, 3, HD).permute(2, 1, 0, 3)
        q, k, v = rotary(qkv[0]), rotary(qkv[1]), qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / HD ** 0.5 + mask, -1) @ v
        att = F.linear(att.transpose(0, 1).reshape(T, D), *w["o"])
        m = F.linear(F.gelu(F.linear(F.layer_norm(x, (D,), *w["ln2"]), *w["up"])), *w["down"])
        x = x + att + m
        hidden.append(x if i < L - 1 else F.layer_norm(x, (D,), *final_ln))
    return hidden, hidden[-1] @ unembed.T


W = [torch.zeros(D, D, requires_grad=True) for _ in range(L)]
b = [torch.zeros(D, requires_grad=True) for _ in range(L)]


def step(ids):
    t0 = time.perf_counter()
    hidden, logits = model_forward(ids)
    target = logits.log_softmax(-1)
    total = 0
    for i in range(L):
        h = hidden[i]
        lens_logits = F.layer_norm(h + F.linear(h, W[i], b[i]), (D,), *final_ln) @ unembed.T
        total = total + torch.sum(target.exp() * (target - lens_logits.log_softmax(-1)), -1).mean()
    total.backward()
    return time.perf_counter() - t0


ids = torch.randint(0, V, (T,))
times = [step(ids) for _ in range(4)][1:]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"bench_lens_torch: PyTorch {torch.__version__}, {torch.get_num_threads()} threads, pythia-70m shape, T {T}:"
      f" micro-step best {min(times):.3f} s (of {', '.join(f'{t:.2f}' for t in times)}), peak RSS {rss:.0f} MB")
