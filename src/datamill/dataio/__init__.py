"""Reading data files into Arrow record batches, streaming, and writing them back out."""
