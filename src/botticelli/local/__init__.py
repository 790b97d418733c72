"""The offline provider's engine: ``runtime`` runs GGUF models in-process with llama.cpp.

The driver over it is ``botticelli.drivers.local.LocalDriver``; the emulator's local backend
uses the runtime directly.
"""
