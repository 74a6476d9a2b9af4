"""Shared torch parts (checkpoints today; blocks, U-Nets and training loops as they land).

torch is imported here and only where a network is used, so reading files or running the
classical methods never pays its import time.
"""
