"""Common base of every project model: ``nn.Module`` + ``PyTorchModelHubMixin``, safetensors only, strict loading.

Owns the save/load contract shared by all five systems (no architecture here, no gradio, no training):

* ``config.json`` holds the JSON-able ``__init__`` arguments, so it is the full model spec;
* weights are ``model.safetensors`` (optionally stored in fp16 for big models; loading casts back to fp32);
* ``from_pretrained`` is **strict by default** (the mixin's default is ``strict=False``) and refuses pickled
  ``pytorch_model.bin`` files outright: weights load only from safetensors.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin, constants
from safetensors.torch import save_file
from torch import nn


class HubModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="pytorch",
    license="mit",
    tags=["medical-imaging", "biomedical-image-demo"],
):
    """Base class: subclass it with ``class Net(HubModel, pipeline_tag=..., tags=[...])``."""

    #: store weights as fp16 in ``model.safetensors`` (set per instance before ``save_pretrained``)
    save_half: bool = False
    #: the project's rule: models over this many bytes in fp32 are stored in fp16
    HALF_ABOVE_BYTES = 20e6

    def store_half_when_big(self) -> bool:
        """Set ``save_half`` by the project's rule (over 20 MB in fp32: fp16) and return it."""
        self.save_half = sum(p.numel() for p in self.parameters()) * 4 > self.HALF_ABOVE_BYTES
        return self.save_half

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        if self.save_half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(Path(save_directory) / constants.SAFETENSORS_SINGLE_FILE), metadata={"format": "pt"})

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, map_location: str = "cpu", **kwargs):
        # strict=True unless a caller explicitly relaxes it (the mixin defaults to False)
        return super()._from_pretrained(strict=strict, map_location=map_location, **kwargs)

    @classmethod
    def _load_as_pickle(cls, model, model_file: str, map_location: str, strict: bool):
        raise ValueError(f"refusing to load pickled weights from {model_file}: this project loads safetensors only")

    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        from safetensors.torch import load_file

        state = load_file(model_file, device=map_location)
        reference = model.state_dict()
        # fp16 checkpoints are cast back to the module's dtype (load_state_dict copies with a cast anyway)
        state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
        model.load_state_dict(state, strict=strict)
        return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters ("params" in SYSTEMS.md)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
