"""Rooms, participants, roles and permissions, floor control, active speaker, slot assignment."""
