"""The distributed training reader: ranks and DataLoader workers, a deterministic shard-aware
shuffle per epoch, and mid-epoch resumption (two ranks simulated in one process)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import lossylearn
from lossylearn.errors import LossylearnError
from lossylearn.store import open_store

N, CHUNK, BATCH = 300, 32, 8
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "s"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (N, 8, 8, 1), dtype=np.uint8)
    lossylearn.compress(
        out=out, images=x, labels=rng.integers(0, 3, N), sigma=20, codec="png", seed=0,
        chunk_size=CHUNK, progress=False, warn=lambda _: None,
    )  # fmt: skip
    return out


def reader(store_dir, rank=0, world_size=2, **kw):
    kw = {"seed": 7, "batch_size": BATCH, "window_shards": 2, "return_index": True, **kw}
    return open_store(store_dir).torch_iterable(rank=rank, world_size=world_size, **kw)


def rows(ds, workers, batches=None):
    """Store rows the DataLoader yields, in order (``batches`` of them, or all)."""
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=workers)
    out = []
    for _, _, i in itertools.islice(loader, batches):  # stops without fetching one more batch
        out += i.tolist()
    return out


def test_two_ranks_see_every_image_once_per_epoch_in_one_order_for_any_worker_count(store_dir):
    epochs = []
    for epoch in (0, 1):
        per_rank = []
        for rank in (0, 1):
            ds = reader(store_dir, rank)
            ds.set_epoch(epoch)
            seen = {w: rows(ds, w) for w in (0, 2, 3)}
            assert seen[0] == seen[2] == seen[3] == ds.order().tolist()
            assert len(seen[0]) == len(ds) == N // 2
            per_rank.append(seen[0])
        both = per_rank[0] + per_rank[1]
        assert sorted(both) == list(range(N))  # exactly once across ranks and workers
        epochs.append(both)
    assert epochs[0] != epochs[1]  # a new shuffle every epoch
    assert (
        epochs[0] == reader(store_dir, 0).order(0).tolist() + reader(store_dir, 1).order(0).tolist()
    )  # deterministic
    # the global order does not depend on the number of ranks either
    single = reader(store_dir, 0, world_size=1)
    assert single.order(1).tolist() == epochs[1]


def test_the_shuffle_is_shard_aware(store_dir):
    ds = reader(store_dir, 0, world_size=1, window_shards=2)
    order = ds.order(3)
    shard = order // CHUNK
    # every shard is read within one window of two shards: its images sit close together
    for k in range(int(shard.max()) + 1):
        where = np.flatnonzero(shard == k)
        assert where.max() - where.min() < 2 * CHUNK
    assert order.tolist() != sorted(order.tolist())
    plain = reader(store_dir, 0, world_size=1, shuffle=False)
    assert plain.order(3).tolist() == list(range(N))


def test_resume_mid_epoch_without_repeats_or_holes(store_dir):
    ds = reader(store_dir, 1)
    ds.set_epoch(2)
    full = ds.order().tolist()
    first = rows(ds, 0, batches=3)  # num_workers=0: the reader counts what it handed out
    state = json.loads(json.dumps(ds.state_dict()))  # a checkpoint survives JSON
    assert state["epoch"] == 2 and state["position"] == 3 * BATCH
    again = reader(store_dir, 1)
    again.load_state_dict(state)
    again.set_epoch(2)  # the usual loop calls set_epoch first: the loaded position stays
    rest = rows(again, 2)
    assert first + rest == full

    # with workers the loop tells the reader what it consumed
    ds = reader(store_dir, 1)
    ds.set_epoch(2)
    first = rows(ds, 2, batches=4)
    state = ds.state_dict(consumed=4 * BATCH)
    again = reader(store_dir, 1)
    again.load_state_dict(state)
    assert first + rows(again, 3) == full
    again.set_epoch(3)  # the next epoch starts from its beginning
    assert rows(again, 0) == again.order(3).tolist()


def test_a_state_from_another_reader_is_refused(store_dir):
    state = reader(store_dir, 0).state_dict(consumed=5)
    with pytest.raises(LossylearnError, match="seed differ"):
        reader(store_dir, 0, seed=8).load_state_dict(state)
    with pytest.raises(LossylearnError, match="rank differ"):
        reader(store_dir, 1).load_state_dict(state)
    with pytest.raises(LossylearnError, match="more than"):
        reader(store_dir, 0).state_dict(consumed=N)
    with pytest.raises(LossylearnError, match="rank must be below"):
        reader(store_dir, 2)


def test_drop_last_gives_every_rank_the_same_count(store_dir):
    sizes = [len(reader(store_dir, r, world_size=7, drop_last=True)) for r in range(7)]
    assert sizes == [N // 7] * 7
    seen = sum(
        (reader(store_dir, r, world_size=7, drop_last=True).order().tolist() for r in range(7)), []
    )
    assert len(set(seen)) == len(seen) == 7 * (N // 7)
    uneven = [len(reader(store_dir, r, world_size=7)) for r in range(7)]
    assert sum(uneven) == N and max(uneven) - min(uneven) <= 1


def test_items_are_the_store_images(store_dir):
    store = open_store(store_dir)
    ds = store.torch_iterable(seed=0, batch_size=4, return_index=True)
    for x, label, i in ds:
        image, want = store[i]
        assert label == want and torch.equal(x, torch.from_numpy(image).permute(2, 0, 1) / 255.0)
        break
    raw = store.torch_iterable(shuffle=False, transform=lambda im: im.sum())
    assert next(iter(raw)) == (store[0][0].sum(), store[0][1])
