"""Loss, logits and gradient norm of v1.0 (bn recipe) in its first steps, per bypass variant (see README.md)."""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from squeezenet import create_model
from squeezenet.data.augment import random_resized_crop, random_resized_crop_params, to_nchw
from squeezenet.data.cache import cache_side, decode_cached
from squeezenet.data.folders import list_samples
from squeezenet.models.preprocessing import preset

torch.set_num_threads(1)
variant, lr, steps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
d = decode_cached(list_samples("../shared/data/imagenette2/train"), cache_side(64), progress=False)
labels = torch.as_tensor(np.asarray(d.labels))
torch.manual_seed(0)
kw = {"num_classes": 10, "batch_norm": True, "final_relu": False, "bypass": variant}
m = create_model("squeezenet1_0", **kw)
pre = preset("torchvision", 64)
opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, weight_decay=2e-4)
g = torch.Generator().manual_seed(0)
for step in range(steps):
    for pg in opt.param_groups:
        pg["lr"] = lr * min(1, (step + 1) / 73)  # warm-up over one epoch (73 steps), as in the recipe
    j = torch.randint(len(labels), (128,), generator=g)
    x = pre.normalize(random_resized_crop(to_nchw(d.images[j.numpy()]), 64,
                                          random_resized_crop_params(128, g, (0.35, 1.0))))
    out = m(x)
    loss = F.cross_entropy(out, labels[j], label_smoothing=0.1)
    opt.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(m.parameters(), 1e9)  # measures only: the bound is never reached
    opt.step()
    if step % 10 == 9:
        acc = (out.argmax(1) == labels[j]).float().mean()
        print(variant, step + 1, f"loss {loss.item():.3f} acc {acc:.3f} logit_std {out.std().item():.2f} "
              f"gnorm {gn:.2f}", flush=True)
