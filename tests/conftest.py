import os

import pytest
import torch

# Two busy processes on two cores slow each other down many times over: be explicit.
torch.set_num_threads(int(os.environ.get("EDLNET_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One thread for the test (float64 equality tests: fewer threads, same numbers, less noise
    from the scheduler); the suite's thread count comes back afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
