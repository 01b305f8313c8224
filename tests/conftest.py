import os

import pytest
import torch

# Two busy processes on two cores slow each other down many times over: be explicit.
torch.set_num_threads(int(os.environ.get("EDLNET_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
