"""reanalyzer: ask ReversingLabs Spectra Analyze appliances to reanalyze samples in bulk."""

__version__ = "0.1.0"
