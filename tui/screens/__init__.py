"""The lab assistant's screens: studies list, new-study form, study, and its modals."""
