"""The LAM core loop: perceive → plan → validate → (act → observe)* → learn → outcome."""
