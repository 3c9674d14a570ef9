"""npcF: the coarse refinement stage (paper Sec. 3.2.2, supp. 6.1, Algorithm 6)."""
