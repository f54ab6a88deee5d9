"""P-SpikeSSM model components. Tensors inside blocks are laid out (B, H, L)."""

from pspikessm.models.backbone import PSpikeSSM
from pspikessm.models.block import ClampFuse, PSpikeSSMBlock, SpikeBranch
from pspikessm.models.convolution import SSMConvolution
from pspikessm.models.kernels.diagonal import DiagonalSSMKernel
from pspikessm.models.kernels.dplr import DPLRSSMKernel
from pspikessm.models.layers import SpikeMixer
from pspikessm.models.neurons import is_spike_source, spike_emitters, spike_samplers
from pspikessm.models.neurons.binary import HeavisideSpike
from pspikessm.models.neurons.lif import LIFNeuron
from pspikessm.models.neurons.pspike import SpikeSampler
from pspikessm.models.neurons.real_valued import RealValued
from pspikessm.models.settings import BlockSettings

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
    "spike_emitters",
    "spike_samplers",
]
