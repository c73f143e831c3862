"""The society of agents: the catalog of departments and agents, and routing.

``load_catalog(workspace)`` returns a validated :class:`Catalog`; ``route(goal, catalog)``
picks the department and agent for a goal (see docs/agents.md).
"""

from openlam.org.loader import Catalog, load_catalog
from openlam.org.model import Agent, Budget, Department

__all__ = ["Agent", "Budget", "Catalog", "Department", "load_catalog"]
