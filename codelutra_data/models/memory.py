"""What a generate call holds in memory, so that no --batch-size can take the machine down: the engines that
run a whole call at once (transformers, CTranslate2) split it into what a share of the free memory holds."""

from __future__ import annotations

MEMORY_SHARE = 0.5  # of the free memory, for one call's sequences (the model, the store and the sandboxes share the rest)


def bytes_per_sequence(config, tokens: int, width: int) -> int:
    """One sequence's KV cache over `tokens` positions at `width` bytes a value, and its last logits (float32),
    from a model's config (a transformers config, or its text part)."""
    config = getattr(config, "text_config", None) or config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * width * tokens + 2 * config.vocab_size * 4


def free_memory(cuda: bool) -> tuple[int | None, str]:
    """(bytes free, where) on the GPU or in this machine's memory; None where it cannot be read."""
    if cuda:
        import torch

        return torch.cuda.mem_get_info()[0], "free on the GPU"
    from codelutra_data.machine import available_memory

    return available_memory(), "available"


def sequences_that_fit(config, tokens: int, width: int, cuda: bool = False) -> int | None:
    """How many sequences of `tokens` positions one call may hold in MEMORY_SHARE of the free memory (at least one);
    None where free memory cannot be read."""
    free, _ = free_memory(cuda)
    if free is None:
        return None
    return max(1, int(free * MEMORY_SHARE) // max(1, bytes_per_sequence(config, tokens, width)))
