"""Cron schedules: when they fire (``timing``, pure) and what a tick creates."""
