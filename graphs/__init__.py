"""GSM++ graph sequence models on torch-geometric, built on seqcore (see the graphs issue)."""
