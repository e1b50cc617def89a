"""Azure adapters: the only code that imports the Azure SDKs, always lazily.

Each module wraps one service and speaks plain REST-shaped dictionaries (the JSON Azure
Resource Manager sends and receives) to the rest of the tool, so desired state can be built
and compared without the SDK, and a model change in an SDK release stays inside this package.
"""
