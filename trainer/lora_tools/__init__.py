"""LoRA file utilities: info, check, merge (into a checkpoint or LoRA+LoRA), resize, extract, preview."""
