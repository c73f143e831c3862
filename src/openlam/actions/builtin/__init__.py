"""Built-in plugins. Each module is registered through the ``openlam.plugins`` entry points,
exactly like a third-party plugin."""
