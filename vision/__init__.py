"""LightNet vision backbones built on seqcore (see the vision issue)."""
