"""PCA of adaLN-Zero's scale and shift along the sampling trajectory (Fig. 3, Fig. 6, Appendix E).

What the paper did (App. E): sample images with a pretrained DiT-XL/2 (28 blocks), collect the scale
(γ1, γ2) and shift (β1, β2) vectors that each block's adaLN MLP produces at every sampling step, run
PCA on the collected vectors of each layer separately, and plot the explained-variance ratio of the
principal components for the layers at depths 7, 14, 21 and 28.  Finding: two components explain
almost all of the variance, from the 3rd on each usually explains < 5% — which motivates TD-LN's
interpolation between two learnt vectors (eq. (5)–(7)).

Here: :func:`record_modulations` puts forward hooks on the adaLN modulation of every adaLN-Zero block
(:class:`~dimr.nn.blocks.AdaLNModulation`, six chunks ``β1, γ1, α1, β2, γ2, α2`` in DiT's order);
:func:`collect_modulations` runs the package's DPM-Solver sampler (:func:`dimr.sample.sample_images`)
with them attached; :func:`explained_variance_ratio` is PCA by ``torch.linalg.svd`` of the centred
``[M, C]`` matrix (ratio_k = s_k² / Σ s²); :func:`plot_explained_variance` draws Fig. 6's grid (rows:
layers at depth quarters, :func:`quarter_layers`; columns: γ1, β1, γ2, β2).

Works on any adaLN-Zero model this package builds (DiT, U-ViT + adaLN-Zero, Table 2 row 3), from any
checkpoint it loads.  Note: in DiT the modulation is a function of ``c = embed(t) + embed(y)`` only,
not of the image, so the collected vectors vary with the time step and the class, not with the seed.
With classifier-free guidance the sampler's doubled batch contributes the null-class rows too (as a
guided DiT sampler does); ``conditional_only=True`` keeps the conditional half only.
"""
from __future__ import annotations

import contextlib
import math

import torch

__all__ = ["MODULATIONS", "CHUNK_INDEX", "adaln_layers", "quarter_layers", "record_modulations",
           "collect_modulations", "explained_variance_ratio", "adaln_pca", "components_for", "plot_explained_variance"]

#: the four collected vectors of each block: scale and shift of the two modulated norms
MODULATIONS = ("gamma1", "beta1", "gamma2", "beta2")
#: their position among the six chunks (β1, γ1, α1, β2, γ2, α2) an adaLN-Zero block's MLP produces
CHUNK_INDEX = {"beta1": 0, "gamma1": 1, "beta2": 3, "gamma2": 4}
SYMBOL = {"gamma1": "γ1 (scale 1)", "beta1": "β1 (shift 1)", "gamma2": "γ2 (scale 2)", "beta2": "β2 (shift 2)"}


def adaln_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The six-chunk adaLN modulations of ``model``'s blocks, in depth order (layer ``k`` is
    element ``k − 1``).  DiT's final layer (two chunks) is not a block and is left out.
    Raises ``ValueError`` for a model without adaLN-Zero blocks (e.g. a TD-LN DiMR)."""
    from ..nn.blocks import AdaLNModulation

    layers = []
    for module in model.modules():
        mod = getattr(module, "adaln", None)
        if isinstance(mod, AdaLNModulation) and mod.n_chunks == 6 and not isinstance(module, AdaLNModulation):
            layers.append(mod)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no adaLN-Zero blocks: nothing to analyse "
                         "(use an adaLN-Zero model such as DiT-T/2, DiT-XL/2 or Table2-T/row2)")
    return layers


def quarter_layers(depth: int) -> list[int]:
    """Layers at the depth quarters, 1-based: ``⌈depth·q/4⌉`` for q = 1..4 (7, 14, 21, 28 for 28)."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    return sorted({max(1, math.ceil(depth * q / 4)) for q in range(1, 5)})


@contextlib.contextmanager
def record_modulations(model: torch.nn.Module, layers: list[int] | None = None, conditional_only: bool = False):
    """Within the ``with`` block, every forward of the chosen ``layers`` (1-based; default all)
    appends its γ1, β1, γ2, β2 (each ``[B, C]``, float32, CPU) to the yielded dict
    ``{layer: {name: [tensors]}}``.  ``conditional_only`` keeps the first half of each batch
    (the conditional half of a classifier-free-guidance batch)."""
    mods = adaln_layers(model)
    chosen = layers or list(range(1, len(mods) + 1))
    bad = [k for k in chosen if not 1 <= k <= len(mods)]
    if bad:
        raise ValueError(f"layers {bad} outside 1..{len(mods)}")
    store = {k: {name: [] for name in MODULATIONS} for k in chosen}

    def hook_for(k):
        def hook(_module, _inputs, output):
            chunks = output
            for name in MODULATIONS:
                v = chunks[CHUNK_INDEX[name]].detach()
                if conditional_only:
                    v = v[: v.shape[0] // 2]
                store[k][name].append(v.float().cpu())
        return hook

    handles = [mods[k - 1].register_forward_hook(hook_for(k)) for k in chosen]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def collect_modulations(denoiser, labels: torch.Tensor, sampler, seed: int = 0,
                        batch_size: int = 64, layers: list[int] | None = None, conditional_only: bool = False,
                        device="cpu", progress: bool = True) -> dict[int, dict[str, torch.Tensor]]:
    """Sample ``len(labels)`` images with :func:`dimr.sample.sample_images` and return the recorded
    modulations of ``denoiser``'s network, concatenated: ``{layer: {name: [M, C]}}`` with ``M`` = (sampler steps) × (rows per
    forward) summed over batches."""
    from ..sample import sample_images

    with record_modulations(denoiser.net, layers, conditional_only) as store:
        sample_images(denoiser, labels, sampler, seed=seed, batch_size=batch_size, device=device, progress=progress)
    return {k: {name: torch.cat(v) for name, v in d.items()} for k, d in store.items()}


def explained_variance_ratio(x: torch.Tensor) -> torch.Tensor:
    """PCA of ``x [M, D]`` (rows = observations): explained-variance ratio of each principal
    component, ``[min(M, D)]``, descending, summing to 1 (all zeros for constant data).

    Computed in float64 from the singular values of the centred matrix: ratio_k = s_k² / Σ_j s_j²."""
    if x.ndim != 2:
        raise ValueError(f"expected [M, D], got {tuple(x.shape)}")
    xc = x.double() - x.double().mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(xc)
    total = (s ** 2).sum()
    return (s ** 2 / total) if total > 0 else torch.zeros_like(s)


def adaln_pca(modulations: dict[int, dict[str, torch.Tensor]]) -> dict[int, dict[str, torch.Tensor]]:
    """:func:`explained_variance_ratio` of every (layer, γ/β) matrix collected by :func:`collect_modulations`."""
    return {k: {name: explained_variance_ratio(x) for name, x in d.items()} for k, d in modulations.items()}


def components_for(ratio: torch.Tensor, share: float = 0.9) -> int:
    """How many leading principal components explain at least ``share`` of the variance (``ratio`` from
    :func:`explained_variance_ratio`, descending); 0 for constant data."""
    cumulative = torch.cumsum(ratio, 0)
    if len(ratio) == 0 or float(cumulative[-1]) == 0.0:
        return 0
    return int(torch.searchsorted(cumulative, torch.tensor(share - 1e-12, dtype=cumulative.dtype)).item()) + 1


def plot_explained_variance(pca: dict[int, dict[str, torch.Tensor]], layers: list[int] | None = None,
                            n_components: int = 10, title: str | None = None, depth: int | None = None):
    """Fig. 6's layout: one row per layer, one column per γ1, β1, γ2, β2; bars are the explained-variance
    ratios of the first ``n_components`` PCs, with the share of the first two written on each panel."""
    import matplotlib.pyplot as plt

    layers = layers or sorted(pca)
    fig, axes = plt.subplots(len(layers), len(MODULATIONS), figsize=(3.0 * len(MODULATIONS), 2.1 * len(layers)),
                             squeeze=False, sharey=True)
    for r, k in enumerate(layers):
        for c, name in enumerate(MODULATIONS):
            ax = axes[r][c]
            ratios = pca[k][name][:n_components].numpy()
            ax.bar(range(1, len(ratios) + 1), ratios, color="tab:blue" if name.startswith("gamma") else "tab:orange")
            top2 = float(pca[k][name][:2].sum())
            ax.text(0.97, 0.92, f"PC1+PC2: {top2:.1%}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_xticks(range(1, len(ratios) + 1))
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(SYMBOL[name], fontsize=9)
            if c == 0:
                ax.set_ylabel(f"layer {k}" + (f"/{depth}" if depth else "") + "\nexplained var.", fontsize=8)
            if r == len(layers) - 1:
                ax.set_xlabel("principal component", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
