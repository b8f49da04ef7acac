"""Widgets of the lab assistant: the stage stepper and the live progress bar."""
