"""What one model request returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelReply:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cut_off: bool = False  # the server stopped it at its output limit
