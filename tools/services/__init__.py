"""Launchers for the real services the worker talks to: Triton Inference Server and MongoDB.

Used by the pytest fixtures in ``tests/fixtures/services.py`` and by the local demo.
Each launcher starts the real binary shipped in a registry package, on free
127.0.0.1 ports, waits until it answers, and stops it by PID.
"""

from tools.services.mongo import MongoServer, start_mongo
from tools.services.triton import TritonServer, start_triton

__all__ = ["MongoServer", "TritonServer", "start_mongo", "start_triton"]
