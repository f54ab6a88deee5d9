"""P-SpikeSSM model components. Tensors inside blocks are laid out (B, H, L)."""

from pspikessm.models.backbone import PSpikeSSM
from pspikessm.models.binary_neuron import HeavisideSpike
from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.branch import SpikeBranch
from pspikessm.models.clamp_fuse import ClampFuse
from pspikessm.models.diagonal_kernel import DiagonalSSMKernel
from pspikessm.models.dplr_kernel import DPLRSSMKernel
from pspikessm.models.lif_neuron import LIFNeuron
from pspikessm.models.neurons import is_spike_source, spike_samplers
from pspikessm.models.real_valued import RealValued
from pspikessm.models.settings import BlockSettings
from pspikessm.models.spike_mixer import SpikeMixer
from pspikessm.models.spike_sampler import SpikeSampler
from pspikessm.models.ssm_conv import SSMConvolution

__all__ = [
    "BlockSettings",
    "ClampFuse",
    "DPLRSSMKernel",
    "DiagonalSSMKernel",
    "HeavisideSpike",
    "LIFNeuron",
    "PSpikeSSM",
    "PSpikeSSMBlock",
    "RealValued",
    "SSMConvolution",
    "SpikeBranch",
    "SpikeMixer",
    "SpikeSampler",
    "is_spike_source",
    "spike_samplers",
]
