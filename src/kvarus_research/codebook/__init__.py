"""Codebook (kodebok): forms, variables, code lists, labels and outcome metadata."""

from kvarus_research.codebook.model import (
    Codebook,
    Form,
    Outcome,
    Variable,
    codebook_from_dict,
    load_codebook,
)

__all__ = ["Codebook", "Form", "Outcome", "Variable", "codebook_from_dict", "load_codebook"]
