import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: thread start-up and contention on a 2-core machine cost more than they save.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
