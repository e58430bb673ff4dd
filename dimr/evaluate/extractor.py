"""The offline classifier as a torch-fidelity feature extractor.

torch-fidelity computes FID, KID and precision/recall from one named feature layer and the Inception
Score from a logits layer; it builds the extractor itself, by name, passing every keyword argument
of ``calculate_metrics`` to the constructor.  :class:`ClassifierFeatureExtractor` therefore receives
the classifier file as ``feature_extractor_weights_path`` and provides two features:

* ``"penultimate"`` — the classifier's 128-d penultimate activations (the stand-in for Inception's
  2048-d pool-3 features: FID, KID, precision/recall);
* ``"logits"`` — its class logits (the stand-in for Inception's logits: IS).

Inputs are what torch-fidelity feeds every extractor: uint8 ``[B, 3, H, W]``.
"""
from __future__ import annotations

import torch
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from .classifier import load_classifier, to_classifier_input

__all__ = ["FEATURES", "FID_LAYER", "ISC_LAYER", "ClassifierFeatureExtractor", "register_classifier_extractor"]

FID_LAYER = "penultimate"
ISC_LAYER = "logits"
FEATURES = (FID_LAYER, ISC_LAYER)


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """``forward(x: uint8 [B, 3, H, W]) -> tuple`` of the requested features (float32), in the
    order of ``features_list``. The classifier is read from ``feature_extractor_weights_path``."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"feature extractor {name!r} needs feature_extractor_weights_path= a dimr classifier file")
        clf = load_classifier(feature_extractor_weights_path)
        self.classifier = clf.model
        self.size, self.channels = clf.config.image_size, clf.config.in_channels
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": ISC_LAYER, "fid": FID_LAYER, "kid": FID_LAYER, "prc": FID_LAYER}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8 or x.ndim != 4:
            raise ValueError(f"expected uint8 [B, 3, H, W], got {x.dtype} {tuple(x.shape)}")
        feats, logits = self.classifier(to_classifier_input(x, self.size, self.channels))
        out = {FID_LAYER: feats.float(), ISC_LAYER: logits.float()}
        return tuple(out[name] for name in self.features_list)


def register_classifier_extractor(name: str) -> str:
    """Register :class:`ClassifierFeatureExtractor` under ``name`` (idempotent); returns ``name``."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, ClassifierFeatureExtractor)
    elif FEATURE_EXTRACTORS_REGISTRY[name] is not ClassifierFeatureExtractor:
        raise ValueError(f"feature extractor name {name!r} is taken by {FEATURE_EXTRACTORS_REGISTRY[name]}")
    return name
