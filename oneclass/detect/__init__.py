"""Detectors: learn a class from positives, score how in-class new vectors are."""

from oneclass.detect.base import BaseDetector, BinaryBaseline, State
from oneclass.detect.registry import available_detectors, make_detector

__all__ = ["BaseDetector", "BinaryBaseline", "State", "available_detectors", "make_detector"]
