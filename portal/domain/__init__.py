"""Pure domain core: SLA calendars, triage and dispatch. No Flask, no database, no clock reads."""
