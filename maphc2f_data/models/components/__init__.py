"""Building blocks shared by the refinement models (Haar wavelets, PDE operators)."""
