// Config: see the module's other files.
