"""Video vendors behind one seam (`providers.base.Provider`).

The pipeline needs only what is exported here: the model registry and parameter validation,
the provider factory and its settings, and the seam's types.
"""

from providers.base import (
    HttpRequest,
    ModelParameters,
    ModelSpec,
    PollResult,
    Provider,
    ProviderError,
    ProviderLimits,
    Submitted,
    UpstreamState,
    UpstreamVideo,
)
from providers.docs import parameters_table_markdown
from providers.keys import fingerprint
from providers.limits import RateLimiter, RunningSlots
from providers.registry import (
    MODELS,
    PROVIDERS,
    InvalidParameters,
    UnknownModel,
    create_providers,
    get_model,
    validate_parameters,
)
from providers.settings import ProviderSettings, VendorSettings

__all__ = [
    "MODELS",
    "PROVIDERS",
    "HttpRequest",
    "InvalidParameters",
    "ModelParameters",
    "ModelSpec",
    "PollResult",
    "Provider",
    "ProviderError",
    "ProviderLimits",
    "ProviderSettings",
    "RateLimiter",
    "RunningSlots",
    "Submitted",
    "UnknownModel",
    "UpstreamState",
    "UpstreamVideo",
    "VendorSettings",
    "create_providers",
    "fingerprint",
    "get_model",
    "parameters_table_markdown",
    "validate_parameters",
]
