"""BlockSettings: every option of a P-SpikeSSM block, in one place."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

#: A neuron or kernel: a built-in name or an import path (``pspike``, ``mypackage.MyNeuron``),
#: or ``{name: <name or path>, init_args: {...}}`` with the class's arguments. One value holds
#: the class and its arguments, so a config that changes the class replaces both. (Not
#: ``class_path``: jsonargparse 4.53 would try to import a ``class_path`` nested in a dataclass.)
ClassChoice = str | dict[str, str | dict[str, Any]]

#: ``block.norm``: BatchNorm over (B, L) per channel, LayerNorm over H per step, or none.
Norm = Literal["batch", "layer", "none"]
#: ``block.mixer``: the SpikeMixer's activation, or no mixer.
Mixer = Literal["gelu", "relu", "none"]
#: ``block.init``: the SSM initialisation (``lin`` for the ``diag`` kernel only).
Init = Literal["legs", "lin"]


#: Built-in neuron names renamed since the last release, old → new: the old name still works
#: for one release, with a DeprecationWarning, and a checkpoint saved under it still loads.
RENAMED_NEURONS = {"gelu": "real"}


def renamed_neuron(choice: ClassChoice, warn: bool = True) -> ClassChoice:
    """``choice`` (a ``block.neuron`` value) with a name of :data:`RENAMED_NEURONS` replaced by
    today's (warning when ``warn``); any other value unchanged."""
    name = choice.get("name") if isinstance(choice, Mapping) else choice
    if not isinstance(name, str) or name not in RENAMED_NEURONS:
        return choice
    new = RENAMED_NEURONS[name]
    if warn:
        warnings.warn(
            f"block.neuron={name!r} is deprecated and goes in the next release: use {new!r}, "
            "the same neuron",
            DeprecationWarning,
            stacklevel=4,
        )
    return new if isinstance(choice, str) else {**choice, "name": new}


def training_only(default: Any) -> Any:
    """A field that only shapes training (initial values, learning rates, dropout, random
    draws): a checkpoint loads into a model whose settings differ in it. Every other field
    decides the architecture and must match (:meth:`BlockSettings.architecture`)."""
    return field(default=default, metadata={"training_only": True})


@dataclass
class BlockSettings:
    """The options of every block of a :class:`~pspikessm.models.PSpikeSSM`.

    The defaults are the paper's block as the authors' code runs it: S4's DPLR kernel, the
    second branch, dropout at the official three places with tied masks, uniforms shared as the
    official code shares them. In a config they sit under ``model.backbone.init_args.block``.
    Each module of the block reads what it needs from this object, so a new option is one field
    here and one use where it acts.

    Attributes:
        d_state: state size N of every SSM neuron.
        kernel: SSM kernel (:data:`ClassChoice`): ``dplr`` (S4: HiPPO-LegS, bilinear, Cauchy),
            ``diag`` (S4D: Vandermonde, zero-order hold), or the import path of a kernel class
            of your own (``mypackage.kernels.MyKernel``; docs/forking.md); with options as
            ``{name: dplr, init_args: {shared: false, l_max: 2048}}`` (``dplr``:
            ``shared``, ``l_max``, ``dt_transform``, ``b_clip``; ``diag``: ``dt_transform``).
        init: SSM initialisation: ``legs`` (both kernels) or ``lin`` (``diag`` only).
        dt_min: smallest initial step dt (drawn log-uniformly in [dt_min, dt_max]).
        dt_max: largest initial step dt.
        two_sided: two-sided (non-causal) kernels, a causal and an anti-causal one per neuron
            (the official ``layer.bidirectional``); False for causal tasks and streaming.
        ssm_lr: learning rate of A, B and P, which take no weight decay.
        dt_lr: learning rate of dt (no weight decay); None: the global rate.
        c_lr: learning rate of C (global weight decay); None: the global rate. The official
            Image and Pathfinder experiments give dt and C the SSM rate (a scalar layer ``lr``).
        neuron: what draws the spikes at every site: ``pspike`` (Bernoulli spikes, the model),
            ``real`` (no spikes: S4/S4D), ``binary`` (Binary S4D), ``lif`` (LIF-SSM), or the
            import path of a neuron class of your own (:data:`ClassChoice`); with init
            arguments as ``{name: lif, init_args: {beta: 0.9}}``.
        second_branch: the official second SSM branch (their ``bidirectional: true``; it does
            not reverse time): own input spikes from ``a2 ⊙ x + b2`` (no norm), GELU without
            output affine; both branches' spikes are mixed 2H → H.
        share_uniforms: draw spikes from uniforms shared as the official code shares them: one
            tensor for branch 1's input spikes and both branches' output spikes, a second for
            branch 2's input spikes (one branch: input and output spikes use different ones).
            False: every spike site draws its own.
        mixer: SpikeMixer activation ``gelu`` (the paper's) or ``relu``, or ``none`` (no
            mixer: the output spikes enter the residual stream; one branch only).
        norm: ``batch``, ``layer`` or ``none``.
        prenorm: normalise branch 1's drive (True) or the residual sum (False).
        residual: add the block's output to its input (the official psMNIST has none).
        dropout: dropout rate at the official three places: on u before the GELU (untied),
            after the GELU and before the residual sum (tied when ``tie_dropout``).
        tie_dropout: one mask per example and neuron, the same at every time step.
        mask_output_padding: no output spikes at padded time steps. False: padded steps
            emit output spikes like any other, as the official code computes them (its
            reproduction configs set False): they enter the mixer, the residual stream and the
            batch statistics of the next norm. Input spikes are zero at padded steps either
            way (the official S4Block masks its input); pooling averages the valid steps.
    """

    d_state: int = 64
    kernel: ClassChoice = "dplr"
    init: Init = "legs"
    dt_min: float = training_only(1e-3)
    dt_max: float = training_only(1e-1)
    two_sided: bool = False
    ssm_lr: float = training_only(1e-3)
    dt_lr: float | None = training_only(None)
    c_lr: float | None = training_only(None)
    neuron: ClassChoice = "pspike"
    second_branch: bool = True
    share_uniforms: bool = training_only(True)
    mixer: Mixer = "gelu"
    norm: Norm = "batch"
    prenorm: bool = False
    residual: bool = True
    dropout: float = training_only(0.0)
    tie_dropout: bool = training_only(True)
    mask_output_padding: bool = True

    def __post_init__(self) -> None:
        # The CLI checks the Literal fields when it parses a config; this is for Python callers.
        for name, hint in get_type_hints(BlockSettings).items():
            value = getattr(self, name)
            if get_origin(hint) is Literal and value not in get_args(hint):
                raise ValueError(f"block.{name}={value!r}: expected one of {list(get_args(hint))}")
        if self.d_state < 1:
            raise ValueError(
                f"block.d_state={self.d_state}: expected a state size >= 1 (the paper's "
                "models use 64)"
            )
        self.neuron = renamed_neuron(self.neuron)
        if self.mixer == "none" and self.second_branch:
            raise ValueError("block.second_branch needs a mixer (2H → H); got mixer='none'")

    @property
    def branches(self) -> int:
        """Spike branches per block: 2 with the second branch, else 1."""
        return 2 if self.second_branch else 1

    def architecture(self) -> dict[str, Any]:
        """The fields that decide the architecture (all but those marked :func:`training_only`)."""
        values = asdict(self)
        return {f.name: values[f.name] for f in fields(self) if not f.metadata.get("training_only")}


# Choosing a class by a built-in name or by its import path, as configs do for neurons and kernels.


def build_choice(choice: ClassChoice, builtins: Mapping[str, str], option: str, *args: Any) -> Any:
    """The class ``choice`` names (:data:`ClassChoice`) built as ``cls(*args, **init_args)``.

    ``option`` (e.g. ``block.neuron``) names the setting in errors.
    """
    if isinstance(choice, str):
        name, init_args = choice, {}
    elif isinstance(choice, Mapping) and "name" in choice and set(choice) <= {"name", "init_args"}:
        name, init_args = choice["name"], dict(choice.get("init_args") or {})
    else:
        raise ValueError(
            f"{option}={choice!r}: expected a name, an import path, or "
            "{name: <name or path>, init_args: {...}}"
        )
    cls = resolve_class(name, builtins, option)
    try:
        return cls(*args, **init_args)
    except TypeError as error:  # an argument of another class
        raise ValueError(
            f"{option}.init_args={init_args} do not fit {option}={name!r} "
            f"({cls.__module__}.{cls.__qualname__}): {error}"
        ) from None


def resolve_class(value: str, builtins: Mapping[str, str], option: str) -> type:
    """The class named by ``value``: a key of ``builtins`` or an import path ``pkg.mod.Class``.

    ``builtins`` maps each built-in name to its import path, so built-in and user classes are
    resolved the same way. ``option`` (e.g. ``block.neuron``) names the setting in errors.
    """
    path = builtins.get(value, value)
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(
            f"{option}={value!r}: expected one of {sorted(builtins)} or the import path of a "
            "class (e.g. mypackage.module.MyClass)"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{option}={value!r}: cannot import {path}: {error}") from None
    if not isinstance(cls, type):
        raise ValueError(f"{option}={value!r}: {path} is not a class")
    return cls
