"""`python -m bench`: the modification cycle's throughput, latency and waiting cost, on its own stack."""
