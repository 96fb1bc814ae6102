"""One seeding rule for every torch model (the RNN trainer and DeepLog), so a seed means the same everywhere."""

from __future__ import annotations

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's and numpy's global generators; return a torch generator for batch order."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)
