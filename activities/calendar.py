"""A group program's session as an iCalendar invitation (RFC 5545, METHOD:REQUEST), for
the email that invites an onboarding's customer to it (rules §1 (docs/rules.md), *Group
programs*). Built with the `icalendar` library.

    ics = invitation(invite, attendee="cara@acme.test", description=body, stamp=now)
    # b"BEGIN:VCALENDAR...METHOD:REQUEST...BEGIN:VEVENT...UID:...DTSTART;TZID=..."
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

from workflows.models import CalendarInvite

PRODID = "-//Onboarding orchestrator//Group programs//EN"


def invitation(invite: CalendarInvite, attendee: str, description: str, stamp: datetime) -> bytes:
    """The iCalendar object (CRLF lines, UTF-8) inviting `attendee` (an email address) to
    `invite`'s session: one VEVENT with its UID, DTSTAMP `stamp`, DTSTART and DTEND in the
    session's time zone (TZID, with the zone's VTIMEZONE), SUMMARY, LOCATION and URL (the
    join link), DESCRIPTION, ORGANIZER and ATTENDEE (RSVP)."""
    start = invite.starts_at.astimezone(ZoneInfo(invite.time_zone))
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", invite.uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=invite.duration_minutes))
    event.add("summary", invite.summary)
    event.add("location", invite.url)
    event.add("url", invite.url)
    event.add("description", description)
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    organizer = vCalAddress(f"mailto:{invite.organizer}")
    organizer.params["cn"] = vText(invite.summary)
    event.add("organizer", organizer)
    guest = vCalAddress(f"mailto:{attendee}")
    guest.params["role"] = vText("REQ-PARTICIPANT")
    guest.params["partstat"] = vText("NEEDS-ACTION")
    guest.params["rsvp"] = vText("TRUE")
    event.add("attendee", guest)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
