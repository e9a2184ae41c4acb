import os

# Tests run on CPU with tiny inputs; keep each worker to one thread so 2 xdist workers use 2 cores.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import torch  # noqa: E402

torch.set_num_threads(1)
