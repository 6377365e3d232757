"""Automation: the jobs, their schedules, and the sensor that syncs exactly the changed months."""
