"""Getting documents into the library: load, clean, chunk, index."""
