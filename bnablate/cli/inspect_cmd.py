"""`bnablate inspect`: the resolved model's layer stack, output shapes, parameter count and each layer's init."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer
from rich.table import Table

from .common import OVERRIDES_HELP, complete_override, console


def inspect_cmd(overrides: Annotated[Optional[List[str]], typer.Argument(help=OVERRIDES_HELP, autocompletion=complete_override)] = None) -> None:
    """Print the layer stack of the model the overrides resolve to, with output shapes, parameter counts and the
    initialisation (model.init) each layer starts from."""
    import torch  # here, not at the top: `--help` and completion must not wait for it

    from ..data import class_count, dataset_shape
    from ..models import INITS, build_model, count_params, layer_inits
    from ..variants import config_label
    from .compose import compose_or_fail

    cfg = compose_or_fail(overrides or [])
    input_shape, _ = dataset_shape(cfg.dataset)  # (C, H, W); the user's own files: read from their headers
    model = build_model(cfg.model, cfg.variant, input_shape, class_count(cfg.dataset), int(cfg.seed), bn=cfg.bn)
    # The leaves in the order they run (a residual block: pre, branch, shortcut, add, post); empty containers are
    # not layers.
    leaves = [(n, m) for n, m in model.named_modules()
              if n and not list(m.children()) and not isinstance(m, torch.nn.Sequential)]
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in leaves]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *input_shape))
    for h in hooks:
        h.remove()
    t = Table(title=f"{cfg.model.name} on {cfg.dataset.name} {tuple(input_shape)} · variant "
                    f"{config_label(cfg)}", title_justify="left")
    for col in ("layer", "module", "output (C,H,W)", "params", "init"):
        t.add_column(col)
    init = str(cfg.model.init)
    drawn = layer_inits(model, init)  # conv/linear layers, and modules drawing their own parameters (ViT tokens)
    for name, m in leaves:
        n = sum(p.numel() for p in m.parameters())
        t.add_row(name, repr(m), "×".join(map(str, shapes.get(name, ()))), f"{n:,}" if n else "", drawn.get(name, ""))
    console.print(t)
    console.print(f"model.init={init}: {INITS[init]}; norm layers as built (γ 1, β 0 unless the variant or bn.* say)")
    for name, text in drawn.items():
        if name not in dict(leaves):
            console.print(f"  {name}: {text}")
    console.print(f"total trainable parameters: {count_params(model):,}")
    from ..same_stack import inspect_lines

    for line in inspect_lines(cfg):  # a placement that is another variant's stack for this model
        console.print(f"[yellow]same layers[/yellow]: {line}", highlight=False, soft_wrap=True)
