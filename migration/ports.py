"""Both ports by name, for what runs either one (the experiments, the tests).

Records name a run's port ("legacy", "modern"); this maps each name to the
port's interface object (common/ports.py).
"""

from typing import Dict

from common import ports
from legacy import port as legacy_port
from modern import port as modern_port

PORTS: Dict[str, ports.Port] = {p.name: p for p in (legacy_port.PORT,
                                                    modern_port.PORT)}
