"""Time-series forecasters and dynamical-systems models built on seqcore (see the timeseries issues)."""
