"""A local Azure stand-in: an HTTPS service that behaves like Azure Resource Manager for the
resource types mlflow-aca uses, so the real SDK clients and DefaultAzureCredential talk to it
unmodified. See README.md in this folder."""

from .handle import Standin
from .control import RemoteStandin, standin_process

__all__ = ["Standin", "RemoteStandin", "standin_process"]
