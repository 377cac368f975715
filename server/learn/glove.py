"""GloVe word vectors (Pennington, Socher and Manning 2014), trained on captions.

The model: for every pair of words (i, j) that co-occur with weighted count X_ij, fit
    w_i . c_j + b_i + b~_j  ~  log X_ij
by weighted least squares with weight f(X) = min(1, (X / x_max) ** alpha), optimised with
AdaGrad; the exported vector of a word is w_i + c_i.

How it runs fast on a CPU: the original updates the parameters after every single co-occurrence
entry. Here the entries are shuffled once (as the original's shuffle step does) and cut into
fixed mini-batches, each stored as two sparse matrices whose structure is built once:
- the forward pass, w_i . c_j for every entry of the batch, is one sampled dense-dense product
  (`torch.sparse.sampled_addmm`), with no gather of rows into temporaries;
- the backward pass, the gradient of every word and context vector, is one sparse-dense product
  with the batch's entries written both ways (i -> j and j -> i).
Words and contexts live in one table of 2V rows so that both passes cover both at once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from gensim.models import KeyedVectors
from tqdm.auto import tqdm

from server.text import build_vocab
from server.wordspace import keyed_vectors


@dataclass(frozen=True)
class GloveConfig:
    """Hyper-parameters of GloVe; the defaults are the ones the shipped text space uses."""

    dim: int = 100
    window: int = 10
    min_count: int = 3
    x_max: float = 10.0
    alpha: float = 0.75
    iterations: int = 100
    learning_rate: float = 0.1
    # Entries per AdaGrad step. Each step also touches every row of the parameter table, so
    # large vocabularies want larger batches: the effective size is max(batch_size, 4 * vocab).
    batch_size: int = 16384
    seed: int = 0


@dataclass
class GloveResult:
    vectors: KeyedVectors
    costs: list[float]  # per iteration: mean weighted squared error per entry
    entries: int  # non-zero co-occurrence entries (both directions)
    tokens: int  # in-vocabulary tokens counted


def cooccurrence(sentences: Sequence[Sequence[int]], vocab_size: int, window: int) -> sp.csr_matrix:
    """Symmetric co-occurrence counts within `window` words, each pair weighted by 1/distance.

    Windows never cross a sentence boundary, and out-of-vocabulary words (id < 0) are removed
    from the stream before counting, as the original's counting tool does.
    """
    kept = [[w for w in s if w >= 0] for s in sentences]
    ids = np.fromiter((w for s in kept for w in s), dtype=np.int64)
    sentence_of = np.repeat(np.arange(len(kept)), [len(s) for s in kept])
    left, right, weight = [], [], []
    for distance in range(1, window + 1):
        same = sentence_of[distance:] == sentence_of[:-distance]
        left.append(ids[:-distance][same])
        right.append(ids[distance:][same])
        weight.append(np.full(int(same.sum()), 1.0 / distance))
    upper = sp.coo_matrix(
        (np.concatenate(weight), (np.concatenate(left), np.concatenate(right))),
        shape=(vocab_size, vocab_size),
    ).tocsr()  # duplicates are summed here
    return (upper + upper.T).tocsr()


@dataclass
class _Batch:
    forward: torch.Tensor  # CSR pattern (2V x 2V) of the entries i -> V + j, values unused
    backward_crow: torch.Tensor  # CSR structure of the entries written both ways
    backward_col: torch.Tensor
    backward_entry: torch.Tensor  # which entry each backward value is
    rows: torch.Tensor  # word row of each entry
    cols: torch.Tensor  # context row (V + j) of each entry
    log_count: torch.Tensor
    weight: torch.Tensor


def _csr_rows(rows: np.ndarray, n_rows: int) -> torch.Tensor:
    crow = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=crow[1:])
    return torch.from_numpy(crow)


def _make_batch(rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, n_rows: int,
                config: GloveConfig) -> _Batch:
    order = np.lexsort((cols, rows))  # CSR order; the order of entries inside a batch is free
    rows, cols, counts = rows[order], cols[order], counts[order]
    with warnings.catch_warnings():
        # torch calls CSR support "beta" (once per process); the operations used here are tested.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        forward = torch.sparse_csr_tensor(
            _csr_rows(rows, n_rows), torch.from_numpy(cols), torch.zeros(rows.size),
            size=(n_rows, n_rows), check_invariants=False,
        )
    both_rows = np.concatenate([rows, cols])
    both_cols = np.concatenate([cols, rows])
    entry = np.tile(np.arange(rows.size), 2)
    back = np.lexsort((both_cols, both_rows))
    weight = np.minimum(1.0, (counts / config.x_max) ** config.alpha)
    return _Batch(
        forward=forward,
        backward_crow=_csr_rows(both_rows[back], n_rows),
        backward_col=torch.from_numpy(both_cols[back]),
        backward_entry=torch.from_numpy(entry[back]),
        rows=torch.from_numpy(rows),
        cols=torch.from_numpy(cols),
        log_count=torch.from_numpy(np.log(counts)).float(),
        weight=torch.from_numpy(weight).float(),
    )


def _batches(cooc: sp.csr_matrix, config: GloveConfig, generator: torch.Generator) -> list[_Batch]:
    vocab_size = cooc.shape[0]
    coo = cooc.tocoo()
    shuffle = torch.randperm(coo.nnz, generator=generator).numpy()
    rows = coo.row[shuffle].astype(np.int64)
    cols = coo.col[shuffle].astype(np.int64) + vocab_size
    counts = coo.data[shuffle]
    size = max(config.batch_size, 4 * vocab_size)
    return [
        _make_batch(rows[s : s + size], cols[s : s + size], counts[s : s + size],
                    2 * vocab_size, config)
        for s in range(0, coo.nnz, size)
    ]


def fit_glove(cooc: sp.csr_matrix, config: GloveConfig = GloveConfig(),
              progress: bool = True) -> tuple[np.ndarray, list[float]]:
    """Fit GloVe to a co-occurrence matrix; returns (vectors w + c, cost per iteration)."""
    generator = torch.Generator().manual_seed(config.seed)
    vocab_size, dim = cooc.shape[0], config.dim
    batches = _batches(cooc, config, generator)
    # One table: rows [0, V) are word vectors, rows [V, 2V) context vectors.
    table = (torch.rand(2 * vocab_size, dim, generator=generator) - 0.5) / dim
    bias = (torch.rand(2 * vocab_size, generator=generator) - 0.5) / dim
    table_sq = torch.ones_like(table)  # AdaGrad's running sums of squared gradients
    bias_sq = torch.ones_like(bias)
    costs = []
    bar = tqdm(range(config.iterations), desc="GloVe", unit="it", disable=not progress)
    for _ in bar:
        total = 0.0
        for batch in batches:
            dots = torch.sparse.sampled_addmm(batch.forward, table, table.T, beta=0).values()
            diff = dots + bias[batch.rows] + bias[batch.cols] - batch.log_count
            weighted = batch.weight * diff
            total += 0.5 * float(weighted @ diff)
            both_ways = torch.sparse_csr_tensor(
                batch.backward_crow, batch.backward_col, weighted[batch.backward_entry],
                size=batch.forward.shape, check_invariants=False,
            )
            grad = both_ways @ table
            bias_grad = torch.zeros_like(bias).index_add_(0, batch.rows, weighted)
            bias_grad.index_add_(0, batch.cols, weighted)
            _adagrad_step(table, table_sq, grad, config.learning_rate)
            _adagrad_step(bias, bias_sq, bias_grad, config.learning_rate)
        costs.append(total / cooc.nnz)
        bar.set_postfix(cost=f"{costs[-1]:.5f}")
        if not math.isfinite(costs[-1]):
            raise FloatingPointError(
                f"GloVe diverged at iteration {len(costs)}: lower learning_rate "
                f"(now {config.learning_rate})"
            )
    vectors = table[:vocab_size] + table[vocab_size:]
    return vectors.numpy(), costs


def _adagrad_step(param: torch.Tensor, sum_sq: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
    sum_sq.addcmul_(grad, grad)
    param.addcdiv_(grad, sum_sq.sqrt(), value=-lr)


def train_glove(sentences: Sequence[Sequence[str]], config: GloveConfig = GloveConfig(),
                progress: bool = True) -> GloveResult:
    """Train GloVe on tokenised sentences (see `server.text.tokenize`)."""
    vocab = build_vocab(sentences, config.min_count)
    if not vocab:
        raise ValueError(f"no word occurs at least min_count={config.min_count} times")
    index = {w: i for i, w in enumerate(vocab)}
    ids = [[index.get(w, -1) for w in s] for s in sentences]
    cooc = cooccurrence(ids, len(vocab), config.window)
    if cooc.nnz == 0:
        raise ValueError("no two vocabulary words co-occur: the corpus is too small")
    vectors, costs = fit_glove(cooc, config, progress)
    kv = keyed_vectors(list(vocab), vectors)
    for word, count in vocab.items():
        kv.set_vecattr(word, "count", count)
    return GloveResult(kv, costs, entries=cooc.nnz, tokens=sum(vocab.values()))
