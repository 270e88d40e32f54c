"""tripost: teach small language models to self-improve (TriPosT, arXiv 2310.13522)."""

__version__ = "0.1.0"
