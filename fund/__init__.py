"""The guarantee fund (先行赔付基金) that pays advances to buyers."""

from fund.service import FUND_CANNOT_PAY, FundStatement, GuaranteeFund

__all__ = ["FUND_CANNOT_PAY", "FundStatement", "GuaranteeFund"]
