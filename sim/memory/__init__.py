"""Memory systems as the models see them: the testbench memory port's exact timing (:mod:`.port`) and the
off-chip DRAM/HBM model of the analytical engine (:mod:`.dram`)."""
