"""What lstmae writes to disk: model files (safetensors + a JSON header, never pickle),
training checkpoints, and the atomic writes that keep every saved file whole."""
