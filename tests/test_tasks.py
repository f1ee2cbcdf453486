"""TaskDataset: which tasks a panel of increment series yields, and what each holds."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_windowing import SETTINGS, layouts

from sk_metalstm.meta.tasks import TaskDataset
from sk_metalstm.windowing import cut_task, task_starts


@SETTINGS
@given(
    layout=layouts,
    lengths=st.lists(st.integers(0, 60), min_size=1, max_size=4),
    stride=st.integers(1, 7),
)
def test_task_dataset_construction_property(layout, lengths, stride):
    # Each value encodes (series, position): 1000 * (series + 1) + position.
    series = [1000.0 * (i + 1) + np.arange(n, dtype=np.float64) for i, n in enumerate(lengths)]
    data = TaskDataset(series, layout, stride)
    expected = sum(len(task_starts(n, layout, stride)) for n in lengths)
    assert len(data) == expected
    for i, n in enumerate(lengths):
        starts = data.index[data.index[:, 0] == i, 1]
        np.testing.assert_array_equal(starts, task_starts(n, layout, stride))
        if len(starts):
            # Every task fits; one more stride would not.
            assert starts[0] == 0 and np.all(np.diff(starts) == stride)
            assert starts[-1] + layout.span <= n < starts[-1] + stride + layout.span
        else:
            assert n < layout.span
    S, Q, L, h = layout.support_size, layout.query_size, layout.window_length, layout.horizon
    for k in range(len(data)):
        X, y = data[k]
        # Inputs: the increments and their absolute values (the volatility channel).
        assert X["support_x"].shape == (S, L, 2) and X["support_y"].shape == (S, h)
        assert X["query_x"].shape == (Q, L, 2) and y.shape == (Q, h)
        assert torch.equal(y, X["query_y"])
        task = cut_task(series[data.index[k, 0]], int(data.index[k, 1]), layout)
        scale, loc = float(task["scale"]), float(task["loc"])
        sy = np.rint(X["support_y"].numpy().astype(np.float64) * scale + loc)
        qy = np.rint(X["query_y"].numpy().astype(np.float64) * scale + loc)
        sx = np.rint(X["support_x"].numpy().astype(np.float64) * scale + loc)
        assert qy.min() > sy.max()  # query targets strictly after support targets
        assert sx.max() < sy.max() + 1  # inputs never reach past the last support target
        assert len(np.unique(np.floor(np.r_[sx.ravel(), qy.ravel()] / 1000))) == 1
