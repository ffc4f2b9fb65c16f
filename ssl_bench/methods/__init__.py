"""The methods: ``REGISTRY`` (``registry.py``) names each one; ``METHODS`` maps ``method.name`` to its
LightningModule class. Classes are imported on first use, so importing the registry (as config
validation does) loads no torch."""

from __future__ import annotations

from typing import Any

from ssl_bench.methods.registry import REGISTRY, MethodSpec, image_methods


def method_class(name: str) -> type:
    """The LightningModule class of ``method.name``."""
    return REGISTRY[name].load()


def __getattr__(attr: str) -> Any:
    if attr == "METHODS":
        return {name: spec.load() for name, spec in REGISTRY.items()}
    if attr in ("SSLMethod", "StepOutput", "DivergedError"):
        from ssl_bench.methods import base

        return getattr(base, attr)
    for spec in REGISTRY.values():
        if spec.cls.endswith(f":{attr}"):
            return spec.load()
    raise AttributeError(f"module 'ssl_bench.methods' has no attribute {attr!r}")


__all__ = ["REGISTRY", "MethodSpec", "image_methods", "method_class"]
