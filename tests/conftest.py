import os

import torch

# Triton kernels run on CPU tensors through the interpreter, which must be chosen before triton is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")

# CI runs the same Hypothesis examples every time (a failure there must be reproducible, not a roll of the dice);
# local runs keep drawing fresh ones.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
