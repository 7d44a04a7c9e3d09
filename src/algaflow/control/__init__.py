"""Decisions from estimates: harvest advice, alarms, setpoints within physical bounds."""
