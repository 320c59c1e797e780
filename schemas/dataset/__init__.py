"""The written dataset folder: file names, metadata, reading any record kind without TensorFlow,
per-record checks, the preview registry."""
