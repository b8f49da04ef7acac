"""Foundations every layer uses: errors, paths, registries, worker events, provenance, artifact files, fault injection and out-of-memory/checkpoint helpers."""
