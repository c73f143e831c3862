def install(app): pass
