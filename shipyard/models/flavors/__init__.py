"""Model flavors: the plugin interface (:mod:`.base`) and the built-in flavors, one module each.

Built-ins, tried in this order when a flavor is inferred: ``onnx``, ``torch``, ``xgboost``,
``lightgbm``, ``sklearn``, ``python_function``. User flavors are tried first.
"""

from shipyard.models.flavors.base import (
    Flavor,
    FlavorRegistry,
    flavors,
    get_flavor,
    register_flavor,
)

__all__ = ["Flavor", "FlavorRegistry", "flavors", "get_flavor", "register_flavor"]
