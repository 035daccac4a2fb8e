"""Energy models of the execution targets (DRAM/PIM by the IDD method, GPU, NVLink) and the
energy of a replayed or predicted layer; data in ``data/`` with a source for every value."""
