"""The bundled sample (data/pkgdesc) is the head of ../shared/data/pkgdesc, so results on it are
results on the shared benchmark's first 3,000 training and first 300 test queries."""

import itertools
import json
import os

import pytest

from tests.conftest import ROOT, SHARED_DATA

SHARED = os.path.join(SHARED_DATA, "pkgdesc")


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data/pkgdesc not present")
@pytest.mark.parametrize("name,n", [("train.jsonl", 3000), ("test.jsonl", 300)])
def test_bundled_sample_is_the_head_of_the_shared_split(name, n):
    with open(os.path.join(ROOT, "data", "pkgdesc", name)) as ours, open(os.path.join(SHARED, name)) as shared:
        mine = [json.loads(line) for line in ours]
        head = [json.loads(line) for line in itertools.islice(shared, n)]
    assert len(mine) == n and mine == head
