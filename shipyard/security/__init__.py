"""Security: users, API tokens, role grants, the audit log, and workspace backups.

* :class:`Security` (:mod:`.service`) - users with argon2 password hashes, hashed API tokens
  (expiring, revocable), grants of :data:`~.roles.ROLES` per workspace, experiment or
  registered model, and the audit log of every change and failed login.
* :mod:`.roles` - roles, actions (``read``/``write``/``deploy``/``admin``) and scopes.
* :mod:`.backup` - ``backup`` / ``restore`` of a workspace (metadata + artifacts), consistent
  while a server writes to it.
"""

from __future__ import annotations

from shipyard.security.roles import ACTION_ROLE, ACTIONS, ROLES, Action
from shipyard.security.service import NewToken, Security

__all__ = ["ACTIONS", "ACTION_ROLE", "ROLES", "Action", "NewToken", "Security"]
