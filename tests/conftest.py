import os

import pytest
import torch

# Triton kernels run on CPU tensors through the interpreter, which must be chosen before triton is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# What seqcore.ops.backends says when a Triton backend gets CPU tensors without the interpreter.
_CPU_TENSORS_FOR_TRITON = "tensors are on 'cpu': Triton compiles kernels for GPUs only"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """On a GPU machine (compiled kernels, no interpreter), a Triton test that builds its tensors on the CPU
    itself, instead of through ``opcases.outputs_and_grads``, is skipped there; it runs on the CPU in CI."""
    try:
        return (yield)
    except ValueError as err:
        if torch.cuda.is_available() and _CPU_TENSORS_FOR_TRITON in str(err):
            pytest.skip("builds CPU tensors for a Triton backend: runs under TRITON_INTERPRET=1 on the CPU only")
        raise


SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")

# CI runs the same Hypothesis examples every time (a failure there must be reproducible, not a roll of the dice);
# local runs keep drawing fresh ones.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Fixtures shared by several test modules (``offline``: no network for torch-geometric's loaders).
pytest_plugins = ["graph_files"]
