"""The seven scenarios of the suite (the seventh, event-loop health, is read from 2 and 3)."""
