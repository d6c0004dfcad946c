"""SparseRows against the dense matrices it stands for."""

from __future__ import annotations

import torch

from model.evaluation.sparse_rows import SparseRows


def dense(matrix: SparseRows) -> torch.Tensor:
    out = torch.zeros((matrix.num_rows, matrix.num_columns), dtype=torch.float64)
    rows = torch.repeat_interleave(torch.arange(matrix.num_rows), matrix.row_lengths)
    out[rows, matrix.indices] = matrix.values
    return out


def random_matrix(
    seed: int, num_rows: int = 7, num_columns: int = 5
) -> tuple[SparseRows, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, num_rows, (30,), generator=generator)
    columns = torch.randint(0, num_columns, (30,), generator=generator)
    values = torch.rand(30, generator=generator, dtype=torch.float64)
    expected = torch.zeros((num_rows, num_columns), dtype=torch.float64)
    expected.index_put_((rows, columns), values, accumulate=True)
    matrix = SparseRows.from_triples(
        rows, columns, values, num_rows=num_rows, num_columns=num_columns
    )
    return matrix, expected


def test_triples_are_sorted_and_duplicates_summed() -> None:
    matrix, expected = random_matrix(0)
    torch.testing.assert_close(dense(matrix), expected)
    for row in range(matrix.num_rows):
        columns = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        assert bool((columns[1:] > columns[:-1]).all())


def test_gather_returns_each_requested_row_with_its_owner() -> None:
    matrix, expected = random_matrix(1)
    requested = torch.tensor([3, 0, 3, 6])
    owner, columns, values = matrix.gather(requested)
    gathered = torch.zeros((len(requested), matrix.num_columns), dtype=torch.float64)
    gathered[owner, columns] = values
    torch.testing.assert_close(gathered, expected[requested])
    assert matrix.count_gathered(requested).tolist() == [
        int((expected[r] != 0).sum()) for r in requested
    ]


def test_row_blocks_transpose_and_concatenate() -> None:
    matrix, expected = random_matrix(2)
    torch.testing.assert_close(dense(matrix.transpose_rows(2, 6)), expected[2:6].t())
    local, columns, values = matrix.row_block(2, 6)
    block = torch.zeros((4, matrix.num_columns), dtype=torch.float64)
    block[local, columns] = values
    torch.testing.assert_close(block, expected[2:6])
    top, bottom = random_matrix(3), random_matrix(4)
    stacked = SparseRows.concatenate([top[0], bottom[0]])
    torch.testing.assert_close(dense(stacked), torch.cat([top[1], bottom[1]]))
