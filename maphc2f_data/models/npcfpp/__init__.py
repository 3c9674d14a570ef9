"""npcF++: the fine refinement stage, SynergyRefineNet (paper Sec. 3.2.3, supp. 6.2, Algorithms 7-8)."""
