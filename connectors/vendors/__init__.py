"""The vendor clients behind one contract (``base.VendorClient``), one module of wire facts per
vendor (``<vendor>_spec.py``), and the registry that builds them (``registry.build_clients``).

Nothing is re-exported here on purpose: the simulator imports the spec modules, and importing
any submodule runs this file first, so a root that imported the clients would hand the
simulator the very code it is there to test.
"""

__all__: list[str] = []
