"""modelconvert: convert LLM checkpoints between formats, read any of them as numpy arrays.

    import modelconvert as mc
    m = mc.open("./model.gguf")          # m.config (dict), m.format, m.tensors() (HF names)
    w = m.tensor("model.layers.0.self_attn.q_proj.weight")   # numpy array
    mc.convert("./my-llama", "gguf", output="m.gguf", quant="q8_0")   # the CLI's options as keywords

Failures raise mc.Error with .exit_code (the command line's), .code and .message.
"""
from ._modelconvert import Error, Model, __version__, check, convert, inspect, open, validate

__all__ = ["Error", "Model", "__version__", "check", "convert", "inspect", "open", "validate"]
