"""The desktop app (PySide6). The engine never imports anything from here."""
