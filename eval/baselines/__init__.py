"""Baselines the evaluation compares policylab with: the newcomer's naive RAG pipeline and BM25."""

from eval.baselines.common import (
    corpus_fingerprint,
    load_corpus_documents,
    split_corpus,
)

__all__ = ["corpus_fingerprint", "load_corpus_documents", "split_corpus"]
