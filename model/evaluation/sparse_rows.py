"""Row-compressed sparse matrices (CSR) with the two operations re-ranking needs.

k-reciprocal re-ranking works on vectors that have a few dozen non-zeros out of N (one
per neighbour), so holding them densely is what makes the textbook implementation need
N^2 memory. torch's own sparse tensors lack a row gather, so this small structure keeps
the three CSR arrays and offers exactly: building from (row, column, value) triples
(summing duplicates), gathering the entries of many rows at once, and transposing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SparseRows:
    """``indptr`` (rows + 1), ``indices`` (column of each entry, ascending within a row),
    ``values`` (float64). Row ``r`` holds entries ``indptr[r]:indptr[r + 1]``."""

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    num_columns: int

    @property
    def num_rows(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def row_lengths(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    @classmethod
    def from_triples(
        cls,
        rows: torch.Tensor,
        columns: torch.Tensor,
        values: torch.Tensor,
        *,
        num_rows: int,
        num_columns: int,
    ) -> SparseRows:
        """Sort the entries by (row, column) and add up those that share a position."""
        position = rows * num_columns + columns
        unique, inverse = torch.unique(position, sorted=True, return_inverse=True)
        summed = torch.zeros(unique.shape[0], dtype=values.dtype, device=values.device)
        summed.index_add_(0, inverse, values)
        unique_rows = torch.div(unique, num_columns, rounding_mode="floor")
        counts = torch.bincount(unique_rows, minlength=num_rows)
        indptr = torch.zeros(num_rows + 1, dtype=torch.int64, device=values.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return cls(indptr, unique - unique_rows * num_columns, summed, num_columns)

    @classmethod
    def concatenate(cls, parts: list[SparseRows]) -> SparseRows:
        """Stack row blocks (built chunk by chunk) into one matrix."""
        pieces, offset = [parts[0].indptr[:1]], 0
        for part in parts:
            pieces.append(part.indptr[1:] + offset)
            offset += int(part.indptr[-1])
        indptr = torch.cat(pieces)
        return cls(
            indptr,
            torch.cat([p.indices for p in parts]),
            torch.cat([p.values for p in parts]),
            parts[0].num_columns,
        )

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Entries of ``rows`` (any order, repeats allowed) as (owner, column, value).

        ``owner[e]`` is the position in ``rows`` whose row entry ``e`` came from.
        """
        lengths = self.row_lengths[rows]
        owner = torch.repeat_interleave(torch.arange(rows.shape[0], device=rows.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        source = self.indptr[rows][owner] + torch.arange(owner.shape[0], device=rows.device)
        source -= first[owner]
        return owner, self.indices[source], self.values[source]

    def count_gathered(self, rows: torch.Tensor) -> torch.Tensor:
        """How many entries ``gather`` would return for each of ``rows``."""
        return self.row_lengths[rows]

    def row_block(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Entries of rows ``start:stop`` as (row - start, column, value)."""
        begin, end = int(self.indptr[start]), int(self.indptr[stop])
        lengths = self.row_lengths[start:stop]
        local = torch.repeat_interleave(torch.arange(stop - start, device=lengths.device), lengths)
        return local, self.indices[begin:end], self.values[begin:end]

    def transpose_rows(self, start: int, stop: int) -> SparseRows:
        """The transpose of rows ``start:stop``: one row per column, listing ``row - start``."""
        local, columns, values = self.row_block(start, stop)
        return SparseRows.from_triples(
            columns, local, values, num_rows=self.num_columns, num_columns=stop - start
        )
