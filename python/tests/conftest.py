import numpy as np
import pytest

import paradox


@pytest.fixture
def engine(tmp_path):
    return paradox.Engine(str(tmp_path / "data"), fsync="never")


@pytest.fixture
def rng():
    return np.random.default_rng(7)
