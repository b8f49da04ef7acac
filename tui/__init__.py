"""The Textual lab assistant. Imports lab's store, runner and reports — never torch."""
