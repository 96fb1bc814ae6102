"""RNNClassifier: the one model. Config flags produce every variant of the study."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from logsieve.config import ModelConfig
from logsieve.features.counts import count_features, count_width
from logsieve.features.vocabulary import PAD

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RNNClassifier(nn.Module):
    """embedding -> RNN/GRU/LSTM -> pooling (last | mean | max | sum) -> optional BatchNorm1d -> head.

    With ``counts`` the head also sees how often every event occurs (the "quantitative pattern" of
    LogAnomaly), as log(1 + count) or exactly (see ``count_features``); ``head_hidden`` makes the head a
    small ReLU MLP instead of one linear layer.

    Returns one logit per sequence (anomaly = positive class). Padding is masked: sequences are packed,
    so neither direction of a bidirectional RNN reads padding, and mean/max pooling ignore it.
    """

    def __init__(self, vocab_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embed_dim, padding_idx=PAD)
        self.rnn = CELLS[config.cell](
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        width = config.hidden_size * (2 if config.bidirectional else 1)
        self.norm = nn.BatchNorm1d(width) if config.batch_norm else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)
        width += count_width(vocab_size, config.counts)
        self.head: nn.Module
        if config.head_hidden:
            h = config.head_hidden
            self.head = nn.Sequential(nn.Linear(width, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))
        else:
            self.head = nn.Linear(width, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (batch, time) int64, lengths (batch,) -> logits (batch,)."""
        lengths = lengths.clamp(min=1).cpu()
        ordered = bool((lengths[:-1] >= lengths[1:]).all())  # batches come longest-first: no permutation needed
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=ordered)
        out, hidden = self.rnn(packed)
        features = self.dropout(self.norm(self._pool(out, hidden, tokens.shape[1])))
        if self.config.counts != "none":
            features = torch.cat([features, self.event_counts(tokens)], dim=-1)
        return self.head(features).squeeze(-1)

    def event_counts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Count features of each row; padding is never counted."""
        counts = torch.zeros(tokens.shape[0], self.embedding.num_embeddings, dtype=torch.float32)
        counts.scatter_add_(1, tokens, (tokens != PAD).float())
        return count_features(counts, self.config.counts)

    def _pool(self, out: nn.utils.rnn.PackedSequence, hidden, width: int) -> torch.Tensor:
        if self.config.pooling == "last":
            h_n = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
            if self.config.bidirectional:  # forward state at the last step, backward state at the first
                return torch.cat([h_n[-2], h_n[-1]], dim=-1)
            return h_n[-1]
        if self.config.pooling == "max":  # -inf padding never wins the max: no mask needed
            padded = pad_packed_sequence(out, batch_first=True, padding_value=float("-inf"), total_length=width)[0]
            return padded.max(1).values
        padded, lengths = pad_packed_sequence(out, batch_first=True, total_length=width)
        mask = (torch.arange(width)[None, :] < lengths[:, None]).unsqueeze(-1)
        if self.config.pooling == "sum":  # keeps how often a pattern occurs (HDFS labels often hinge on counts)
            return (padded * mask).sum(1)
        if self.config.pooling == "mean":
            return (padded * mask).sum(1) / lengths[:, None].clamp(min=1).to(padded.dtype)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
