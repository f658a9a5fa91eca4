"""Monitoring a receiving domain over time (``mtasts monitor``) and judging the switch to
enforce from the received reports (``mtasts advise``). See docs/monitor.md."""
