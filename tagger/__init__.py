"""WD14 auto-tagging with onnxruntime."""
