"""DSP on 20 ms frames of 8 kHz audio. Imports numpy and scipy only; no I/O beyond WAV files."""
