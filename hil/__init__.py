"""Hardware-in-the-loop: the LineSimulator interface, its backends and the scenarios both run."""
