"""Token mixers, the mixer registry and the blocks they are stacked in.

Every mixer maps ``(B, T, C) -> (B, T, C)``, takes ``num_heads``, optional ``cu_seqlens`` (packed sequences,
``B == 1``), a ``bidirectional`` flag, and decodes step by step with a :class:`MixerCache`:

    y = mixer(x)                              # training / full sequence
    y, cache = mixer(x_t, cache=MixerCache()) # then feed the returned cache back in

Build any of them by name: ``build_mixer("gated_deltanet", dim=256, num_heads=4)``. ``"attention"`` (softmax
attention) takes the same calls, for hybrids of recurrent and attention layers.
"""
from .attention import SoftmaxAttention
from .base import RecurrentMixer
from .blocks import GLU, MLP, DropPath, SeqBlock, SeqEncoder, SeqLM
from .cache import MixerCache
from .conv import ShortConvolution
from .deltanet import DeltaNet, GatedDeltaNet
from .gla import GatedLinearAttention
from .hgrn import HGRN
from .lightnet import LightNetAttention, rotate
from .linear_attn import FEATURE_MAPS, LinearAttention
from .mamba2 import Mamba2
from .registry import MIXERS, build_mixer, register_mixer
from .retnet import RetNet

__all__ = [
    "MIXERS",
    "build_mixer",
    "register_mixer",
    "MixerCache",
    "RecurrentMixer",
    "ShortConvolution",
    "LinearAttention",
    "FEATURE_MAPS",
    "RetNet",
    "GatedLinearAttention",
    "Mamba2",
    "HGRN",
    "SoftmaxAttention",
    "LightNetAttention",
    "rotate",
    "DeltaNet",
    "GatedDeltaNet",
    "SeqBlock",
    "SeqEncoder",
    "SeqLM",
    "MLP",
    "GLU",
    "DropPath",
]
