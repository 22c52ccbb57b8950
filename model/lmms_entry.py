"""The ``lmms_eval.models`` entry point: tells lmms-eval where the ``magicvl`` model class is (imports nothing)."""

from __future__ import annotations


def manifest():
    """Model id ``magicvl`` → ``model.lmms_eval_model.MagicVLLmms`` (lmms-eval imports it when asked for)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="magicvl", simple_class_path="magicvl.model.lmms_eval_model.MagicVLLmms")
