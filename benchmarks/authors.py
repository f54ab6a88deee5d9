"""The authors' ListOps model (NeuroCompLab-psu/PSpikeSSMs, HEAD 8f7a954), built from a checkout.

Nothing of their code is in this repository: :func:`import_authors` loads their package
``src`` from a local checkout (``--authors PATH``, not put on ``sys.path``) and imports their
classes. Their Hydra experiment
``configs/experiment/lra/pSpikeSSM-listops.yaml`` is written out below as plain settings, each
with the file and key it comes from, and their classes are instantiated directly.

Optional needs of this module only (not of the package): ``einops`` and ``omegaconf``
(``pip install einops omegaconf``). ``spikingjelly`` (imported by their block for an unused
``PoissonEncoder``) and ``hydra`` (only ``hydra.utils.get_method``) are stubbed in
``sys.modules``; their CUDA/pykeops Cauchy kernels are absent, so their code falls back to its
pure-torch ``cauchy_naive``.
"""

from __future__ import annotations

import copy
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from pspikessm.optim import periodic_cosine_lambda

AUTHORS_HEAD = "8f7a954"
MODEL_FILE = "src/models/sequence/backbones/model.py"

# configs/model/layer/pSpikeSSM.yaml, overridden by configs/model/base.yaml `layer:` and then by
# configs/experiment/lra/pSpikeSSM-listops.yaml `model.layer:` (Hydra's merge order).
LAYER: dict = {
    "_name_": "pSpikeSSM",  # layer/pSpikeSSM.yaml _name_ (registry: S4Block)
    "d_state": 16,  # experiment model.layer.d_state
    "channels": 1,  # layer/pSpikeSSM.yaml
    "bidirectional": True,  # experiment model.layer.bidirectional (two-sided kernel)
    "gate": None,  # layer/pSpikeSSM.yaml
    "gate_act": "id",  # layer/pSpikeSSM.yaml
    "bottleneck": None,  # layer/pSpikeSSM.yaml
    "activation": "gelu",  # layer/pSpikeSSM.yaml (GELU on u inside S4Block)
    "mult_act": None,  # layer/pSpikeSSM.yaml
    "final_act": "glu",  # layer/pSpikeSSM.yaml (its output_linear is never called)
    "postact": None,  # layer/pSpikeSSM.yaml
    "initializer": None,  # layer/pSpikeSSM.yaml
    "weight_norm": False,  # layer/pSpikeSSM.yaml
    "tie_dropout": True,  # layer/pSpikeSSM.yaml ${model.tie_dropout}; model/pSpikeSSM.yaml
    "layer": "fftconv",  # layer/pSpikeSSM.yaml
    "mode": "nplr",  # layer/pSpikeSSM.yaml (SSMKernelDPLR)
    "init": "legs",  # experiment model.layer.init
    "measure": None,  # layer/pSpikeSSM.yaml
    "rank": 1,  # layer/pSpikeSSM.yaml
    "dt_min": 0.001,  # experiment model.layer.dt_min
    "dt_max": 0.1,  # experiment model.layer.dt_max
    "dt_transform": "softplus",  # layer/pSpikeSSM.yaml
    "lr": {"dt": None, "A": 0.001, "B": 0.001},  # experiment model.layer.lr
    "wd": 0.0,  # layer/pSpikeSSM.yaml
    "n_ssm": 1,  # experiment model.layer.n_ssm (A, B, P shared by the layer)
    "drop_kernel": 0.0,  # layer/pSpikeSSM.yaml
    "deterministic": False,  # layer/pSpikeSSM.yaml
    "l_max": 2048,  # layer/pSpikeSSM.yaml ${dataset.__l_max}; dataset/listops.yaml l_max
    "verbose": False,  # layer/pSpikeSSM.yaml
}

# SequenceModel: configs/model/base.yaml, model/pSpikeSSM.yaml, then the experiment's `model:`.
BACKBONE: dict = {
    "d_model": 128,  # experiment model.d_model
    "n_layers": 4,  # experiment model.n_layers
    "transposed": False,  # model/pSpikeSSM.yaml
    "dropout": 0.0,  # experiment model.dropout
    "tie_dropout": True,  # model/pSpikeSSM.yaml
    "prenorm": False,  # experiment model.prenorm
    "bidirectional": True,  # experiment model.bidirectional (the second branch)
    "residual": "R",  # base.yaml residual
    "norm": "batch",  # experiment model.norm
    "pool": {"_name_": "pool", "stride": 1, "expand": None},  # base.yaml pool (identity)
    "track_norms": True,  # base.yaml
}

# Decoder: configs/pipeline/imdb.yaml `decoder:` (sequence, use_lengths) with the experiment's
# `decoder.mode: pool`; encoder: imdb.yaml `encoder: embedding` (nn.Embedding(n_tokens, d_model)).
DECODER: dict = {"mode": "pool", "use_lengths": True, "l_output": 0}  # ListOps l_output = 0
# configs/config.yaml train.optimizer_param_grouping
PARAM_GROUPING: dict = {"bias_weight_decay": False, "normalization_weight_decay": False}
SPECIALS = ("<pad>", "<unk>", "<eos>")  # src/dataloaders/lra.py ListOps (append_eos=True)


def _stub_modules() -> None:
    """Stand-ins for the two imports their model code needs but never uses for ListOps."""
    if "spikingjelly" not in sys.modules:

        class PoissonEncoder(nn.Module):  # constructed in forward, never called
            pass

        names = ("", ".clock_driven", ".clock_driven.neuron", ".activation_based")
        for name in names:
            sys.modules["spikingjelly" + name] = types.ModuleType("spikingjelly" + name)
        neuron = sys.modules["spikingjelly.clock_driven.neuron"]
        neuron.MultiStepLIFNode = neuron.MultiStepIFNode = None
        based = sys.modules["spikingjelly.activation_based"]
        for part in ("neuron", "functional", "surrogate", "layer"):
            setattr(based, part, types.SimpleNamespace())
        based.encoding = types.SimpleNamespace(PoissonEncoder=PoissonEncoder)
    if "hydra" not in sys.modules:

        def get_method(path: str):
            module, _, name = path.rpartition(".")
            return getattr(importlib.import_module(module), name)

        hydra = types.ModuleType("hydra")
        hydra.utils = types.SimpleNamespace(get_method=get_method, get_class=get_method)
        sys.modules["hydra"] = hydra


def _register_package(name: str, folder: Path) -> None:
    """Make ``import name.x`` find ``folder/x.py``: their code imports itself as the top-level
    package ``src`` (a namespace package, no ``__init__.py``), so ``src`` is registered as a
    package whose path is their folder, without putting the checkout on ``sys.path``."""
    loaded = sys.modules.get(name)
    if loaded is not None and str(folder) in list(getattr(loaded, "__path__", [])):
        return
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    sys.modules[name] = importlib.util.module_from_spec(spec)


def import_authors(path: str | Path) -> types.SimpleNamespace:
    """Import the authors' classes from the checkout at ``path``; errors name what is missing."""
    root = Path(path).resolve()
    if not (root / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"{root / MODEL_FILE}: not found; --authors must name a checkout "
            f"of NeuroCompLab-psu/PSpikeSSMs (HEAD {AUTHORS_HEAD})"
        )
    for needed in ("einops", "omegaconf"):
        if importlib.util.find_spec(needed) is None:
            raise ModuleNotFoundError(
                f"the authors' model needs {needed!r}: pip install einops omegaconf"
            )
    _stub_modules()
    _register_package("src", root / "src")
    model = importlib.import_module("src.models.sequence.backbones.model")
    if not Path(model.__file__).resolve().is_relative_to(root):
        raise ImportError(f"'src' resolved to {model.__file__}, not to the checkout {root}")
    return types.SimpleNamespace(
        SequenceModel=model.SequenceModel,
        SequenceDecoder=importlib.import_module("src.tasks.decoders").SequenceDecoder,
        add_optimizer_hooks=importlib.import_module("src.utils.optim_groups").add_optimizer_hooks,
        ssm=importlib.import_module("src.models.sequence.kernels.ssm"),
        block=importlib.import_module("src.models.sequence.backbones.block"),
    )


class AuthorsListOps(nn.Module):
    """Their ListOps network: Embedding → SequenceModel → SequenceDecoder (mean over lengths).

    Inputs: ``tokens`` (B, L) int64 in their vocabulary, ``lengths`` (B,). Outputs: (B, 10).
    """

    def __init__(
        self, authors: types.SimpleNamespace, vocab_size: int, layer: dict, backbone: dict
    ) -> None:
        super().__init__()
        # Their train.py builds the backbone first, then the encoder, then the decoder.
        self.backbone = authors.SequenceModel(layer=copy.deepcopy(layer), **backbone)
        self.encoder = nn.Embedding(vocab_size, backbone["d_model"])
        self.decoder = authors.SequenceDecoder(backbone["d_model"], d_output=10, **DECODER)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.encoder(tokens)  # (B L H)
        y, _ = self.backbone(x, lengths=lengths, state=None)  # (B L H)
        return self.decoder(y, state=None, lengths=lengths)  # (B 10)


def build_authors_model(
    authors: types.SimpleNamespace, vocab_size: int, backbone: dict | None = None, **layer
) -> AuthorsListOps:
    """Their ListOps model; ``layer`` and ``backbone`` replace keys of :data:`LAYER` (e.g.
    ``l_max``) and :data:`BACKBONE` (ablations)."""
    return AuthorsListOps(authors, vocab_size, {**LAYER, **layer}, {**BACKBONE, **(backbone or {})})


def authors_optimizer(
    authors: types.SimpleNamespace,
    model: AuthorsListOps,
    lr: float,
    weight_decay: float,
    warmup: int,
    total: int,
    grouping: dict | None = None,
):
    """Their ``configure_optimizers`` (train.py): AdamW groups from the ``_optim`` tags after
    ``add_optimizer_hooks`` on the backbone (``grouping``: its options, default theirs), and
    transformers' cosine schedule with warm-up (this package's ``periodic_cosine_lambda``,
    the same formula)."""
    authors.add_optimizer_hooks(model.backbone, **(grouping or PARAM_GROUPING))
    everything = list(model.parameters())
    settings = {"lr": lr, "weight_decay": weight_decay, "betas": (0.9, 0.999)}
    plain = [p for p in everything if not hasattr(p, "_optim")]
    optimizer = torch.optim.AdamW(plain, **settings)
    tags = sorted(
        dict.fromkeys(frozenset(p._optim.items()) for p in everything if hasattr(p, "_optim"))
    )
    for tag in tags:
        params = [p for p in everything if getattr(p, "_optim", None) == dict(tag)]
        optimizer.add_param_group({"params": params, **settings, **dict(tag)})
    return optimizer, torch.optim.lr_scheduler.LambdaLR(
        optimizer, periodic_cosine_lambda(warmup, total)
    )


def authors_vocabulary(counts: Mapping[str, int]) -> list[str]:
    """torchtext's ``build_vocab_from_iterator`` as their ListOps loader calls it, from the
    training split's token ``counts``: the specials first, then the tokens by falling count,
    ties alphabetical."""
    ordered = sorted(
        ((token, n) for token, n in counts.items() if token not in SPECIALS),
        key=lambda item: (-item[1], item[0]),
    )
    return [*SPECIALS, *(token for token, _ in ordered)]
