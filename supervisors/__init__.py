"""Generic supervision runtime (OTP-style, on trio), plus the Scouter tree and CLI beside it.

The runtime modules (``_spec``, ``_monitor``, ``_supervisor``, ``_signals``) import nothing of ours.
"""

from ._monitor import ChildState, Monitor, current_child
from ._signals import Ending, serve_until_signalled
from ._spec import ChildKilled, ChildSpec, Restart, RestartIntensityExceeded, Strategy, SupervisorSpec
from ._supervisor import RestartWindow, supervise

__all__ = [
    "ChildKilled",
    "ChildSpec",
    "ChildState",
    "Ending",
    "Monitor",
    "Restart",
    "RestartIntensityExceeded",
    "RestartWindow",
    "Strategy",
    "SupervisorSpec",
    "current_child",
    "serve_until_signalled",
    "supervise",
]
