"""The custom search attributes of the outside contract (README "Outside contract")."""

from temporalio.common import SearchAttributeKey

ONBOARDING_TIER = SearchAttributeKey.for_keyword("OnboardingTier")
ONBOARDING_PHASE = SearchAttributeKey.for_keyword("OnboardingPhase")
ONBOARDING_STATE = SearchAttributeKey.for_keyword("OnboardingState")
ONBOARDING_HEALTH = SearchAttributeKey.for_int("OnboardingHealth")
CSM_OWNER = SearchAttributeKey.for_keyword("CsmOwner")
ACV_USD = SearchAttributeKey.for_float("AcvUsd")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

ALL = (
    ONBOARDING_TIER,
    ONBOARDING_PHASE,
    ONBOARDING_STATE,
    ONBOARDING_HEALTH,
    CSM_OWNER,
    ACV_USD,
    NEXT_DEADLINE,
)

# `temporal server start-dev --search-attribute Name=Type` spelling.
CLI_TYPES = {
    "OnboardingTier": "Keyword",
    "OnboardingPhase": "Keyword",
    "OnboardingState": "Keyword",
    "OnboardingHealth": "Int",
    "CsmOwner": "Keyword",
    "AcvUsd": "Double",
    "NextDeadline": "Datetime",
}
