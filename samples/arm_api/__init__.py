"""A second sample API in the shape of Azure Resource Manager (network, compute and cost data of a
small hub-and-spoke estate), so the Azure use cases run on a laptop with no Azure account."""
from samples.arm_api.handlers import ArmConfig
from samples.arm_api.server import ArmApi

__all__ = ["ArmApi", "ArmConfig"]
