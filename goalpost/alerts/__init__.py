"""Alerts: the client's rules evaluated after every run, told by email once per situation.

evaluate (what each rule sees now), state (fire, remind, re-arm, snooze), render (the digest
email), delivery (SMTP or the outbox folder, retries), check (one evaluation, end to end) and
manage (what the `goalpost alerts` commands call); i18n (the emails' language: gettext
catalogs in locales/); review (the weekly business review, sent through the same delivery).
"""
