"""The OCR pipeline: plain synchronous functions, local files in, local files out."""
