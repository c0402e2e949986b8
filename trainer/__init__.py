"""The bundled LoRA trainer and LoRA file tools."""
