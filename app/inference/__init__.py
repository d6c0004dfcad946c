"""Running the network: loading it (``embedder``), batching calls (``batcher``), decoding crops."""
