"""Thin ComfyUI V3 adapters: convert ComfyUI types to engine types and back, report
progress and check for interrupts. No algorithm lives here."""
