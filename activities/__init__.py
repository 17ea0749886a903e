"""Every side effect of an onboarding: notifications and CSM assignment."""

from collections.abc import Callable
from typing import Any

from activities.logging import configure_logging
from activities.notify import Notifier
from activities.owners import OwnerRoster
from activities.settings import Settings

__all__ = ["Notifier", "OwnerRoster", "Settings", "activities_for", "configure_logging"]


def activities_for(settings: Settings) -> list[Callable[..., Any]]:
    """The bound activity methods to pass to a Worker's `activities=`."""
    notifier = Notifier(settings)
    roster = OwnerRoster(settings)
    return [notifier.notify, roster.assign_owner]
