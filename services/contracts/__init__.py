"""Wire contracts of both services and of OpenRLHF's remote reward protocol, and their typed clients."""
