"""Trainers over TRL (CodeLutra DPO+SFT, focal DPO); see the trainers issue."""
