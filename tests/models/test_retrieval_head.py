"""The two-document model: both documents through the same backbone, MLP on [u, v, u·v, u−v]."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.models.backbone import RetrievalHead, encode_pair


def test_encode_pair_matches_encoding_each_document_alone():
    torch.manual_seed(0)
    block = BlockSettings(d_state=4)
    model = PSpikeSSM(
        num_classes=2, vocab_size=11, d_model=8, n_layers=1, dual_input=True, block=block
    ).eval()
    for module in model.modules():  # probabilities instead of samples: deterministic
        if hasattr(module, "sample_in_eval"):
            module.sample_in_eval = False
    inputs = torch.randint(3, 11, (3, 2, 7))
    lengths = torch.tensor([[7, 4], [5, 7], [2, 3]])
    u, v = encode_pair(model.features, inputs, lengths)
    assert torch.allclose(u, model.features(inputs[:, 0], lengths[:, 0]), atol=1e-6)
    assert torch.allclose(v, model.features(inputs[:, 1], lengths[:, 1]), atol=1e-6)
    logits = model(inputs, lengths)
    assert logits.shape == (3, 2)
    assert torch.allclose(logits, model.decoder(u, v), atol=1e-6)


def test_head_is_an_mlp_with_gelu_on_u_v_product_difference():
    head = RetrievalHead(d_model=3, num_classes=2, d_hidden=5)
    u, v = torch.randn(4, 3), torch.randn(4, 3)
    with torch.no_grad():
        for layer in (head.hidden, head.output):
            layer.weight.zero_()
            layer.bias.zero_()
        head.hidden.weight[0, 6:9] = 1.0  # features are [u, v, u·v, u−v]: pick u·v
        head.hidden.weight[1, 9:12] = 1.0  # and u−v
        head.output.weight[0, 0] = head.output.weight[1, 1] = 1.0
    logits = head(u, v)
    gelu = torch.nn.functional.gelu
    assert torch.allclose(logits[:, 0], gelu((u * v).sum(-1)), atol=1e-6)
    assert torch.allclose(logits[:, 1], gelu((u - v).sum(-1)), atol=1e-6)


def test_single_sequence_inputs_to_a_pair_model_are_an_error():
    block = BlockSettings(d_state=4)
    model = PSpikeSSM(
        num_classes=2, vocab_size=11, d_model=8, n_layers=1, dual_input=True, block=block
    )
    with pytest.raises(ValueError, match=r"inputs \(B, 2, L, \.\.\.\)"):
        model(torch.randint(3, 11, (3, 7)))
